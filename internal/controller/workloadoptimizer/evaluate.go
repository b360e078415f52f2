package workloadoptimizer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/accounting"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/internal/events"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/traces"
)

// Tolerances under which a placement counts as the best: differences smaller than these are noise
// no move would be worth.
const (
	costTolerance  = 0.01 // USD/h, or 1% of the current cost if larger
	powerTolerance = 1.0  // W, or 1% of the current power if larger
)

func runtimeConvert(raw map[string]any, out any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(raw, out)
}

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}

// price computes what each running pod costs and draws on its node.
func (r *Reconciler) price(ctx context.Context, st *state) error {
	measured := r.Fleet.Readings(ctx)
	for _, p := range st.pods {
		if !cluster.Running(p) {
			continue
		}
		fig, err := r.Fleet.PodFigures(ctx, p, measured)
		if err != nil {
			// One unpriceable node must not hide the rest of the workload; the pod counts as not
			// running and the reason is logged.
			log.FromContext(ctx).Error(err, "Pricing pod", "workloadOptimizer", klog.KObj(st.wo))
			continue
		}
		st.running = append(st.running, runningPod{pod: p, fig: fig})
		st.current.cost += fig.CostPerHour
		st.current.power += fig.PowerWatts
	}
	return nil
}

// searchBest finds what the running pods would cost and draw where kcloud-scheduler would place
// them now (the best placement), at the cheapest and on an average node, and what each of the
// workload's preferences costs.
func (r *Reconciler) searchBest(ctx context.Context, st *state) error {
	if len(st.running) == 0 {
		return nil
	}
	running := make([]*corev1.Pod, len(st.running))
	for i, rp := range st.running {
		running[i] = rp.pod
	}
	snap, err := r.Fleet.SnapshotFor(ctx, running)
	if err != nil {
		return err
	}
	// The policies' spot rules and preferences apply to every pod: read once, from the cache
	// without copies. Unreadable, none applies (as with no policy).
	costPolicies := &kcloudv1alpha1.CostPolicyList{}
	if err := r.Client.List(ctx, costPolicies, ctrl.UnsafeDisableDeepCopy); err != nil {
		costPolicies.Items = nil
	}
	powerPolicies := &kcloudv1alpha1.PowerPolicyList{}
	if err := r.Client.List(ctx, powerPolicies, ctrl.UnsafeDisableDeepCopy); err != nil {
		powerPolicies.Items = nil
	}
	policies := kube.PoliciesOf(costPolicies.Items, powerPolicies.Items)
	placed := make([]model.Placed, 0, len(st.running))
	rules := make([]kube.Rule, 0, len(st.running))
	for _, rp := range st.running {
		// Where the snapshot counted the pod; -1 when it did not (its node is cordoned or not
		// ready): the pod may only move.
		where, counted := snap.Placed[rp.pod.UID]
		if !counted {
			where = cluster.PlacedPod{Node: -1, Device: -1}
		}
		placed = append(placed, model.Placed{Pod: rp.fig.Pod, Node: where.Node, Device: where.Device})
		rules = append(rules, kube.NewRule(rp.pod, policies.For(rp.pod, st.wo).Spot))
	}
	// A pod may only move where it alone keeps the workload's caps; the scheduler enforces the
	// caps on the whole workload as it places each pod.
	maxCost, maxPower := math.Inf(1), math.Inf(1)
	if c := st.wo.Spec.CostConstraints; c != nil && c.MaxCostPerHour != nil {
		maxCost = *c.MaxCostPerHour
	}
	if c := st.wo.Spec.PowerConstraints; c != nil && c.MaxPowerUsage != nil {
		maxPower = *c.MaxPowerUsage
	}
	// A node without a price (or power figure) cannot be compared in money (or watts): moving there
	// is never reported as a saving. The pods' own nodes stay candidates whatever they are.
	allowed := func(pod, node int) bool {
		p, n, e := &placed[pod].Pod, &snap.Nodes[node], snap.Econ[node]
		return e.Unpriced == "" && e.Unpowered == "" &&
			model.AttributedCost(p, n, e) <= maxCost && model.AttributedPower(p, n, e) <= maxPower &&
			rules[pod].Allows(snap.Objs[node], e)
	}
	st.placement = model.WorkloadPlacement(placed, snap.Nodes, snap.Econ, allowed)
	st.cheapest = st.placement.Best
	sc, err := r.scoring()
	if err != nil {
		return err
	}
	// The preferences are the workload's: its optimizer's and those of the policies covering its pods.
	sc.Prefs = policies.For(running[0], st.wo).Prefs
	sc.Offer = r.offers.forSnapshot(snap, sc.Types)
	scored := model.ScoredPlacement(placed, snap.Nodes, snap.Econ, allowed, sc)
	st.placement.Best = model.Totals{CostPerHour: min(st.placement.Current.CostPerHour, scored.CostPerHour),
		PowerWatts: min(st.placement.Current.PowerWatts, scored.PowerWatts)}
	st.preferenceCosts = preferenceCosts(sc, scored, func(without model.Scoring) model.Totals {
		return model.ScoredPlacement(placed, snap.Nodes, snap.Econ, allowed, without)
	})
	return nil
}

