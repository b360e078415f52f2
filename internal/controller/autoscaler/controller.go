// Package autoscaler resizes the target workload of each WorkloadOptimizer with spec.autoScaling,
// through its scale subresource, from the metrics of its spec. Every step it reads each metric,
// records the workload's total demand in a bounded history (seeded from Prometheus range queries, so
// a restart loses nothing), computes the limits (minReplicas, maxReplicas, the cost and power caps,
// the remaining budget of the optimizer and of the CostPolicies that enforce on its pods) and calls
// model.DecideReplicas, the decision the simulator replays. It writes the scale only when the
// decision differs from the current count, records an event for every change, and patches
// status.autoScaling alone with a merge patch: the WorkloadOptimizer controller owns the rest of the
// status and never writes that field.
package autoscaler

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/pkg/kube"
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
	// Reader reads targets uncached (their pod template, when no replica runs yet).
	Reader client.Reader
	Fleet  *cluster.Fleet
	// Prometheus serves the latency, throughput and prometheus metrics and seeds histories; nil
	// without --prometheus-url (those metrics are then unavailable).
	Prometheus Querier
	Queries    Queries
	Recorder   events.EventRecorder
	Clock      clock.PassiveClock
	// Step is the spacing of the history and of the evaluations (default 1m); Season the length of
	// the forecaster's season (default a day), a whole number of steps.
	Step   time.Duration
	Season time.Duration
	// HistorySeasons is how many seasons of history are kept (default 2, what Holt-Winters needs).
	HistorySeasons int

	mu     sync.Mutex
	memory map[types.NamespacedName]*memory
}

// memory is what the autoscaler keeps of one optimizer between evaluations.
type memory struct {
	uid       types.UID
	histories map[kcloudv1alpha1.MetricType]*history
	// recent are the recommendations of the stabilization window, oldest first.
	recent []model.Recommendation
}

// state is what one evaluation works on; the sub-reconcilers fill it in turn.
type state struct {
	wo    *kcloudv1alpha1.WorkloadOptimizer
	as    *kcloudv1alpha1.AutoScaling
	now   time.Time // the step's start: the decision's time and the metrics' evaluation instant
	slot  int64
	mem   *memory
	args  QueryArgs
	conds []metav1.Condition

	// target
	target client.Object
	scale  *autoscalingv1.Scale
	pods   []*corev1.Pod // the target's pods

	// figures of the running pods
	running              int32
	costPerReplica       float64 // USD/h: the highest of the running replicas (catalog)
	wattsPerReplica      float64 // W at full load: the highest of the running replicas (catalog)
	currentCost, current float64 // USD/h and W of the running replicas (W measured when telemetry has it)

	// metrics
	demands  []model.MetricDemand
	types    []kcloudv1alpha1.MetricType // of demands
	readings []kcloudv1alpha1.MetricReading
	limits   model.ReplicaLimits

	decision model.ScaleDecision
	scaled   bool
	events   []event
}

type event struct{ kind, reason, action, note string }

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

