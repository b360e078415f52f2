// Package autoscaler resizes the target workload of each WorkloadOptimizer with spec.autoScaling,
// through its scale subresource, from the metrics of its spec. Each evaluation, at the start of a
// step, reads, decides, acts and writes status:
//   - read (target.go, signals.go, policies.go): the target's scale subresource, the figures of its
//     running replicas (catalog cost and power, measured power when telemetry has it), every spec
//     metric, with the workload's total demand recorded in a bounded history (seeded from Prometheus
//     range queries, so a restart loses nothing), and the limits of the CostPolicies that enforce on
//     its pods, from the shared translation layer (kube.Policies);
//   - decide (limits.go, decide.go): the limits, computed by a pure function (minReplicas,
//     maxReplicas, the cost and power caps, the remaining budget of the optimizer and of the
//     enforcing CostPolicies), then model.DecideReplicas, the decision the simulator replays;
//   - act (decide.go, target.go): the scale is written only when the decision differs from the
//     current count;
//   - status (status.go): status.autoScaling alone, with a merge patch (the WorkloadOptimizer
//     controller owns the rest of the status and never writes that field), then an event for every
//     change and the metrics.
package autoscaler

import (
	"context"
	"fmt"
	"sync"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8sevents "k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/internal/events"
	"kcloud.io/optimizer/pkg/model"
)

// Defaults of the Reconciler's zero values.
const (
	DefaultStep   = time.Minute
	DefaultSeason = 24 * time.Hour
)

// Reconciler autoscales WorkloadOptimizer targets.
type Reconciler struct {
	Client client.Client
	// Reader reads targets uncached (their pod template, when no replica runs yet), and KEDA's
	// ScaledObjects when ScaledObjects is nil.
	Reader client.Reader
	// ScaledObjects reads ScaledObjects (SetupWithManager sets the cache when their CRD is served at
	// startup, and watches them); nil: Reader.
	ScaledObjects client.Reader
	Fleet         *cluster.Fleet
	// Prometheus serves the latency, throughput and prometheus metrics and seeds histories; nil
	// without --prometheus-url (those metrics are then unavailable).
	Prometheus Querier
	Queries    Queries
	Recorder   k8sevents.EventRecorder
	Clock      clock.PassiveClock
	// Step is the spacing of the history and of the evaluations (default 1m); Season the length of
	// the forecaster's season (default a day), a whole number of steps.
	Step   time.Duration
	Season time.Duration
	// HistorySeasons is how many seasons of history are kept (default 2, what Holt-Winters needs).
	HistorySeasons int

	mu     sync.Mutex
	memory map[types.NamespacedName]*memory
	// scaledObjectsAbsentUntil: ScaledObjects were not served at the last look; until then, none.
	scaledObjectsAbsentUntil time.Time
}

// memory is what the autoscaler keeps of one optimizer between evaluations.
type memory struct {
	uid       types.UID
	histories map[kcloudv1alpha1.MetricType]*history
	// recent are the recommendations of the stabilization window, oldest first.
	recent []model.Recommendation
}

// replicaFigures are what the target's running replicas cost and draw.
type replicaFigures struct {
	running            int32
	costPerReplicaHour float64 // USD/h: the highest of the running replicas (catalog)
	wattsPerReplica    float64 // W at full load: the highest of the running replicas (catalog)
	currentCost        float64 // USD/h of the running replicas (catalog)
	currentWatts       float64 // W of the running replicas (measured when telemetry has it)
}

// state is what one evaluation works on; its steps fill it in turn.
type state struct {
	wo    *kcloudv1alpha1.WorkloadOptimizer
	as    *kcloudv1alpha1.AutoScaling
	now   time.Time // the step's start: the decision's time and the metrics' evaluation instant
	slot  int64
	mem   *memory
	args  QueryArgs
	conds []metav1.Condition

	// target
	target   client.Object
	scale    *autoscalingv1.Scale
	pods     []*corev1.Pod // the target's pods
	template *corev1.Pod   // a pod of the target's template, read once when needed
	tplErr   error

	figures replicaFigures

	// metrics
	demands     []model.MetricDemand
	demandTypes []kcloudv1alpha1.MetricType // of demands
	readings    []kcloudv1alpha1.MetricReading
	limits      model.ReplicaLimits

	// delegated is ScalingDelegated's message while another autoscaler scales the target.
	delegated string

	decision model.ScaleDecision
	scaled   bool
	events   []events.Event
}

func (r *Reconciler) step() time.Duration {
	if r.Step <= 0 {
		return DefaultStep
	}
	return r.Step
}

// seasonSteps is the season in steps (at least 2).
func (r *Reconciler) seasonSteps() int {
	s := r.Season
	if s <= 0 {
		s = DefaultSeason
	}
	return max(2, int(s/r.step()))
}

func (r *Reconciler) historySize() int {
	n := r.HistorySeasons
	if n <= 0 {
		n = 2
	}
	return n * r.seasonSteps()
}