// preferenceCosts says, for each preference of the workload that makes the scheduler's placement
// dearer, by how much: what the placement costs with it against without it.
func preferenceCosts(sc model.Scoring, with model.Totals, place func(model.Scoring) model.Totals) []string {
	var out []string
	for _, pref := range []struct {
		name string
		set  bool
		off  func(*model.Preferences)
	}{
		{"preferSpot", sc.Prefs.Spot, func(p *model.Preferences) { p.Spot = false }},
		{"preferGreen", sc.Prefs.Green, func(p *model.Preferences) { p.Green = false }},
	} {
		if !pref.set {
			continue
		}
		without := sc
		pref.off(&without.Prefs)
		if extra := with.CostPerHour - place(without).CostPerHour; extra > math.Max(costTolerance, 0.01*with.CostPerHour) {
			out = append(out, fmt.Sprintf("%s: %.2f USD/h above the placement without it", pref.name, extra))
		}
	}
	return out
}

// scoring is how kcloud-scheduler ranks nodes: the configured weights and target workload, by
// default the scheduler's defaults (model.DefaultWeights, the openb default trace).
func (r *Reconciler) scoring() (model.Scoring, error) {
	r.scoringOnce.Do(func() {
		r.scoringSet = model.Scoring{Weights: model.DefaultWeights}
		if r.Weights != nil {
			r.scoringSet.Weights = *r.Weights
		}
		target := r.TargetWorkload
		if target == "" {
			target = traces.OpenbDefaultPods
		}
		r.scoringSet.Types, r.scoringErr = traces.TypicalPodTypes(target)
	})
	return r.scoringSet, r.scoringErr
}