// Reconcile evaluates one optimizer's autoscaling at the current step.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	wo := &kcloudv1alpha1.WorkloadOptimizer{}
	if err := r.Client.Get(ctx, req.NamespacedName, wo); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("reading WorkloadOptimizer %s: %w", req, err)
	}
	if !wo.DeletionTimestamp.IsZero() || wo.Spec.AutoScaling == nil || wo.Spec.TargetRef == nil {
		r.forget(req.NamespacedName)
		if wo.DeletionTimestamp.IsZero() && wo.Status.AutoScaling != nil {
			return reconcile.Result{}, r.patchStatus(ctx, wo, nil)
		}
		return reconcile.Result{}, nil
	}

	step := r.step()
	clockNow := r.Clock.Now()
	slot := slotOf(clockNow, step)
	st := &state{
		wo: wo, as: wo.Spec.AutoScaling, slot: slot, now: slotTime(slot, step), mem: r.remember(wo),
		args: QueryArgs{Namespace: wo.Namespace, Name: wo.Name, Target: wo.Spec.TargetRef.Name},
	}
	if wo.Status.AutoScaling != nil {
		st.conds = append(st.conds, wo.Status.AutoScaling.Conditions...)
	}
	for _, sub := range []struct {
		name string
		run  func(context.Context, *state) (bool, error)
	}{
		{"reading the target's scale", r.readTarget},
		{"pricing the target's replicas", r.price},
		{"reading metrics", r.readMetrics},
		{"computing limits", r.computeLimits},
		{"deciding replicas", r.decide},
		{"scaling", r.applyScale},
	} {
		proceed, err := sub.run(ctx, st)
		if err != nil {
			return reconcile.Result{}, fmt.Errorf("WorkloadOptimizer %s: %s: %w", req, sub.name, err)
		}
		if !proceed {
			break
		}
	}

	status := r.buildStatus(st)
	if err := r.patchStatus(ctx, wo, status); err != nil {
		return reconcile.Result{}, err
	}
	for _, e := range st.events {
		r.Recorder.Eventf(wo, st.target, e.kind, e.reason, e.action, "%s", e.note)
	}
	r.observe(st, status)
	log.FromContext(ctx).V(1).Info("Evaluated autoscaling", "workloadOptimizer", klog.KObj(wo), "step", st.now,
		"current", status.CurrentReplicas, "desired", status.DesiredReplicas, "metric", status.Metric, "demand", status.Demand,
		"limit", status.Limit, "reason", status.Reason)
	// The next evaluation at the next step's start (a little after, so the clock is past it).
	next := slotTime(slot+1, step).Add(10 * time.Millisecond)
	return reconcile.Result{RequeueAfter: max(next.Sub(r.Clock.Now()), 10*time.Millisecond)}, nil
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
// event that goes with it (Warning for False, or when warn says so).
func (st *state) setCondition(typ string, status metav1.ConditionStatus, reason, message string, ev *event) {
	old := meta.FindStatusCondition(st.conds, typ)
	changed := old == nil || old.Status != status || old.Reason != reason
	meta.SetStatusCondition(&st.conds, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message,
		ObservedGeneration: st.wo.Generation, LastTransitionTime: metav1.NewTime(st.now)})
	if changed && ev != nil {
		st.events = append(st.events, *ev)
	}
}

// defaultAPIVersions of the kinds a targetRef may name without apiVersion.
var defaultAPIVersions = map[string]string{"Deployment": "apps/v1", "StatefulSet": "apps/v1", "ReplicaSet": "apps/v1", "Job": "batch/v1"}

// readTarget reads the target's scale subresource.
func (r *Reconciler) readTarget(ctx context.Context, st *state) (bool, error) {
	ref := st.wo.Spec.TargetRef
	notScalable := func(reason, msg string) (bool, error) {
		st.setCondition(kcloudv1alpha1.ConditionAbleToScale, metav1.ConditionFalse, reason, msg,
			&event{corev1.EventTypeWarning, reason, "Autoscale", msg})
		return false, nil
	}
	obj, err := targetObject(ref, st.wo.Namespace)
	if err != nil {
		return notScalable(kcloudv1alpha1.ReasonTargetNotScalable, err.Error())
	}
	scale := &autoscalingv1.Scale{}
	if err := r.Client.SubResource("scale").Get(ctx, obj, scale); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return notScalable(kcloudv1alpha1.ReasonTargetNotFound, fmt.Sprintf("%s %s/%s not found", ref.Kind, st.wo.Namespace, ref.Name))
		case apierrors.IsForbidden(err), apierrors.IsMethodNotSupported(err), meta.IsNoMatchError(err):
			return notScalable(kcloudv1alpha1.ReasonTargetNotScalable, fmt.Sprintf("%s %s/%s: no usable scale subresource: %v", ref.Kind, st.wo.Namespace, ref.Name, err))
		}
		return false, fmt.Errorf("reading the scale of %s %s/%s: %w", ref.Kind, st.wo.Namespace, ref.Name, err)
	}
	st.target, st.scale = obj, scale
	st.setCondition(kcloudv1alpha1.ConditionAbleToScale, metav1.ConditionTrue, kcloudv1alpha1.ReasonTargetScalable,
		fmt.Sprintf("%s %s/%s has %d replicas", ref.Kind, st.wo.Namespace, ref.Name, scale.Spec.Replicas), nil)
	return true, nil
}

