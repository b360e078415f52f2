// Package workloadoptimizer reconciles WorkloadOptimizers: it finds the workload's pods, prices and
// powers them from the nodes they run on, compares that with the best placement the model finds,
// accounts the workload's budget, and reports it all in status, events and metrics.
package workloadoptimizer

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	k8sevents "k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/accounting"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/internal/events"
	"kcloud.io/optimizer/internal/metrics"
	"kcloud.io/optimizer/pkg/model"
)

// Reconciler reconciles one WorkloadOptimizer at a time.
type Reconciler struct {
	Client   ctrl.Client
	Reader   ctrl.Reader // uncached reads of targets of any kind
	Fleet    *cluster.Fleet
	Recorder k8sevents.EventRecorder
	Clock    clock.PassiveClock
	// Interval is how often a workload is re-evaluated without any event (default 5 minutes).
	Interval time.Duration
	// Settle is how far the budget's accounting trails the clock (costpolicy.Reconciler.Settle).
	Settle time.Duration
	// Weights and TargetWorkload are kcloud-scheduler's score weights and target workload (its
	// plugin args), so that the best placement is the one the scheduler would choose; nil and ""
	// take the scheduler's defaults.
	Weights        *model.Weights
	TargetWorkload string
	// Catalog names the ConfigMaps that price the fleet (the catalog and its price source): a change
	// of either re-evaluates every optimizer at once, so that status follows the prices within
	// seconds rather than at the next Interval. Empty: none is watched.
	Catalog []types.NamespacedName

	scoringOnce sync.Once
	scoringSet  model.Scoring
	scoringErr  error
	offers      offers

	savings savingsClock
	sources powerSources
}

// state is what one reconcile works on; sub-reconcilers fill it in turn.
type state struct {
	wo        *kcloudv1alpha1.WorkloadOptimizer
	now       time.Time
	pods      []*corev1.Pod // the workload's pods
	targetErr error         // why the target could not be read, if it could not
	// selectorErr is why spec.selector does not parse; the pods are found without it.
	selectorErr error
	// heldUntil is the latest end of the workload's deleted pods the accounting finalizer holds.
	heldUntil time.Time
	// unpricedEnded names the ended pods the budget could not price ("pod on node: why").
	unpricedEnded []string
	events        []events.Event // recorded once status is written
	// figures of running pods, in the order of pods
	running []runningPod
	current totals
	// placement in the cluster's marginal terms: what the workload adds to the bill and the draw
	// where it runs, where kcloud-scheduler would place it now (Best), and on an average feasible
	// node; cheapest is the cheapest feasible placement, whatever the preferences.
	placement model.Placement
	cheapest  model.Totals
	// preferenceCosts name the preferences that make the best placement dearer, and by how much.
	preferenceCosts []string
}

type runningPod struct {
	pod *corev1.Pod
	fig cluster.Figures
}

type totals struct{ cost, power float64 }