// accountBudget adds the spend since the last accounting to the workload's budget.
func (r *Reconciler) accountBudget(ctx context.Context, st *state) error {
	c := st.wo.Spec.CostConstraints
	if c == nil || c.BudgetLimit == nil {
		st.wo.Status.Budget = nil
		return nil
	}
	var start, until *metav1.Time
	spent := 0.0
	if b := st.wo.Status.Budget; b != nil {
		start, until, spent = &b.PeriodStart, &b.AccountedUntil, b.Spend
	}
	// Whole seconds: status keeps times to the second, and a restart must resume exactly there.
	now := st.now.Add(-r.Settle).Truncate(time.Second)
	ledger, from, err := accounting.ResumeLedger(start, until, spent, now, kube.PeriodOf(c.BudgetPeriod))
	if err != nil {
		return fmt.Errorf("spec.costConstraints.budgetPeriod: %w", err)
	}
	for _, p := range st.pods {
		if !cluster.Ran(p) {
			continue
		}
		rate := 0.0
		for _, rp := range st.running {
			if rp.pod.UID == p.UID {
				rate = rp.fig.CostPerHour
			}
		}
		if rate == 0 {
			// Finished pods are no longer running: price them from their node all the same.
			fig, err := r.Fleet.PodFigures(ctx, p, nil)
			switch {
			case errors.Is(err, cluster.ErrNotSynced):
				return fmt.Errorf("pod %s: %w", p.Name, err) // nothing is accounted from half a cache
			case err != nil:
				// Shown in FiguresComplete, not dropped: the budget leaves this pod's cost out.
				st.unpricedEnded = append(st.unpricedEnded, fmt.Sprintf("%s on %s: %s", p.Name, p.Spec.NodeName, err))
				continue
			case fig.Unpriced != "":
				st.unpricedEnded = append(st.unpricedEnded, fmt.Sprintf("%s on %s: %s", p.Name, fig.Node, fig.Unpriced))
			}
			rate = fig.CostPerHour
		}
		run := cluster.RunInterval(p)
		if accounting.Held(p) && run.End.After(st.heldUntil) {
			st.heldUntil = run.End
		}
		ledger.Amount += rate * run.HoursWithin(from, now)
	}
	if now.After(ledger.AccountedUntil) {
		ledger.AccountedUntil = now
	}
	st.wo.Status.Budget = &kcloudv1alpha1.BudgetStatus{
		PeriodStart:    metav1.NewTime(ledger.PeriodStart),
		AccountedUntil: metav1.NewTime(ledger.AccountedUntil),
		Spend:          ledger.Amount, // exact: rounding on every accounting would drift
		Remaining:      *c.BudgetLimit - ledger.Amount,
	}
	return nil
}