// targetObject is an empty object of the target's kind to address its scale subresource.
func targetObject(ref *kcloudv1alpha1.TargetReference, namespace string) (client.Object, error) {
	apiVersion := ref.APIVersion
	if apiVersion == "" {
		apiVersion = defaultAPIVersions[ref.Kind]
	}
	var obj client.Object
	switch {
	case ref.Kind == "Job":
		return nil, fmt.Errorf("Job %s/%s has no scale subresource: a Job's size is its parallelism", namespace, ref.Name)
	case apiVersion == "apps/v1" && ref.Kind == "Deployment":
		obj = &appsv1.Deployment{}
	case apiVersion == "apps/v1" && ref.Kind == "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case apiVersion == "apps/v1" && ref.Kind == "ReplicaSet":
		obj = &appsv1.ReplicaSet{}
	default:
		return nil, fmt.Errorf("%s %s %s/%s: the autoscaler scales apps/v1 Deployments, StatefulSets and ReplicaSets", apiVersion, ref.Kind, namespace, ref.Name)
	}
	obj.SetNamespace(namespace)
	obj.SetName(ref.Name)
	return obj, nil
}

// price finds the target's pods and what one replica costs and draws at most (the catalog figures
// of the running replicas' nodes, or of the cheapest node that could hold one when none runs).
func (r *Reconciler) price(ctx context.Context, st *state) (bool, error) {
	if st.scale.Status.Selector != "" {
		pods := &corev1.PodList{}
		sel, err := labels.Parse(st.scale.Status.Selector)
		if err != nil {
			return false, fmt.Errorf("target selector %q: %w", st.scale.Status.Selector, err)
		}
		if err := r.Client.List(ctx, pods, client.InNamespace(st.wo.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
			return false, fmt.Errorf("listing the target's pods: %w", err)
		}
		for i := range pods.Items {
			st.pods = append(st.pods, &pods.Items[i])
		}
	}
	measured := r.Fleet.Readings(ctx)
	for _, p := range st.pods {
		if !cluster.Running(p) || !p.DeletionTimestamp.IsZero() {
			continue
		}
		catalogFig, err := r.Fleet.PodFigures(ctx, p, nil)
		if err != nil {
			log.FromContext(ctx).Error(err, "Pricing a replica", "workloadOptimizer", klog.KObj(st.wo))
			continue
		}
		st.running++
		st.costPerReplica = max(st.costPerReplica, catalogFig.CostPerHour)
		st.wattsPerReplica = max(st.wattsPerReplica, catalogFig.PowerWatts)
		st.currentCost += catalogFig.CostPerHour
		st.current += catalogFig.PowerWatts
		if measured != nil {
			if fig, err := r.Fleet.PodFigures(ctx, p, measured); err == nil {
				st.current += fig.PowerWatts - catalogFig.PowerWatts
			}
		}
	}
	if st.running == 0 {
		if pod, err := r.templatePod(ctx, st); err != nil {
			log.FromContext(ctx).Error(err, "Reading the target's pod template", "workloadOptimizer", klog.KObj(st.wo))
		} else if t, ok, err := r.Fleet.Cheapest(ctx, pod); err != nil {
			return false, err
		} else if ok {
			st.costPerReplica, st.wattsPerReplica = t.CostPerHour, t.PowerWatts
		}
	}
	return true, nil
}

// observation is one metric's reading at the step.
type observation struct {
	value  float64 // in the threshold's unit, as status shows it
	demand float64 // total demand recorded in the history (NaN for cost and power)
	err    error
}

// readMetrics reads every spec metric: demand metrics into their histories, cost and power into caps.
func (r *Reconciler) readMetrics(ctx context.Context, st *state) (bool, error) {
	wo := st.wo
	replicas := st.scale.Status.Replicas
	seen := map[kcloudv1alpha1.MetricType]bool{}
	var failed []string
	for _, m := range st.as.Metrics {
		seen[m.Type] = true
		reading := kcloudv1alpha1.MetricReading{Type: m.Type, Threshold: m.Threshold}
		var obs observation
		switch m.Type {
		case kcloudv1alpha1.MetricCost:
			if cc := wo.Spec.CostConstraints; cc != nil && cc.MaxCostPerHour != nil && *cc.MaxCostPerHour > 0 {
				obs.value = 100 * st.currentCost / *cc.MaxCostPerHour
			} else {
				obs.err = fmt.Errorf("a cost metric is a percentage of costConstraints.maxCostPerHour, which is not set")
			}
		case kcloudv1alpha1.MetricPower:
			obs.value = st.current
		case kcloudv1alpha1.MetricGPUUtilization:
			obs = r.gpuUtilization(ctx, st)
		default:
			obs = r.query(ctx, st, m, replicas)
		}
		if obs.err != nil {
			reading.Error = obs.err.Error()
			failed = append(failed, fmt.Sprintf("%s: %v", m.Type, obs.err))
		} else {
			v := obs.value
			reading.Current = &v
		}
		st.readings = append(st.readings, reading)
		if m.Type == kcloudv1alpha1.MetricCost || m.Type == kcloudv1alpha1.MetricPower {
			continue
		}
		h := st.mem.histories[m.Type]
		if h == nil {
			h = newHistory(r.historySize(), "")
			st.mem.histories[m.Type] = h
		}
		d := math.NaN()
		if obs.err == nil {
			d = obs.demand
		}
		h.set(st.slot, d)
		st.demands = append(st.demands, model.MetricDemand{Metric: string(m.Type), Demand: h.series(), Threshold: m.Threshold})
		st.types = append(st.types, m.Type)
	}
	for t := range st.mem.histories {
		if !seen[t] {
			delete(st.mem.histories, t) // a metric removed from the spec
		}
	}
	usable := 0
	for _, d := range st.demands {
		for _, v := range d.Demand {
			if !math.IsNaN(v) {
				usable++
				break
			}
		}
	}
	switch {
	case len(st.demands) == 0:
		st.setCondition(kcloudv1alpha1.ConditionScalingActive, metav1.ConditionFalse, kcloudv1alpha1.ReasonNoDemandMetric,
			"no latency, throughput, gpuUtilization or prometheus metric: the replica count stays as it is, within the limits", nil)
	case usable == 0:
		msg := fmt.Sprintf("no demand metric could be read: %s", joinErrors(failed))
		st.setCondition(kcloudv1alpha1.ConditionScalingActive, metav1.ConditionFalse, kcloudv1alpha1.ReasonMetricUnavailable, msg,
			&event{corev1.EventTypeWarning, kcloudv1alpha1.ReasonMetricUnavailable, "Autoscale", msg})
	default:
		msg := "demand sizes the target"
		if len(failed) > 0 {
			msg += "; unavailable: " + joinErrors(failed)
		}
		st.setCondition(kcloudv1alpha1.ConditionScalingActive, metav1.ConditionTrue, kcloudv1alpha1.ReasonValidMetric, msg, nil)
	}
	return true, nil
}

// query reads a PromQL metric at the step's start. Throughput and prometheus queries return the
// workload's total; latency is a per-replica figure and counts times the replicas that produced it.
// A history met for the first time is seeded from a range query over its length.
func (r *Reconciler) query(ctx context.Context, st *state, m kcloudv1alpha1.ScalingMetric, replicas int32) observation {
	q, err := r.Queries.For(m, st.args)
	if err != nil {
		return observation{err: err}
	}
	h := st.mem.histories[m.Type]
	if h == nil || h.query != q {
		h = newHistory(r.historySize(), q)
		st.mem.histories[m.Type] = h
		r.seed(ctx, st, h, m)
	}
	if r.Prometheus == nil {
		return observation{err: fmt.Errorf("needs Prometheus (--prometheus-url)")}
	}
	v, err := r.Prometheus.QueryAt(ctx, q, st.now)
	if err != nil {
		return observation{err: err}
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return observation{err: fmt.Errorf("query `%s` returned %v", q, v)}
	}
	if m.Type == kcloudv1alpha1.MetricLatency {
		return observation{value: v, demand: model.TotalDemand(v, replicas)}
	}
	return observation{value: v, demand: v}
}

// gpuUtilization is the mean measured GPU utilization of the running replicas, in percent.
func (r *Reconciler) gpuUtilization(ctx context.Context, st *state) observation {
	if st.mem.histories[kcloudv1alpha1.MetricGPUUtilization] == nil {
		h := newHistory(r.historySize(), "")
		st.mem.histories[kcloudv1alpha1.MetricGPUUtilization] = h
		r.seed(ctx, st, h, kcloudv1alpha1.ScalingMetric{Type: kcloudv1alpha1.MetricGPUUtilization})
	}
	readings := r.Fleet.Readings(ctx)
	var sum float64
	var n int32
	for _, p := range st.pods {
		if !cluster.Running(p) {
			continue
		}
		if rd, ok := readings[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}]; ok && !math.IsNaN(rd.GPUUtilization) {
			sum += 100 * rd.GPUUtilization
			n++
		}
	}
	if n == 0 {
		return observation{err: fmt.Errorf("no GPU utilization measured for the target's running pods (needs --prometheus-url with the DCGM exporter)")}
	}
	mean := sum / float64(n)
	return observation{value: mean, demand: model.TotalDemand(mean, n)}
}

