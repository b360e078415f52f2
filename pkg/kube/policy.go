package kube

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/model"
)

// PodLimit is one hard limit on where a pod may go, the object that sets it and who shares it.
type PodLimit struct {
	model.Limit
	// ID is unique among the limits of one Policies: a limit shared by many pods has one ID.
	ID string
	// Shares says whether another pod's usage counts against the limit; nil for a limit that is not
	// shared by usage (carbon intensity).
	Shares func(*corev1.Pod) bool
	// Enforcement is the mode of the policy that sets the limit; an optimizer's own caps are deny.
	Enforcement kcloudv1alpha1.EnforcementMode
	// Period is a budget's period (budgets and energy budgets only).
	Period model.Period
	// Exactly one of these is the object that sets the limit.
	Optimizer   *kcloudv1alpha1.WorkloadOptimizer
	CostPolicy  *kcloudv1alpha1.CostPolicy
	PowerPolicy *kcloudv1alpha1.PowerPolicy
}

// PodPolicy is everything a pod's WorkloadOptimizer and the policies covering it say about where
// it may go and where it would rather go.
type PodPolicy struct {
	// Limits are the hard limits of the optimizer and of the policies that enforce (deny or
	// scale-down); policies in warn mode only report.
	Limits []PodLimit
	// Spot is the hard spot rule of the CostPolicies covering the pod, SpotSource who set it.
	Spot       model.SpotRule
	SpotSource string
	// Prefs are the soft preferences: spot from the optimizer or a CostPolicy, green from the
	// optimizer or a PowerPolicy.
	Prefs model.Preferences
}

// ModelLimits appends the pod's limits as the model checks them, Used still 0.
func (pp *PodPolicy) ModelLimits(out []model.Limit) []model.Limit {
	for i := range pp.Limits {
		out = append(out, pp.Limits[i].Limit)
	}
	return out
}

// Enforces reports whether a policy's mode constrains placement (deny or scale-down); warn, the
// default, only reports.
func Enforces(m kcloudv1alpha1.EnforcementMode) bool {
	return m != "" && m != kcloudv1alpha1.EnforcementWarn
}

// The Source of a limit, as the scheduler's events, the webhooks' refusals and the autoscaler's
// conditions name it.

// OptimizerSource names a field of a WorkloadOptimizer, e.g. "WorkloadOptimizer ai/bert maxCostPerHour".
func OptimizerSource(namespace, name, field string) string {
	return fmt.Sprintf("WorkloadOptimizer %s/%s %s", namespace, name, field)
}

// CostPolicySource names a CostPolicy, e.g. "CostPolicy ml-team".
func CostPolicySource(name string) string { return "CostPolicy " + name }

// PowerPolicySource names a PowerPolicy.
func PowerPolicySource(name string) string { return "PowerPolicy " + name }

// MemberOf is whether a pod belongs to a WorkloadOptimizer: same namespace, linked by its label.
func MemberOf(namespace, optimizer string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		return p.Namespace == namespace && p.Labels[LabelOptimizer] == optimizer
	}
}

// Policies are the cluster's CostPolicies and PowerPolicies with their selectors parsed once, to
// work out the limits of many pods.
type Policies struct {
	cost  []coveringCost
	power []coveringPower
}

type coveringCost struct {
	p        *kcloudv1alpha1.CostPolicy
	covers   func(*corev1.Pod) bool
	badScope error // why the selector does not parse, if it does not
}

type coveringPower struct {
	p        *kcloudv1alpha1.PowerPolicy
	covers   func(*corev1.Pod) bool
	badScope error
}

// NewPolicies prepares policies; the objects are read, never modified, and must outlive the result.
// A policy whose selector does not parse fails closed (CoverMatcher): it covers every pod its valid
// parts match, and if it enforces, each of them gets a limit no node meets (model.LimitInvalid).
func NewPolicies(cost []*kcloudv1alpha1.CostPolicy, power []*kcloudv1alpha1.PowerPolicy) *Policies {
	ps := &Policies{cost: make([]coveringCost, len(cost)), power: make([]coveringPower, len(power))}
	for i, p := range cost {
		covers, err := CoverMatcher(p.Spec.PolicyTarget)
		ps.cost[i] = coveringCost{p, covers, err}
	}
	for i, p := range power {
		covers, err := CoverMatcher(p.Spec.PolicyTarget)
		ps.power[i] = coveringPower{p, covers, err}
	}
	return ps
}