// summarise writes the figures, the conditions and the phase, and queues events for transitions.
func (r *Reconciler) summarise(_ context.Context, st *state) error {
	wo := st.wo
	s := &wo.Status
	prevPhase := s.Phase
	s.ObservedGeneration = wo.Generation
	s.Replicas = int32(len(st.pods))
	s.RunningReplicas = int32(len(st.running))
	s.CurrentCost = model.Round(st.current.cost, 4)
	s.CurrentPower = model.Round(st.current.power, 1)
	pl := st.placement
	s.BestCost = model.Round(pl.Best.CostPerHour, 4)
	s.BestPower = model.Round(pl.Best.PowerWatts, 1)
	s.PotentialSavings = model.Round(max(0, pl.Current.CostPerHour-pl.Best.CostPerHour), 4)
	var nodes, sources []string
	for _, rp := range st.running {
		if !slices.Contains(nodes, rp.fig.Node) {
			nodes = append(nodes, rp.fig.Node)
		}
		sources = append(sources, rp.fig.PowerSource)
	}
	slices.Sort(nodes)
	s.AssignedNodes = nodes
	s.AssignedNode = ""
	if len(st.running) > 0 {
		s.AssignedNode = st.running[0].fig.Node
	}
	s.PowerSource = cluster.CombineSources(sources)
	s.OptimizationScore = 0
	if len(st.running) > 0 {
		s.OptimizationScore = model.Round(model.OptimizationScore(pl.Current, pl.Best), 4)
	}

	was := map[string]metav1.ConditionStatus{}
	prevConditions := slices.Clone(s.Conditions)
	for _, c := range s.Conditions {
		was[c.Type] = c.Status
	}
	set := func(t string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: wo.Generation})
	}
	cheapest, frugal := optimality(pl)
	switch {
	case len(st.running) == 0:
		msg := fmt.Sprintf("none of the workload's %d pod(s) runs on a node", len(st.pods))
		set(kcloudv1alpha1.ConditionCostOptimized, metav1.ConditionUnknown, kcloudv1alpha1.ReasonNoRunningPods, msg)
		set(kcloudv1alpha1.ConditionPowerOptimized, metav1.ConditionUnknown, kcloudv1alpha1.ReasonNoRunningPods, msg)
	default:
		if cheapest {
			set(kcloudv1alpha1.ConditionCostOptimized, metav1.ConditionTrue, kcloudv1alpha1.ReasonCheapestPlacement,
				fmt.Sprintf("%d running pod(s) add %.4f USD/h to the cluster's bill; kcloud-scheduler would place them no cheaper now%s",
					len(st.running), pl.Current.CostPerHour, preferenceNote(st)))
		} else {
			set(kcloudv1alpha1.ConditionCostOptimized, metav1.ConditionFalse, kcloudv1alpha1.ReasonCheaperPlacementAvailable,
				fmt.Sprintf("%d running pod(s) add %.4f USD/h to the cluster's bill; where kcloud-scheduler would place them now they would add %.4f USD/h (%.4f less)%s",
					len(st.running), pl.Current.CostPerHour, pl.Best.CostPerHour, pl.Current.CostPerHour-pl.Best.CostPerHour, preferenceNote(st)))
		}
		if frugal {
			set(kcloudv1alpha1.ConditionPowerOptimized, metav1.ConditionTrue, kcloudv1alpha1.ReasonLowestPowerPlacement,
				fmt.Sprintf("%d running pod(s) add %.1f W to the cluster's draw; no feasible placement adds less", len(st.running), pl.Current.PowerWatts))
		} else {
			set(kcloudv1alpha1.ConditionPowerOptimized, metav1.ConditionFalse, kcloudv1alpha1.ReasonLowerPowerPlacementAvailable,
				fmt.Sprintf("%d running pod(s) add %.1f W to the cluster's draw; on feasible nodes they would add %.1f W (%.1f less)",
					len(st.running), pl.Current.PowerWatts, pl.Best.PowerWatts, pl.Current.PowerWatts-pl.Best.PowerWatts))
		}
	}
	within, reason, msg := limitsState(wo)
	set(kcloudv1alpha1.ConditionWithinBudget, within, reason, msg)
	selectorValid(st, set, was[kcloudv1alpha1.ConditionSelectorInvalid])
	figuresComplete(st, was[kcloudv1alpha1.ConditionFiguresComplete])
	telemetryFresh(st, r.Fleet.Telemetry(), meta.FindStatusCondition(prevConditions, kcloudv1alpha1.ConditionTelemetryFresh))

	switch {
	case st.targetErr != nil:
		s.Phase = kcloudv1alpha1.PhaseFailed
	case len(st.running) == 0:
		s.Phase = kcloudv1alpha1.PhasePending
	case len(st.running) == len(st.pods) && cheapest && (wo.Spec.PowerConstraints == nil || frugal):
		s.Phase = kcloudv1alpha1.PhaseOptimized
	default:
		s.Phase = kcloudv1alpha1.PhaseOptimizing
	}

	// Events on transitions only, so a steady workload does not flood the namespace.
	if st.targetErr != nil && prevPhase != kcloudv1alpha1.PhaseFailed {
		st.events = append(st.events, events.Event{Type: corev1.EventTypeWarning, Reason: kcloudv1alpha1.ReasonTargetNotFound, Action: "FindPods", Note: st.targetErr.Error()})
	}
	if s.Phase == kcloudv1alpha1.PhaseOptimized && (was[kcloudv1alpha1.ConditionCostOptimized] != metav1.ConditionTrue || nodesChanged(st)) {
		st.events = append(st.events, events.Event{Type: corev1.EventTypeNormal, Reason: "WorkloadOptimized", Action: "Optimize",
			Note: fmt.Sprintf("%d pod(s) on %v cost %.4f USD/h and draw %.1f W; optimization score %.2f",
				len(st.running), s.AssignedNodes, s.CurrentCost, s.CurrentPower, s.OptimizationScore)})
	}
	if len(st.running) > 0 && !cheapest && was[kcloudv1alpha1.ConditionCostOptimized] != metav1.ConditionFalse {
		st.events = append(st.events, events.Event{Type: corev1.EventTypeNormal, Reason: kcloudv1alpha1.ReasonCheaperPlacementAvailable, Action: "Optimize",
			Note: fmt.Sprintf("moving %d pod(s) would save %.4f USD/h (%.4f now, %.4f at best)", len(st.running), s.PotentialSavings, s.CurrentCost, s.BestCost)})
	}
	if within == metav1.ConditionFalse && was[kcloudv1alpha1.ConditionWithinBudget] != metav1.ConditionFalse {
		st.events = append(st.events, events.Event{Type: corev1.EventTypeWarning, Reason: reason, Action: "Account", Note: msg})
	}
	if st.targetErr != nil {
		set(kcloudv1alpha1.ConditionCostOptimized, metav1.ConditionUnknown, kcloudv1alpha1.ReasonTargetNotFound, st.targetErr.Error())
	}
	return nil
}