// seed fills a new history from Prometheus: a total-valued metric from its own query, the others
// from the demand this operator exported (kcloud_autoscaler_demand), when Prometheus scrapes it.
func (r *Reconciler) seed(ctx context.Context, st *state, h *history, m kcloudv1alpha1.ScalingMetric) {
	if r.Prometheus == nil {
		return
	}
	q := h.query
	if m.Type == kcloudv1alpha1.MetricLatency || m.Type == kcloudv1alpha1.MetricGPUUtilization {
		q = demandQuery(st.args, m.Type)
	}
	step := r.step()
	end := st.now.Add(-step)
	start := st.now.Add(-time.Duration(h.size-1) * step)
	samples, err := r.Prometheus.QueryRange(ctx, q, start, end, step)
	if err != nil {
		log.FromContext(ctx).Error(err, "Seeding the demand history; starting empty", "workloadOptimizer", klog.KObj(st.wo), "metric", m.Type)
		return
	}
	h.seed(samples, step)
	log.FromContext(ctx).Info("Seeded the demand history from Prometheus", "workloadOptimizer", klog.KObj(st.wo), "metric", m.Type,
		"points", h.known(), "from", start, "to", end)
}

// computeLimits gathers the bounds: minReplicas and maxReplicas, the cost cap (maxCostPerHour, lowered
// by a cost metric's percentage and by enforcing CostPolicies' caps less what their other pods cost),
// the power cap (maxPowerUsage, lowered by a power metric) and the remaining budget (the optimizer's
// and enforcing CostPolicies', less what their other pods will spend until the period ends).
func (r *Reconciler) computeLimits(ctx context.Context, st *state) (bool, error) {
	wo := st.wo
	l := model.ReplicaLimits{MinReplicas: st.as.MinReplicas, MaxReplicas: st.as.MaxReplicas,
		CostPerReplicaHour: st.costPerReplica, WattsPerReplica: st.wattsPerReplica}
	costCap := func(v float64) {
		if l.MaxCostPerHour == nil || v < *l.MaxCostPerHour {
			l.MaxCostPerHour = &v
		}
	}
	powerCap := func(v float64) {
		if l.MaxPowerWatts == nil || v < *l.MaxPowerWatts {
			l.MaxPowerWatts = &v
		}
	}
	budget := func(remaining, hours float64) {
		if hours <= 0 {
			return
		}
		// The tighter budget is the one that affords the lower rate until its period ends.
		if l.RemainingBudget == nil || remaining/hours < *l.RemainingBudget/l.BudgetHoursLeft {
			l.RemainingBudget, l.BudgetHoursLeft = &remaining, hours
		}
	}
	if cc := wo.Spec.CostConstraints; cc != nil {
		if cc.MaxCostPerHour != nil {
			costCap(*cc.MaxCostPerHour)
		}
		if cc.BudgetLimit != nil && wo.Status.Budget != nil {
			if end, err := model.PeriodEnd(st.now, kube.PeriodOf(cc.BudgetPeriod)); err == nil {
				budget(wo.Status.Budget.Remaining, end.Sub(st.now).Hours())
			}
		}
	}
	if pc := wo.Spec.PowerConstraints; pc != nil && pc.MaxPowerUsage != nil {
		powerCap(*pc.MaxPowerUsage)
	}
	for _, m := range st.as.Metrics {
		switch m.Type {
		case kcloudv1alpha1.MetricCost:
			if cc := wo.Spec.CostConstraints; cc != nil && cc.MaxCostPerHour != nil {
				costCap(m.Threshold / 100 * *cc.MaxCostPerHour)
			}
		case kcloudv1alpha1.MetricPower:
			powerCap(m.Threshold)
		}
	}
	if err := r.policyLimits(ctx, st, costCap, budget); err != nil {
		return false, err
	}
	st.limits = l
	return true, nil
}

