package kube

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/model"
)

func TestPoliciesFor(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Namespace: "ai", Name: "bert"},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{
			CostConstraints:  &kcloudv1alpha1.CostConstraints{MaxCostPerHour: f(10), PreferSpot: true},
			PowerConstraints: &kcloudv1alpha1.PowerConstraints{MaxPowerUsage: f(2000)},
		}}
	deny := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "team"}, Spec: kcloudv1alpha1.CostPolicySpec{
		PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{"ai"}}, MaxCostPerHour: f(50),
		Budget: &kcloudv1alpha1.CostBudget{Amount: 1000, Period: kcloudv1alpha1.BudgetPeriodWeek}, Enforcement: kcloudv1alpha1.EnforcementDeny,
		SpotPolicy: kcloudv1alpha1.SpotAvoid}}
	deny.Status.RemainingBudget = f(400)
	warn := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "watch"}, Spec: kcloudv1alpha1.CostPolicySpec{
		MaxCostPerHour: f(1), SpotPolicy: kcloudv1alpha1.SpotPrefer}}
	elsewhere := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: kcloudv1alpha1.CostPolicySpec{
		PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{"web"}}, MaxCostPerHour: f(1), Enforcement: kcloudv1alpha1.EnforcementDeny}}
	bogus := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "bogus"}, Spec: kcloudv1alpha1.CostPolicySpec{
		// Stored before admission checked selectors: it fails closed over what its valid part matches.
		PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{"ai"}, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelOptimizer: "bert"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}},
		MaxCostPerHour: f(1), Enforcement: kcloudv1alpha1.EnforcementDeny}}
	power := &kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "dc"}, Spec: kcloudv1alpha1.PowerPolicySpec{
		MaxPowerWatts: f(9000), MaxCarbonIntensity: f(300), PreferGreen: true,
		EnergyBudget: &kcloudv1alpha1.EnergyBudget{KilowattHours: 500}, Enforcement: kcloudv1alpha1.EnforcementScaleDown}}
	power.Status.EnergyThisPeriodKWh = 120

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ai", Name: "p", Labels: map[string]string{LabelOptimizer: "bert"}}}
	ps := NewPolicies([]*kcloudv1alpha1.CostPolicy{deny, warn, elsewhere, bogus}, []*kcloudv1alpha1.PowerPolicy{power})
	got := ps.For(pod, wo)

	type limit struct {
		ID, Source string
		Kind       model.LimitKind
		Cap        float64
		Shared     bool
		Mode       kcloudv1alpha1.EnforcementMode
		Period     model.Period
	}
	var limits []limit
	for _, l := range got.Limits {
		limits = append(limits, limit{l.ID, l.Source, l.Kind, l.Cap, l.Shares != nil, l.Enforcement, l.Period})
	}
	want := []limit{
		{"WorkloadOptimizer/ai/bert/maxCostPerHour", "WorkloadOptimizer ai/bert maxCostPerHour", model.LimitCostPerHour, 10, true, kcloudv1alpha1.EnforcementDeny, ""},
		{"WorkloadOptimizer/ai/bert/maxPowerUsage", "WorkloadOptimizer ai/bert maxPowerUsage", model.LimitPowerWatts, 2000, true, kcloudv1alpha1.EnforcementDeny, ""},
		{"CostPolicy/team/maxCostPerHour", "CostPolicy team", model.LimitCostPerHour, 50, true, kcloudv1alpha1.EnforcementDeny, ""},
		{"CostPolicy/team/budget", "CostPolicy team", model.LimitBudgetUSD, 400, true, kcloudv1alpha1.EnforcementDeny, model.PeriodWeek},
		{"CostPolicy/bogus/maxCostPerHour", "CostPolicy bogus", model.LimitCostPerHour, 1, true, kcloudv1alpha1.EnforcementDeny, ""},
		{"CostPolicy/bogus/selector", `CostPolicy bogus: spec.selector: "Bogus" is not a valid label selector operator; the policy enforces, so it refuses every pod it may cover until the selector is fixed`,
			model.LimitInvalid, 0, false, kcloudv1alpha1.EnforcementDeny, ""},
		{"PowerPolicy/dc/maxPowerWatts", "PowerPolicy dc", model.LimitPowerWatts, 9000, true, kcloudv1alpha1.EnforcementScaleDown, ""},
		{"PowerPolicy/dc/maxCarbonIntensity", "PowerPolicy dc", model.LimitCarbonIntensity, 300, false, kcloudv1alpha1.EnforcementScaleDown, ""},
		{"PowerPolicy/dc/energyBudget", "PowerPolicy dc", model.LimitEnergyKWh, 380, true, kcloudv1alpha1.EnforcementScaleDown, model.PeriodMonth},
	}
	if diff := cmp.Diff(want, limits); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}
	// The warn-mode policy only prefers spot; team avoids it, and that rule wins over preferences.
	if got.Spot != model.SpotAvoided || got.SpotSource != "CostPolicy team" || !got.Prefs.Spot || !got.Prefs.Green {
		t.Errorf("spot %v from %q, prefs %+v", got.Spot, got.SpotSource, got.Prefs)
	}

	// Who shares the limits: the optimizer's caps its own pods, the policies' caps what they cover.
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ai", Name: "q", Labels: map[string]string{LabelOptimizer: "gpt"}}}
	web := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "w"}}
	for i, tc := range []struct {
		pod  *corev1.Pod
		want bool
	}{{other, false}, {pod, true}} {
		if got.Limits[0].Shares(tc.pod) != tc.want {
			t.Errorf("case %d: optimizer cap shared by %s = %v", i, tc.pod.Name, !tc.want)
		}
	}
	if !got.Limits[2].Shares(other) || got.Limits[2].Shares(web) {
		t.Error("CostPolicy team's cap is shared by the pods of namespace ai only")
	}

	// A pod of another namespace without an optimizer: only what covers it.
	webPolicy := ps.For(web, nil)
	var ids []string
	for _, l := range webPolicy.Limits {
		ids = append(ids, l.ID)
	}
	if diff := cmp.Diff([]string{"CostPolicy/web/maxCostPerHour", "PowerPolicy/dc/maxPowerWatts", "PowerPolicy/dc/maxCarbonIntensity", "PowerPolicy/dc/energyBudget"}, ids); diff != "" {
		t.Errorf("web pod's limits (-want +got):\n%s", diff)
	}
	// watch covers every pod (no target): it makes the web pod prefer spot, and nothing avoids it.
	if !webPolicy.Prefs.Spot || webPolicy.Spot != model.SpotAny {
		t.Errorf("web pod: spot %v prefs %+v", webPolicy.Spot, webPolicy.Prefs)
	}
	var none *Policies
	if len(none.For(pod, nil).Limits) != 0 {
		t.Error("nil Policies gave limits")
	}
}