// selectorValid sets SelectorInvalid from whether spec.selector parses, with an event when it turns
// true; an optimizer without a selector has no such condition.
func selectorValid(st *state, set func(string, metav1.ConditionStatus, string, string), was metav1.ConditionStatus) {
	switch {
	case st.selectorErr != nil:
		note := st.selectorErr.Error() + ": the optimizer finds its pods by their link label and spec.targetRef only until the selector is fixed"
		set(kcloudv1alpha1.ConditionSelectorInvalid, metav1.ConditionTrue, kcloudv1alpha1.ReasonSelectorDoesNotParse, note)
		if was != metav1.ConditionTrue {
			st.events = append(st.events, events.Event{Type: corev1.EventTypeWarning, Reason: kcloudv1alpha1.ConditionSelectorInvalid, Action: "FindPods", Note: note})
		}
	case st.wo.Spec.Selector != nil:
		set(kcloudv1alpha1.ConditionSelectorInvalid, metav1.ConditionFalse, kcloudv1alpha1.ReasonSelectorParsed, "spec.selector parses")
	default:
		meta.RemoveStatusCondition(&st.wo.Status.Conditions, kcloudv1alpha1.ConditionSelectorInvalid)
	}
}

// figuresComplete sets FiguresComplete from the running pods whose node has no price or no power
// figure (currentCost and currentPower leave those out), and the ended pods the budget could not
// price.
func figuresComplete(st *state, was metav1.ConditionStatus) {
	unpriced := slices.Clone(st.unpricedEnded)
	var unpowered []string
	for _, rp := range st.running {
		if rp.fig.Unpriced != "" {
			unpriced = append(unpriced, fmt.Sprintf("%s on %s: %s", rp.pod.Name, rp.fig.Node, rp.fig.Unpriced))
		}
		if rp.fig.Unpowered != "" {
			unpowered = append(unpowered, fmt.Sprintf("%s on %s: %s", rp.pod.Name, rp.fig.Node, rp.fig.Unpowered))
		}
	}
	wo := st.wo
	switch {
	case len(unpriced) > 0:
		accounting.SetFiguresComplete(&wo.Status.Conditions, wo.Generation, was, kcloudv1alpha1.ReasonUnpricedNodes, "price", unpriced, &st.events)
	default:
		accounting.SetFiguresComplete(&wo.Status.Conditions, wo.Generation, was, kcloudv1alpha1.ReasonUnpoweredNodes, "price and power figure", unpowered, &st.events)
	}
}

// preferenceNote is what the workload's preferences cost against the cheapest feasible placement,
// for a condition message; "" when they cost nothing.
func preferenceNote(st *state) string {
	if len(st.preferenceCosts) == 0 {
		return ""
	}
	return fmt.Sprintf("; the cheapest feasible placement adds %.4f USD/h (%s)", st.cheapest.CostPerHour, strings.Join(st.preferenceCosts, ", "))
}