// policyLimits applies the CostPolicies in deny or scale-down enforcement that cover the target's
// pods (judged by the first pod, or the pod template when none exists).
func (r *Reconciler) policyLimits(ctx context.Context, st *state, costCap func(float64), budget func(remaining, hours float64)) error {
	var probe *corev1.Pod
	if len(st.pods) > 0 {
		probe = st.pods[0]
	} else if p, err := r.templatePod(ctx, st); err == nil {
		probe = p
	} else {
		return nil
	}
	policies := &kcloudv1alpha1.CostPolicyList{}
	if err := r.Client.List(ctx, policies); err != nil {
		return fmt.Errorf("listing CostPolicies: %w", err)
	}
	for i := range policies.Items {
		p := &policies.Items[i]
		if p.Spec.Enforcement != kcloudv1alpha1.EnforcementDeny && p.Spec.Enforcement != kcloudv1alpha1.EnforcementScaleDown {
			continue
		}
		if !kube.Covers(p.Spec.PolicyTarget, probe) {
			continue
		}
		// What the policy's other pods cost now; the status counts ours too.
		others := max(0, p.Status.CurrentCostPerHour-st.currentCost)
		if p.Spec.MaxCostPerHour != nil {
			costCap(*p.Spec.MaxCostPerHour - others)
		}
		if p.Spec.Budget != nil && p.Status.RemainingBudget != nil {
			if end, err := model.PeriodEnd(st.now, kube.PeriodOf(p.Spec.Budget.Period)); err == nil {
				hours := end.Sub(st.now).Hours()
				budget(*p.Status.RemainingBudget-others*hours, hours)
			}
		}
	}
	return nil
}