// InvalidSelectorLimit is the limit an enforcing policy whose selector does not parse puts on the
// pods it may cover: no node meets it, and its Source says which policy, why and what to do.
func InvalidSelectorLimit(source, id string, err error) PodLimit {
	return PodLimit{Limit: model.Limit{Kind: model.LimitInvalid,
		Source: fmt.Sprintf("%s: spec.%v; the policy enforces, so it refuses every pod it may cover until the selector is fixed", source, err)},
		ID: id + "/selector"}
}

// Covering lists the policies that cover a pod, in the order given.
func (ps *Policies) Covering(pod *corev1.Pod) ([]*kcloudv1alpha1.CostPolicy, []*kcloudv1alpha1.PowerPolicy) {
	if ps == nil {
		return nil, nil
	}
	var costs []*kcloudv1alpha1.CostPolicy
	var powers []*kcloudv1alpha1.PowerPolicy
	for _, c := range ps.cost {
		if c.covers(pod) {
			costs = append(costs, c.p)
		}
	}
	for _, c := range ps.power {
		if c.covers(pod) {
			powers = append(powers, c.p)
		}
	}
	return costs, powers
}

// PoliciesOf is NewPolicies over list items.
func PoliciesOf(cost []kcloudv1alpha1.CostPolicy, power []kcloudv1alpha1.PowerPolicy) *Policies {
	cps := make([]*kcloudv1alpha1.CostPolicy, len(cost))
	for i := range cost {
		cps[i] = &cost[i]
	}
	pps := make([]*kcloudv1alpha1.PowerPolicy, len(power))
	for i := range power {
		pps[i] = &power[i]
	}
	return NewPolicies(cps, pps)
}

// For works out a pod's limits and preferences from its WorkloadOptimizer (nil when it has none)
// and the policies covering it.
func (ps *Policies) For(pod *corev1.Pod, wo *kcloudv1alpha1.WorkloadOptimizer) PodPolicy {
	var pp PodPolicy
	if wo != nil {
		pp.addOptimizer(wo)
	}
	if ps == nil {
		return pp
	}
	for _, c := range ps.cost {
		if c.covers(pod) {
			pp.addCostPolicy(c.p, c.covers)
			if c.badScope != nil && Enforces(c.p.Spec.Enforcement) {
				l := InvalidSelectorLimit(CostPolicySource(c.p.Name), "CostPolicy/"+c.p.Name, c.badScope)
				l.Enforcement, l.CostPolicy = c.p.Spec.Enforcement, c.p
				pp.Limits = append(pp.Limits, l)
			}
		}
	}
	for _, c := range ps.power {
		if c.covers(pod) {
			pp.addPowerPolicy(c.p, c.covers)
			if c.badScope != nil && Enforces(c.p.Spec.Enforcement) {
				l := InvalidSelectorLimit(PowerPolicySource(c.p.Name), "PowerPolicy/"+c.p.Name, c.badScope)
				l.Enforcement, l.PowerPolicy = c.p.Spec.Enforcement, c.p
				pp.Limits = append(pp.Limits, l)
			}
		}
	}
	return pp
}

func (pp *PodPolicy) addOptimizer(wo *kcloudv1alpha1.WorkloadOptimizer) {
	same := MemberOf(wo.Namespace, wo.Name)
	add := func(field string, kind model.LimitKind, limit float64) {
		pp.Limits = append(pp.Limits, PodLimit{
			Limit: model.Limit{Source: OptimizerSource(wo.Namespace, wo.Name, field), Kind: kind, Cap: limit},
			ID:    "WorkloadOptimizer/" + wo.Namespace + "/" + wo.Name + "/" + field, Shares: same,
			Enforcement: kcloudv1alpha1.EnforcementDeny, Optimizer: wo,
		})
	}
	if c := wo.Spec.CostConstraints; c != nil {
		if c.MaxCostPerHour != nil {
			add("maxCostPerHour", model.LimitCostPerHour, *c.MaxCostPerHour)
		}
		pp.Prefs.Spot = pp.Prefs.Spot || c.PreferSpot
	}
	if c := wo.Spec.PowerConstraints; c != nil {
		if c.MaxPowerUsage != nil {
			add("maxPowerUsage", model.LimitPowerWatts, *c.MaxPowerUsage)
		}
		pp.Prefs.Green = pp.Prefs.Green || c.PreferGreen
	}
}