// optimality says whether the current placement is as cheap and as frugal, for the cluster, as
// the best found, within the tolerances.
func optimality(pl model.Placement) (cheapest, frugal bool) {
	cheapest = pl.Current.CostPerHour-pl.Best.CostPerHour <= math.Max(costTolerance, 0.01*pl.Current.CostPerHour)
	frugal = pl.Current.PowerWatts-pl.Best.PowerWatts <= math.Max(powerTolerance, 0.01*pl.Current.PowerWatts)
	return cheapest, frugal
}

func nodesChanged(st *state) bool {
	prev := st.wo.Status.AssignedNodes
	now := make([]string, 0, len(st.running))
	for _, rp := range st.running {
		now = append(now, rp.fig.Node)
	}
	slices.Sort(now)
	now = slices.Compact(now)
	return !slices.Equal(prev, now)
}

// limitsState checks the workload's hourly cost cap, power cap and budget.
func limitsState(wo *kcloudv1alpha1.WorkloadOptimizer) (metav1.ConditionStatus, string, string) {
	s := &wo.Status
	limited := false
	if c := wo.Spec.CostConstraints; c != nil {
		if c.MaxCostPerHour != nil {
			limited = true
			if s.CurrentCost > *c.MaxCostPerHour {
				return metav1.ConditionFalse, kcloudv1alpha1.ReasonCapExceeded,
					fmt.Sprintf("currentCost %.4f USD/h exceeds spec.costConstraints.maxCostPerHour %.4f", s.CurrentCost, *c.MaxCostPerHour)
			}
		}
		if c.BudgetLimit != nil && s.Budget != nil {
			limited = true
			if s.Budget.Remaining <= 0 {
				return metav1.ConditionFalse, kcloudv1alpha1.ReasonBudgetExhausted,
					fmt.Sprintf("spent %.4f USD of spec.costConstraints.budgetLimit %.4f in the period since %s",
						s.Budget.Spend, *c.BudgetLimit, s.Budget.PeriodStart.UTC().Format(time.RFC3339))
			}
		}
	}
	if c := wo.Spec.PowerConstraints; c != nil && c.MaxPowerUsage != nil {
		limited = true
		if s.CurrentPower > *c.MaxPowerUsage {
			return metav1.ConditionFalse, kcloudv1alpha1.ReasonCapExceeded,
				fmt.Sprintf("currentPower %.1f W exceeds spec.powerConstraints.maxPowerUsage %.1f", s.CurrentPower, *c.MaxPowerUsage)
		}
	}
	if !limited {
		return metav1.ConditionTrue, kcloudv1alpha1.ReasonNoLimits, "no cost cap, budget or power cap is set"
	}
	msg := fmt.Sprintf("currentCost %.4f USD/h and currentPower %.1f W are within the caps", s.CurrentCost, s.CurrentPower)
	if s.Budget != nil {
		msg += fmt.Sprintf("; %.4f USD of the budget left", s.Budget.Remaining)
	}
	return metav1.ConditionTrue, kcloudv1alpha1.ReasonWithinBudget, msg
}

// savingsClock integrates each workload's savings rate over time for kcloud_cost_savings_total.
type savingsClock struct {
	mu   sync.Mutex
	last map[types.NamespacedName]savingsMark
}

type savingsMark struct {
	at   time.Time
	rate float64 // USD/h
}

// advance returns the USD saved since the previous call at the rate then in force, and records
// the new rate.
func (c *savingsClock) advance(key types.NamespacedName, now time.Time, rate float64) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[types.NamespacedName]savingsMark{}
	}
	prev, ok := c.last[key]
	c.last[key] = savingsMark{at: now, rate: rate}
	if !ok || !now.After(prev.at) {
		return 0
	}
	return prev.rate * now.Sub(prev.at).Hours()
}

func (c *savingsClock) forget(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.last, key)
}