// Reconcile evaluates one optimizer's autoscaling at the current step: read, decide, act, status.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	wo, err := r.fetch(ctx, req.NamespacedName)
	if err != nil || wo == nil {
		return reconcile.Result{}, err
	}
	st := r.newState(wo)
	if err := r.evaluate(ctx, st); err != nil {
		return reconcile.Result{}, fmt.Errorf("WorkloadOptimizer %s: %w", req, err)
	}
	status := r.buildStatus(st)
	if err := r.patchStatus(ctx, wo, status); err != nil {
		return reconcile.Result{}, err
	}
	events.Record(r.Recorder, wo, st.target, st.events)
	r.observe(st, status)
	log.FromContext(ctx).V(1).Info("Evaluated autoscaling", "workloadOptimizer", klog.KObj(wo), "step", st.now,
		"current", status.CurrentReplicas, "desired", status.DesiredReplicas, "metric", status.Metric, "demand", status.Demand,
		"limit", status.Limit, "reason", status.Reason)
	return reconcile.Result{RequeueAfter: r.untilNextStep(st.slot)}, nil
}

// fetch reads the optimizer; nil when there is nothing to autoscale (gone, deleting, or without
// autoScaling or targetRef), after forgetting it and clearing a stale status.autoScaling.
func (r *Reconciler) fetch(ctx context.Context, key types.NamespacedName) (*kcloudv1alpha1.WorkloadOptimizer, error) {
	wo := &kcloudv1alpha1.WorkloadOptimizer{}
	if err := r.Client.Get(ctx, key, wo); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(key)
			return nil, nil
		}
		return nil, fmt.Errorf("reading WorkloadOptimizer %s: %w", key, err)
	}
	if wo.DeletionTimestamp.IsZero() && wo.Spec.AutoScaling != nil && wo.Spec.TargetRef != nil {
		return wo, nil
	}
	r.forget(key)
	if wo.DeletionTimestamp.IsZero() && wo.Status.AutoScaling != nil {
		return nil, r.patchStatus(ctx, wo, nil)
	}
	return nil, nil
}

// newState starts an evaluation at the start of the clock's current step.
func (r *Reconciler) newState(wo *kcloudv1alpha1.WorkloadOptimizer) *state {
	slot := slotOf(r.Clock.Now(), r.step())
	st := &state{
		wo: wo, as: wo.Spec.AutoScaling, slot: slot, now: slotTime(slot, r.step()), mem: r.remember(wo),
		args: QueryArgs{Namespace: wo.Namespace, Name: wo.Name, Target: wo.Spec.TargetRef.Name},
	}
	if wo.Status.AutoScaling != nil {
		st.conds = append(st.conds, wo.Status.AutoScaling.Conditions...)
	}
	return st
}

// evaluate reads, decides and acts; it stops early, without an error, when the target cannot be
// scaled, another autoscaler scales it, or its scale changed meanwhile (the conditions say so).
func (r *Reconciler) evaluate(ctx context.Context, st *state) error {
	ok, err := r.read(ctx, st)
	if err != nil || !ok {
		return err
	}
	r.decide(st)
	return r.act(ctx, st)
}

// read fills the state: the target's scale, its replicas' figures, the metrics and the limits;
// false, after the scale, when another autoscaler scales the target.
func (r *Reconciler) read(ctx context.Context, st *state) (bool, error) {
	ok, err := r.readTarget(ctx, st)
	if err != nil || !ok {
		return false, wrap("reading the target's scale", err)
	}
	if delegated, err := r.delegate(ctx, st); err != nil || delegated {
		return false, wrap("finding other autoscalers of the target", err)
	}
	if err := r.priceReplicas(ctx, st); err != nil {
		return false, fmt.Errorf("pricing the target's replicas: %w", err)
	}
	r.readMetrics(ctx, st)
	policyLimits, err := r.enforcingLimits(ctx, st)
	if err != nil {
		return false, fmt.Errorf("computing limits: %w", err)
	}
	st.limits = replicaLimits(&st.wo.Spec, &st.wo.Status, st.figures, st.now, policyLimits)
	return true, nil
}

// untilNextStep is the wait until the next step's start (a little after, so the clock is past it).
func (r *Reconciler) untilNextStep(slot int64) time.Duration {
	next := slotTime(slot+1, r.step()).Add(10 * time.Millisecond)
	return max(next.Sub(r.Clock.Now()), 10*time.Millisecond)
}

// wrap prefixes a non-nil error with what was being done.
func wrap(doing string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// remember returns the optimizer's memory, new for a new object (same name, other UID).
func (r *Reconciler) remember(wo *kcloudv1alpha1.WorkloadOptimizer) *memory {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.memory == nil {
		r.memory = map[types.NamespacedName]*memory{}
	}
	key := client.ObjectKeyFromObject(wo)
	m := r.memory[key]
	if m == nil || m.uid != wo.UID {
		m = &memory{uid: wo.UID, histories: map[kcloudv1alpha1.MetricType]*history{}}
		r.memory[key] = m
	}
	return m
}

func (r *Reconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	delete(r.memory, key)
	r.mu.Unlock()
	forgetMetrics(key.Namespace, key.Name)
}

// setCondition records a condition and, when it turns to a status or reason it did not have, the
// event that goes with it (nil for none).
func (st *state) setCondition(typ string, status metav1.ConditionStatus, reason, message string, ev *events.Event) {
	old := meta.FindStatusCondition(st.conds, typ)
	changed := old == nil || old.Status != status || old.Reason != reason
	meta.SetStatusCondition(&st.conds, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message,
		ObservedGeneration: st.wo.Generation, LastTransitionTime: metav1.NewTime(st.now)})
	if changed && ev != nil {
		st.events = append(st.events, *ev)
	}
}