// decide calls model.DecideReplicas with the histories, the stabilization window and the limits.
func (r *Reconciler) decide(_ context.Context, st *state) (bool, error) {
	as := st.as
	mode := model.ScalingPredictive
	if as.Mode == kcloudv1alpha1.ScalingReactive {
		mode = model.ScalingReactive
	}
	window := 300 * time.Second
	if as.StabilizationWindowSeconds != nil {
		window = time.Duration(*as.StabilizationWindowSeconds) * time.Second
	}
	lead := 300 * time.Second
	if as.LeadSeconds != nil {
		lead = time.Duration(*as.LeadSeconds) * time.Second
	}
	season := r.seasonSteps()
	// Holt-Winters factors are refitted once per 1/24 season (an hour of a day) and reused between.
	refit := int64(max(1, season/24))
	for i, t := range st.types {
		if h := st.mem.histories[t]; h.params != nil && st.slot-h.fittedAt < refit {
			st.demands[i].Params = h.params
		}
	}
	d := model.DecideReplicas(model.ScaleInput{
		Now: st.now, CurrentReplicas: st.scale.Spec.Replicas, Mode: mode, Metrics: st.demands,
		Step: r.step(), Season: season, Lead: lead, StabilizationWindow: window, Recent: st.mem.recent, Limits: st.limits,
	})
	for i, t := range st.types {
		if mode == model.ScalingPredictive && st.demands[i].Params == nil && d.Forecasts[i].Method == model.ForecastHoltWinters {
			p := d.Forecasts[i].Params
			h := st.mem.histories[t]
			h.params, h.fittedAt = &p, st.slot
		}
	}
	// Keep this step's recommendation (replacing an earlier one of the same step) and the window's.
	recent := st.mem.recent[:0:0]
	for _, rec := range st.mem.recent {
		if st.now.Sub(rec.At) < window && !rec.At.Equal(st.now) {
			recent = append(recent, rec)
		}
	}
	st.mem.recent = append(recent, model.Recommendation{At: st.now, Replicas: d.Recommendation})
	st.decision = d
	return true, nil
}