func (pp *PodPolicy) addCostPolicy(cp *kcloudv1alpha1.CostPolicy, covers func(*corev1.Pod) bool) {
	src := CostPolicySource(cp.Name)
	switch cp.Spec.SpotPolicy {
	case kcloudv1alpha1.SpotRequire:
		pp.Spot, pp.SpotSource = model.SpotRequired, src
	case kcloudv1alpha1.SpotAvoid:
		pp.Spot, pp.SpotSource = model.SpotAvoided, src
	case kcloudv1alpha1.SpotPrefer:
		pp.Prefs.Spot = true
	}
	if !Enforces(cp.Spec.Enforcement) {
		return
	}
	limit := func(kind model.LimitKind, field string, limit float64, shares func(*corev1.Pod) bool) PodLimit {
		return PodLimit{Limit: model.Limit{Source: src, Kind: kind, Cap: limit}, ID: "CostPolicy/" + cp.Name + "/" + field,
			Shares: shares, Enforcement: cp.Spec.Enforcement, CostPolicy: cp}
	}
	if cp.Spec.MaxCostPerHour != nil {
		pp.Limits = append(pp.Limits, limit(model.LimitCostPerHour, "maxCostPerHour", *cp.Spec.MaxCostPerHour, covers))
	}
	if b := cp.Spec.Budget; b != nil {
		left := b.Amount // nothing accounted yet: the ledger's first accounting says what is spent
		if cp.Status.RemainingBudget != nil {
			left = *cp.Status.RemainingBudget
		}
		l := limit(model.LimitBudgetUSD, "budget", left, covers)
		l.Period = PeriodOf(b.Period)
		pp.Limits = append(pp.Limits, l)
	}
}

func (pp *PodPolicy) addPowerPolicy(pw *kcloudv1alpha1.PowerPolicy, covers func(*corev1.Pod) bool) {
	src := PowerPolicySource(pw.Name)
	pp.Prefs.Green = pp.Prefs.Green || pw.Spec.PreferGreen
	if !Enforces(pw.Spec.Enforcement) {
		return
	}
	limit := func(kind model.LimitKind, field string, limit float64, shares func(*corev1.Pod) bool) PodLimit {
		return PodLimit{Limit: model.Limit{Source: src, Kind: kind, Cap: limit}, ID: "PowerPolicy/" + pw.Name + "/" + field,
			Shares: shares, Enforcement: pw.Spec.Enforcement, PowerPolicy: pw}
	}
	if pw.Spec.MaxPowerWatts != nil {
		pp.Limits = append(pp.Limits, limit(model.LimitPowerWatts, "maxPowerWatts", *pw.Spec.MaxPowerWatts, covers))
	}
	if pw.Spec.MaxCarbonIntensity != nil {
		pp.Limits = append(pp.Limits, limit(model.LimitCarbonIntensity, "maxCarbonIntensity", *pw.Spec.MaxCarbonIntensity, nil))
	}
	if b := pw.Spec.EnergyBudget; b != nil {
		l := limit(model.LimitEnergyKWh, "energyBudget", b.KilowattHours-pw.Status.EnergyThisPeriodKWh, covers)
		l.Period = PeriodOf(b.Period)
		pp.Limits = append(pp.Limits, l)
	}
}

// PeriodOf is the model's period of a budget period: a month when unset.
func PeriodOf(p kcloudv1alpha1.BudgetPeriod) model.Period {
	if p == "" {
		return model.PeriodMonth
	}
	return model.Period(p)
}
