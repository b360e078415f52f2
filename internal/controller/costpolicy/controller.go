// Package costpolicy reconciles CostPolicies: it accounts the money their covered pods spend over
// the budget period in status (so a restarted operator continues where it stopped), reports the
// hourly cost against the cap, and raises BudgetWarning, BudgetExceeded and CapExceeded.
package costpolicy

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sevents "k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/accounting"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/internal/events"
	"kcloud.io/optimizer/internal/metrics"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// Reconciler accounts one CostPolicy at a time.
type Reconciler struct {
	Client   client.Client
	Fleet    *cluster.Fleet
	Recorder k8sevents.EventRecorder
	Clock    clock.PassiveClock
	// Interval is how often spend is accounted (default 1 minute); a pod deleted between two
	// accountings is charged up to the earlier one.
	Interval time.Duration
	// Settle is how far accounting trails the clock: the cache has seen every pod start and
	// deletion up to now-Settle, so none of that time is charged wrongly.
	Settle time.Duration
}

// Reconcile accounts the policy's spend up to now.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	cp := &kcloudv1alpha1.CostPolicy{}
	if err := r.Client.Get(ctx, req.NamespacedName, cp); err != nil {
		if apierrors.IsNotFound(err) {
			metrics.ForgetCostPolicy(req.Name)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("reading CostPolicy %s: %w", req.Name, err)
	}
	// Whole seconds: status keeps times to the second, and a restart must resume exactly there.
	now := r.Clock.Now().Add(-r.Settle).Truncate(time.Second)
	before := cp.Status.DeepCopy()
	s := &cp.Status

	period := model.PeriodMonth
	if cp.Spec.Budget != nil {
		period = kube.PeriodOf(cp.Spec.Budget.Period)
	}
	ledger, from, err := accounting.ResumeLedger(s.PeriodStart, s.AccountedUntil, s.CurrentSpend, now, period)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("CostPolicy %s: spec.budget.period: %w", cp.Name, err)
	}
	covered, err := accounting.Cover(ctx, r.Fleet, cp.Spec.PolicyTarget, from, now, 0)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("CostPolicy %s: %w", cp.Name, err)
	}
	ledger.Amount += covered.SpendUSD
	if now.After(ledger.AccountedUntil) {
		ledger.AccountedUntil = now
	}
	s.PeriodStart = &metav1.Time{Time: ledger.PeriodStart}
	s.AccountedUntil = &metav1.Time{Time: ledger.AccountedUntil}
	s.CurrentSpend = ledger.Amount // exact: rounding on every accounting would drift
	// Micro-dollars: enough to lose no cent over a period, few enough digits to read.
	s.CurrentCostPerHour = model.Round(covered.CostPerHour, 6)
	s.CoveredPods = covered.Pods
	s.ObservedGeneration = cp.Generation
	s.RemainingBudget = nil

	conds := accounting.NewPolicyConditions(&s.Conditions, cp.Generation, cp.Spec.Enforcement)
	conds.Selector(cp.Spec.Selector != nil, covered.BadSelector)
	var amount *float64
	var thresholds []int32
	if b := cp.Spec.Budget; b != nil {
		left := b.Amount - ledger.Amount
		s.RemainingBudget = &left
		amount, thresholds = &b.Amount, b.AlertThresholds
	}
	conds.Budget(amount, thresholds, ledger.Amount, fmt.Sprintf("spent %.4f of %.4f USD in the %s since %s",
		ledger.Amount, accounting.ValueOr0(amount), period, ledger.PeriodStart.Format(time.RFC3339)))
	c := cp.Spec.MaxCostPerHour
	conds.Cap(kcloudv1alpha1.ConditionCapExceeded, c != nil, c != nil && covered.CostPerHour > *c,
		fmt.Sprintf("%d covered pod(s) cost %.4f USD/h against maxCostPerHour %.4f", covered.Pods, covered.CostPerHour, accounting.ValueOr0(c)))
	conds.FiguresComplete(kcloudv1alpha1.ReasonUnpricedNodes, "price", covered.Unpriced)
	conds.Departed(covered.Departed)

	if !equality.Semantic.DeepEqual(before, s) {
		// Only over the status it was computed from (optimistic lock): a stale write, say by a
		// replica that has just lost the lease, would drop what pods released since were charged.
		patch := client.MergeFromWithOptions(&kcloudv1alpha1.CostPolicy{ObjectMeta: cp.ObjectMeta, Status: *before}, client.MergeFromWithOptimisticLock{})
		if err := r.Client.Status().Patch(ctx, cp, patch); err != nil {
			return reconcile.Result{}, fmt.Errorf("writing status of CostPolicy %s: %w", cp.Name, err)
		}
		events.Record(r.Recorder, cp, nil, conds.Events)
	}
	metrics.PolicySpend.WithLabelValues(cp.Name).Set(s.CurrentSpend)
	metrics.PolicyCost.WithLabelValues(cp.Name).Set(s.CurrentCostPerHour)
	metrics.ObserveCostPolicyLimits(cp.Name, limits(cp.Spec, ledger.Amount))
	log.FromContext(ctx).V(1).Info("Accounted policy", "costPolicy", klog.KObj(cp), "spend", s.CurrentSpend, "costPerHour", s.CurrentCostPerHour, "pods", s.CoveredPods)
	return reconcile.Result{RequeueAfter: accounting.NextAccounting(covered.HeldUntil, ledger.AccountedUntil, r.Clock.Now(), r.Settle, r.interval())}, nil
}

// limits are the budget and cap spec sets, and the highest alert threshold spent reaches.
func limits(spec kcloudv1alpha1.CostPolicySpec, spent float64) metrics.PolicyLimits {
	l := metrics.PolicyLimits{Cap: spec.MaxCostPerHour}
	if b := spec.Budget; b != nil {
		l.Budget, l.ThresholdPercent = &b.Amount, model.ThresholdsReached(spent, b.Amount, b.AlertThresholds)
	}
	return l
}

func (r *Reconciler) interval() time.Duration {
	if r.Interval <= 0 {
		return time.Minute
	}
	return r.Interval
}

// SetupWithManager reconciles on spec changes, on a covered pod's deletion, and then every interval.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("costpolicy").
		For(&kcloudv1alpha1.CostPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A deleted pod the accounting finalizer holds is accounted to its end at once, so it goes.
		Watches(&corev1.Pod{}, accounting.CoveringCostPolicies(r.Client), builder.WithPredicates(accounting.NowHeld)).
		Complete(r)
}