// applyScale writes the scale subresource when the decision differs from the current count.
func (r *Reconciler) applyScale(ctx context.Context, st *state) (bool, error) {
	d := st.decision
	current := st.scale.Spec.Replicas
	limitReason := limitConditionReason(d.Limit)
	if limitReason != "" {
		msg := fmt.Sprintf("%d replicas instead of %d: %s", d.DesiredReplicas, d.Recommendation, d.Reason)
		st.setCondition(kcloudv1alpha1.ConditionScalingLimited, metav1.ConditionTrue, limitReason, msg,
			&event{corev1.EventTypeNormal, kcloudv1alpha1.ReasonScaleLimited, "Autoscale", fmt.Sprintf("held to %d replicas by %s: %s", d.DesiredReplicas, d.Limit, d.Reason)})
	} else {
		st.setCondition(kcloudv1alpha1.ConditionScalingLimited, metav1.ConditionFalse, kcloudv1alpha1.ReasonWithinLimits,
			"the replica count is what demand asks for", nil)
	}
	if d.DesiredReplicas == current {
		return true, nil
	}
	scale := st.scale.DeepCopy()
	scale.Spec.Replicas = d.DesiredReplicas
	if err := r.Client.SubResource("scale").Update(ctx, st.target, client.WithSubResourceBody(scale)); err != nil {
		msg := fmt.Sprintf("setting %d replicas: %v", d.DesiredReplicas, err)
		st.setCondition(kcloudv1alpha1.ConditionAbleToScale, metav1.ConditionFalse, kcloudv1alpha1.ReasonScaleFailed, msg,
			&event{corev1.EventTypeWarning, kcloudv1alpha1.ReasonScaleFailed, "Autoscale", msg})
		if apierrors.IsConflict(err) {
			return false, nil // someone else scaled meanwhile: decide again at the next step
		}
		return false, fmt.Errorf("updating the scale of %s %s/%s: %w", st.wo.Spec.TargetRef.Kind, st.wo.Namespace, st.wo.Spec.TargetRef.Name, err)
	}
	st.scaled = true
	reason, direction := kcloudv1alpha1.ReasonScaledUp, "up"
	if d.DesiredReplicas < current {
		reason, direction = kcloudv1alpha1.ReasonScaledDown, "down"
	}
	scaleEvents.WithLabelValues(st.wo.Namespace, st.wo.Name, direction).Inc()
	st.events = append(st.events, event{corev1.EventTypeNormal, reason, "Scale",
		fmt.Sprintf("%s %s from %d to %d replicas: %s", st.wo.Spec.TargetRef.Kind, st.wo.Spec.TargetRef.Name, current, d.DesiredReplicas, d.Reason)})
	log.FromContext(ctx).Info("Scaled target", "workloadOptimizer", klog.KObj(st.wo), "kind", st.wo.Spec.TargetRef.Kind,
		"target", st.wo.Spec.TargetRef.Name, "from", current, "to", d.DesiredReplicas, "reason", d.Reason)
	return true, nil
}

// limitConditionReason is the ScalingLimited reason of a model limit.
func limitConditionReason(l model.ScalingLimit) string {
	switch l {
	case model.LimitMinReplicas:
		return "MinReplicas"
	case model.LimitMaxReplicas:
		return "MaxReplicas"
	case model.LimitCostCap:
		return "MaxCostPerHour"
	case model.LimitPowerCap:
		return "MaxPowerUsage"
	case model.LimitBudget:
		return "Budget"
	}
	return ""
}

