// Package powerpolicy reconciles PowerPolicies: it reports the watts their covered pods draw against
// the cap, accounts energy and emissions over the budget period in status (so a restarted operator
// continues where it stopped), and raises BudgetWarning, BudgetExceeded, CapExceeded and
// CarbonIntensityExceeded.
package powerpolicy

import (
	"context"
	"fmt"
	"strings"
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

// Reconciler accounts one PowerPolicy at a time.
type Reconciler struct {
	Client   client.Client
	Fleet    *cluster.Fleet
	Recorder k8sevents.EventRecorder
	Clock    clock.PassiveClock
	// Interval is how often energy is accounted (default 1 minute).
	Interval time.Duration
	// Settle is how far accounting trails the clock: the cache has seen every pod start and
	// deletion up to now-Settle, so none of that time is charged wrongly.
	Settle time.Duration
}

// Reconcile accounts the policy's energy and emissions up to now.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pp := &kcloudv1alpha1.PowerPolicy{}
	if err := r.Client.Get(ctx, req.NamespacedName, pp); err != nil {
		if apierrors.IsNotFound(err) {
			metrics.ForgetPowerPolicy(req.Name)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("reading PowerPolicy %s: %w", req.Name, err)
	}
	// Whole seconds: status keeps times to the second, and a restart must resume exactly there.
	now := r.Clock.Now().Add(-r.Settle).Truncate(time.Second)
	before := pp.Status.DeepCopy()
	s := &pp.Status

	period := model.PeriodMonth
	if pp.Spec.EnergyBudget != nil {
		period = kube.PeriodOf(pp.Spec.EnergyBudget.Period)
	}
	carbon := s.CarbonThisPeriodKg
	next, from, err := accounting.ResumeLedger(s.PeriodStart, s.AccountedUntil, s.EnergyThisPeriodKWh, now, period)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("PowerPolicy %s: spec.energyBudget.period: %w", pp.Name, err)
	}
	if s.PeriodStart == nil || !next.PeriodStart.Equal(s.PeriodStart.Time) {
		carbon = 0 // a new period
	}
	maxCarbon := 0.0
	if pp.Spec.MaxCarbonIntensity != nil {
		maxCarbon = *pp.Spec.MaxCarbonIntensity
	}
	covered, err := accounting.Cover(ctx, r.Fleet, pp.Spec.PolicyTarget, from, now, maxCarbon)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("PowerPolicy %s: %w", pp.Name, err)
	}
	next.Amount += covered.EnergyKWh
	carbon += covered.CarbonKg
	if now.After(next.AccountedUntil) {
		next.AccountedUntil = now
	}
	s.PeriodStart = &metav1.Time{Time: next.PeriodStart}
	s.AccountedUntil = &metav1.Time{Time: next.AccountedUntil}
	s.EnergyThisPeriodKWh = next.Amount
	s.CarbonThisPeriodKg = carbon
	s.CurrentPowerWatts = model.Round(covered.PowerWatts, 1)
	s.CoveredPods = covered.Pods
	s.ObservedGeneration = pp.Generation

	conds := accounting.NewPolicyConditions(&s.Conditions, pp.Generation, pp.Spec.Enforcement)
	conds.Selector(pp.Spec.Selector != nil, covered.BadSelector)
	var amount *float64
	var thresholds []int32
	if b := pp.Spec.EnergyBudget; b != nil {
		amount, thresholds = &b.KilowattHours, b.AlertThresholds
	}
	conds.Budget(amount, thresholds, next.Amount, fmt.Sprintf("used %.4f of %.4f kWh in the %s since %s",
		next.Amount, accounting.ValueOr0(amount), period, next.PeriodStart.Format(time.RFC3339)))
	c := pp.Spec.MaxPowerWatts
	conds.Cap(kcloudv1alpha1.ConditionCapExceeded, c != nil, c != nil && covered.PowerWatts > *c,
		fmt.Sprintf("%d covered pod(s) draw %.1f W against maxPowerWatts %.1f", covered.Pods, covered.PowerWatts, accounting.ValueOr0(c)))
	carbonMsg := fmt.Sprintf("every covered pod runs on a grid at or below %.0f gCO2/kWh", maxCarbon)
	if len(covered.AboveCarbon) > 0 {
		carbonMsg = fmt.Sprintf("%d pod(s) run on grids above maxCarbonIntensity %.0f gCO2/kWh: %s", len(covered.AboveCarbon), maxCarbon, strings.Join(first(covered.AboveCarbon, 5), "; "))
	}
	conds.Cap(kcloudv1alpha1.ConditionCarbonExceeded, pp.Spec.MaxCarbonIntensity != nil, len(covered.AboveCarbon) > 0, carbonMsg)
	conds.FiguresComplete(kcloudv1alpha1.ReasonUnpoweredNodes, "power figure", covered.Unpowered)
	conds.Departed(covered.Departed)

	if !equality.Semantic.DeepEqual(before, s) {
		// Only over the status it was computed from (optimistic lock): a stale write, say by a
		// replica that has just lost the lease, would drop what pods released since were charged.
		patch := client.MergeFromWithOptions(&kcloudv1alpha1.PowerPolicy{ObjectMeta: pp.ObjectMeta, Status: *before}, client.MergeFromWithOptimisticLock{})
		if err := r.Client.Status().Patch(ctx, pp, patch); err != nil {
			return reconcile.Result{}, fmt.Errorf("writing status of PowerPolicy %s: %w", pp.Name, err)
		}
		events.Record(r.Recorder, pp, nil, conds.Events)
	}
	metrics.PolicyEnergy.WithLabelValues(pp.Name).Set(s.EnergyThisPeriodKWh)
	metrics.PolicyPower.WithLabelValues(pp.Name).Set(s.CurrentPowerWatts)
	metrics.PolicyCarbon.WithLabelValues(pp.Name).Set(s.CarbonThisPeriodKg)
	metrics.ObservePowerPolicyLimits(pp.Name, limits(pp.Spec, next.Amount))
	log.FromContext(ctx).V(1).Info("Accounted policy", "powerPolicy", klog.KObj(pp), "kWh", s.EnergyThisPeriodKWh, "watts", s.CurrentPowerWatts, "pods", s.CoveredPods)
	interval := r.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	return reconcile.Result{RequeueAfter: accounting.NextAccounting(covered.HeldUntil, next.AccountedUntil, r.Clock.Now(), r.Settle, interval)}, nil
}

// limits are the energy budget and power cap spec sets, and the highest alert threshold used
// reaches.
func limits(spec kcloudv1alpha1.PowerPolicySpec, used float64) metrics.PolicyLimits {
	l := metrics.PolicyLimits{Cap: spec.MaxPowerWatts}
	if b := spec.EnergyBudget; b != nil {
		l.Budget, l.ThresholdPercent = &b.KilowattHours, model.ThresholdsReached(used, b.KilowattHours, b.AlertThresholds)
	}
	return l
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}

// SetupWithManager reconciles on spec changes, on a covered pod's deletion, and then every interval.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("powerpolicy").
		For(&kcloudv1alpha1.PowerPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A deleted pod the accounting finalizer holds is accounted to its end at once, so it goes.
		Watches(&corev1.Pod{}, accounting.CoveringPowerPolicies(r.Client), builder.WithPredicates(accounting.NowHeld)).
		Complete(r)
}