// Reconcile evaluates a WorkloadOptimizer and writes its status.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	wo := &kcloudv1alpha1.WorkloadOptimizer{}
	if err := r.Client.Get(ctx, req.NamespacedName, wo); err != nil {
		if apierrors.IsNotFound(err) {
			metrics.ForgetWorkload(req.Namespace, req.Name)
			r.savings.forget(req.NamespacedName)
			r.sources.forget(req.NamespacedName)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("reading WorkloadOptimizer %s: %w", req, err)
	}
	if !wo.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, r.finalize(ctx, wo)
	}
	if !controllerutil.ContainsFinalizer(wo, kcloudv1alpha1.FinalizerCleanup) {
		patch := ctrl.MergeFromWithOptions(wo.DeepCopy(), ctrl.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(wo, kcloudv1alpha1.FinalizerCleanup)
		if err := r.Client.Patch(ctx, wo, patch); err != nil {
			return reconcile.Result{}, fmt.Errorf("adding finalizer to WorkloadOptimizer %s: %w", req, err)
		}
	}

	st := &state{wo: wo, now: r.Clock.Now()}
	before := wo.Status.DeepCopy()
	for _, step := range []struct {
		name string
		run  func(context.Context, *state) error
	}{
		{"finding pods", r.findPods},
		{"linking pods", r.linkPods},
		{"pricing pods", r.price},
		{"searching the best placement", r.searchBest},
		{"accounting the budget", r.accountBudget},
		{"summarising", r.summarise},
	} {
		if err := step.run(ctx, st); err != nil {
			return reconcile.Result{}, fmt.Errorf("WorkloadOptimizer %s: %s: %w", req, step.name, err)
		}
	}

	if changed(before, &wo.Status) {
		wo.Status.LastOptimized = ptrTime(st.now)
		base := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: wo.ObjectMeta, Status: *before}
		patch := ctrl.MergeFrom(base)
		if wo.Status.Budget != nil {
			// A budget's ledger is written only over the status it was computed from: a stale write
			// would drop what another accounting already charged (pods released since).
			patch = ctrl.MergeFromWithOptions(base, ctrl.MergeFromWithOptimisticLock{})
		}
		if err := r.Client.Status().Patch(ctx, wo, patch); err != nil {
			return reconcile.Result{}, fmt.Errorf("writing status of WorkloadOptimizer %s: %w", req, err)
		}
		events.Record(r.Recorder, wo, nil, st.events)
	}
	r.observe(st)
	log.FromContext(ctx).V(1).Info("Evaluated workload", "workloadOptimizer", klog.KObj(wo), "phase", wo.Status.Phase,
		"costPerHour", wo.Status.CurrentCost, "watts", wo.Status.CurrentPower, "score", wo.Status.OptimizationScore)
	next := r.interval()
	if b := wo.Status.Budget; b != nil && st.heldUntil.After(b.AccountedUntil.Time) {
		// A held pod goes once the budget has accounted its end: look again as soon as it can.
		next = accounting.NextAccounting(st.heldUntil, b.AccountedUntil.Time, r.Clock.Now(), r.Settle, next)
	}
	return reconcile.Result{RequeueAfter: next}, nil
}

func (r *Reconciler) interval() time.Duration {
	if r.Interval <= 0 {
		return 5 * time.Minute
	}
	return r.Interval
}

// changed reports whether anything but the evaluation time differs.
func changed(before, after *kcloudv1alpha1.WorkloadOptimizerStatus) bool {
	a := after.DeepCopy()
	a.LastOptimized = before.LastOptimized
	return !equality.Semantic.DeepEqual(before, a)
}

// observe records the workload's metrics.
func (r *Reconciler) observe(st *state) {
	wo := st.wo
	ns, name := wo.Namespace, wo.Name
	metrics.OptimizationsTotal.WithLabelValues(ns, string(wo.Status.Phase)).Inc()
	metrics.OptimizationScore.WithLabelValues(ns, name).Set(wo.Status.OptimizationScore)
	metrics.WorkloadCost.WithLabelValues(ns, name).Set(wo.Status.CurrentCost)
	// Only a change of source drops the old series: scanning every workload's series on every
	// reconcile would cost more than the reconcile.
	if old, changed := r.sources.swap(ctrl.ObjectKeyFromObject(wo), wo.Status.PowerSource); changed {
		metrics.WorkloadPower.DeleteLabelValues(ns, name, old)
	}
	metrics.WorkloadPower.WithLabelValues(ns, name, wo.Status.PowerSource).Set(wo.Status.CurrentPower)
	pl := st.placement
	metrics.PowerSavingsWatts.WithLabelValues(ns, name).Set(max(0, pl.Mean.PowerWatts-pl.Current.PowerWatts))
	saved := r.savings.advance(ctrl.ObjectKeyFromObject(wo), st.now, max(0, pl.Mean.CostPerHour-pl.Current.CostPerHour))
	metrics.CostSavingsTotal.WithLabelValues(ns, name).Add(saved)
}

// powerSources remembers the power-source label of each workload's series.
type powerSources struct {
	mu sync.Mutex
	m  map[types.NamespacedName]string
}

// swap records a workload's source and returns the previous one when it differs.
func (p *powerSources) swap(key types.NamespacedName, source string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[types.NamespacedName]string{}
	}
	old, seen := p.m[key]
	p.m[key] = source
	return old, seen && old != source
}

func (p *powerSources) forget(key types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, key)
}