// buildStatus is status.autoScaling after this evaluation.
func (r *Reconciler) buildStatus(st *state) *kcloudv1alpha1.AutoScalingStatus {
	old := st.wo.Status.AutoScaling
	s := &kcloudv1alpha1.AutoScalingStatus{Mode: st.as.Mode, Conditions: st.conds, Metrics: st.readings,
		LastEvaluationTime: &metav1.Time{Time: st.now}}
	if s.Mode == "" {
		s.Mode = kcloudv1alpha1.ScalingPredictive
	}
	if old != nil {
		s.LastScaleTime = old.LastScaleTime
	}
	if st.scale == nil {
		if old != nil {
			s.CurrentReplicas, s.DesiredReplicas = old.CurrentReplicas, old.DesiredReplicas
		}
		return s
	}
	d := st.decision
	s.CurrentReplicas = st.scale.Spec.Replicas
	s.DesiredReplicas = d.DesiredReplicas
	s.Recommendation = d.Recommendation
	s.Metric = kcloudv1alpha1.MetricType(d.Metric)
	s.Demand = roundFigure(d.Demand)
	s.Limit = string(d.Limit)
	s.Reason = d.Reason
	if st.scaled {
		s.LastScaleTime = &metav1.Time{Time: st.now}
	}
	if len(d.Forecast) > 0 {
		f := &kcloudv1alpha1.ForecastStatus{Method: string(d.Method),
			HorizonSeconds: int64(time.Duration(len(d.Forecast)) * r.step() / time.Second)}
		f.Peak = math.Inf(-1)
		for _, v := range d.Forecast {
			if !math.IsNaN(v) {
				f.Values = append(f.Values, roundFigure(v))
				f.Peak = max(f.Peak, roundFigure(v))
			}
		}
		if math.IsInf(f.Peak, -1) {
			f.Peak = 0
		}
		if h := st.mem.histories[s.Metric]; h != nil {
			f.HistoryPoints = int32(h.known())
		}
		s.Forecast = f
	}
	return s
}

// roundFigure keeps four decimals, so status does not churn on float noise.
func roundFigure(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*1e4) / 1e4
}

// patchStatus writes status.autoScaling alone, with a merge patch, when it changed.
func (r *Reconciler) patchStatus(ctx context.Context, wo *kcloudv1alpha1.WorkloadOptimizer, s *kcloudv1alpha1.AutoScalingStatus) error {
	if equality.Semantic.DeepEqual(wo.Status.AutoScaling, s) {
		return nil
	}
	before := wo.DeepCopy()
	wo.Status.AutoScaling = s
	if err := r.Client.Status().Patch(ctx, wo, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("writing status.autoScaling of WorkloadOptimizer %s/%s: %w", wo.Namespace, wo.Name, err)
	}
	return nil
}

// observe exports the decision.
func (r *Reconciler) observe(st *state, s *kcloudv1alpha1.AutoScalingStatus) {
	ns, name := st.wo.Namespace, st.wo.Name
	if st.scale == nil {
		return
	}
	currentReplicas.WithLabelValues(ns, name).Set(float64(s.CurrentReplicas))
	desiredReplicas.WithLabelValues(ns, name).Set(float64(s.DesiredReplicas))
	for i, t := range st.types {
		series := st.demands[i].Demand
		if v := series[len(series)-1]; !math.IsNaN(v) {
			demand.WithLabelValues(ns, name, string(t)).Set(v)
		}
		if i < len(st.decision.Forecasts) {
			peak := math.NaN()
			for _, v := range st.decision.Forecasts[i].Values {
				if !math.IsNaN(v) && (math.IsNaN(peak) || v > peak) {
					peak = v
				}
			}
			if !math.IsNaN(peak) {
				forecastPeak.WithLabelValues(ns, name, string(t)).Set(peak)
			}
		}
	}
}

// templatePod is a pod of the target's template, to price a replica before any runs.
func (r *Reconciler) templatePod(ctx context.Context, st *state) (*corev1.Pod, error) {
	if st.target == nil {
		return nil, fmt.Errorf("no target")
	}
	obj := st.target.DeepCopyObject().(client.Object)
	if err := r.Reader.Get(ctx, client.ObjectKeyFromObject(st.target), obj); err != nil {
		return nil, fmt.Errorf("reading %s %s/%s: %w", st.wo.Spec.TargetRef.Kind, st.wo.Namespace, st.wo.Spec.TargetRef.Name, err)
	}
	var tpl corev1.PodTemplateSpec
	switch o := obj.(type) {
	case *appsv1.Deployment:
		tpl = o.Spec.Template
	case *appsv1.StatefulSet:
		tpl = o.Spec.Template
	case *appsv1.ReplicaSet:
		tpl = o.Spec.Template
	default:
		return nil, fmt.Errorf("%T has no pod template", obj)
	}
	pod := &corev1.Pod{ObjectMeta: *tpl.ObjectMeta.DeepCopy(), Spec: *tpl.Spec.DeepCopy()}
	pod.Namespace = st.wo.Namespace
	return pod, nil
}

func joinErrors(msgs []string) string {
	out := ""
	for i, m := range msgs {
		if i > 0 {
			out += "; "
		}
		out += m
	}
	return out
}
