package autoscaler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

func TestReplicaLimits(t *testing.T) {
	// Thursday 2026-11-26 12:00 UTC: 12 hours left in the day, 84 in the week (it ends Monday
	// 2026-11-30), 108 in the month (it ends 2026-12-01).
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	// Two replicas run, 2.5 USD/h and 300 W at most each; together 5 USD/h and 550 W.
	fig := replicaFigures{running: 2, costPerReplicaHour: 2.5, wattsPerReplica: 300, currentCost: 5, currentWatts: 550}
	probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ai", Name: "bert-0", Labels: map[string]string{"app": "bert"}}}

	scaling := func(metrics ...kcloudv1alpha1.ScalingMetric) *kcloudv1alpha1.AutoScaling {
		return &kcloudv1alpha1.AutoScaling{MinReplicas: 1, MaxReplicas: 10, Metrics: metrics}
	}
	metric := func(typ kcloudv1alpha1.MetricType, threshold float64) kcloudv1alpha1.ScalingMetric {
		return kcloudv1alpha1.ScalingMetric{Type: typ, Threshold: threshold}
	}
	// A CostPolicy covering namespace ai, whose covered pods (ours among them) cost currentCost USD/h.
	policy := func(name string, mode kcloudv1alpha1.EnforcementMode, currentCost float64, edit func(*kcloudv1alpha1.CostPolicy)) kcloudv1alpha1.CostPolicy {
		p := kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:   kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{"ai"}}, Enforcement: mode},
			Status: kcloudv1alpha1.CostPolicyStatus{CurrentCostPerHour: currentCost}}
		edit(&p)
		return p
	}
	capOf := func(usdPerHour float64) func(*kcloudv1alpha1.CostPolicy) {
		return func(p *kcloudv1alpha1.CostPolicy) { p.Spec.MaxCostPerHour = ptr.To(usdPerHour) }
	}
	budgetOf := func(period kcloudv1alpha1.BudgetPeriod, remaining float64) func(*kcloudv1alpha1.CostPolicy) {
		return func(p *kcloudv1alpha1.CostPolicy) {
			p.Spec.Budget = &kcloudv1alpha1.CostBudget{Amount: 1000, Period: period}
			p.Status.RemainingBudget = ptr.To(remaining)
		}
	}
	dayBudget := &kcloudv1alpha1.CostConstraints{BudgetLimit: ptr.To(100.0), BudgetPeriod: kcloudv1alpha1.BudgetPeriodDay}
	budgetStatus := &kcloudv1alpha1.BudgetStatus{Remaining: 48} // 48 USD over 12 hours: 4 USD/h

	base := model.ReplicaLimits{MinReplicas: 1, MaxReplicas: 10, CostPerReplicaHour: 2.5, WattsPerReplica: 300}
	with := func(edit func(*model.ReplicaLimits)) model.ReplicaLimits {
		l := base
		edit(&l)
		return l
	}
	for _, tc := range []struct {
		name     string
		spec     kcloudv1alpha1.WorkloadOptimizerSpec
		status   kcloudv1alpha1.WorkloadOptimizerStatus
		policies []kcloudv1alpha1.CostPolicy
		extra    []kube.PodLimit // limits passed beside those of the policies
		// shares: the yielding and waiting USD/h of priority, given to each scale-down limit
		yielding, waiting float64
		want              model.ReplicaLimits
	}{
		{name: "replica bounds and one replica's figures only",
			spec: kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling()}, want: base},
		{name: "maxCostPerHour caps the cost",
			spec: kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(), CostConstraints: &kcloudv1alpha1.CostConstraints{MaxCostPerHour: ptr.To(12.0)}},
			want: with(func(l *model.ReplicaLimits) { l.MaxCostPerHour = ptr.To(12.0) })},
		{name: "a cost metric lowers the cap to its percentage of maxCostPerHour",
			spec: kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(metric(kcloudv1alpha1.MetricCost, 75)),
				CostConstraints: &kcloudv1alpha1.CostConstraints{MaxCostPerHour: ptr.To(12.0)}},
			want: with(func(l *model.ReplicaLimits) { l.MaxCostPerHour = ptr.To(9.0) })}, // 75% of 12
		{name: "a cost metric without maxCostPerHour caps nothing",
			spec: kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(metric(kcloudv1alpha1.MetricCost, 75))}, want: base},
		{name: "a power metric below maxPowerUsage lowers the power cap",
			spec: kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(metric(kcloudv1alpha1.MetricPower, 600)),
				PowerConstraints: &kcloudv1alpha1.PowerConstraints{MaxPowerUsage: ptr.To(1000.0)}},
			want: with(func(l *model.ReplicaLimits) { l.MaxPowerWatts = ptr.To(600.0) })},
		{name: "a power metric above maxPowerUsage does not raise it",
			spec: kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(metric(kcloudv1alpha1.MetricPower, 1500)),
				PowerConstraints: &kcloudv1alpha1.PowerConstraints{MaxPowerUsage: ptr.To(1000.0)}},
			want: with(func(l *model.ReplicaLimits) { l.MaxPowerWatts = ptr.To(1000.0) })},
		{name: "demand metrics set no cap",
			spec: kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(metric(kcloudv1alpha1.MetricThroughput, 100), metric(kcloudv1alpha1.MetricLatency, 200))},
			want: base},
		{name: "the optimizer's budget until its day ends",
			spec:   kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(), CostConstraints: dayBudget},
			status: kcloudv1alpha1.WorkloadOptimizerStatus{Budget: budgetStatus},
			want:   with(func(l *model.ReplicaLimits) { l.RemainingBudget, l.BudgetHoursLeft = ptr.To(48.0), 12 })},
		{name: "the optimizer's budget period is a month when unset",
			spec:   kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(), CostConstraints: &kcloudv1alpha1.CostConstraints{BudgetLimit: ptr.To(100.0)}},
			status: kcloudv1alpha1.WorkloadOptimizerStatus{Budget: budgetStatus},
			want:   with(func(l *model.ReplicaLimits) { l.RemainingBudget, l.BudgetHoursLeft = ptr.To(48.0), 108 })},
		{name: "no budget status yet: no budget",
			spec: kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(), CostConstraints: dayBudget}, want: base},
		{name: "a budget status without budgetLimit: no budget",
			spec:   kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(), CostConstraints: &kcloudv1alpha1.CostConstraints{BudgetPeriod: kcloudv1alpha1.BudgetPeriodDay}},
			status: kcloudv1alpha1.WorkloadOptimizerStatus{Budget: budgetStatus}, want: base},
		{name: "an enforcing CostPolicy's cap less what its other pods cost",
			spec: kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling()},
			// The policy's pods cost 12 USD/h, ours 5 of them: 20 - 7.
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementDeny, 12, capOf(20))},
			want:     with(func(l *model.ReplicaLimits) { l.MaxCostPerHour = ptr.To(13.0) })},
		{name: "scale-down mode enforces too",
			spec:     kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling()},
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementScaleDown, 5, capOf(8))},
			want:     with(func(l *model.ReplicaLimits) { l.MaxCostPerHour = ptr.To(8.0) })},
		// The policy's pods cost 12 USD/h, ours 5: 7 of others, of which 4 rank below ours and yield.
		{name: "scale-down: lower-ranked placed pods leave their room",
			spec:     kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling()},
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementScaleDown, 12, capOf(20))},
			yielding: 4,
			want:     with(func(l *model.ReplicaLimits) { l.MaxCostPerHour = ptr.To(17.0) })}, // 20 - (7 - 4)
		{name: "scale-down: higher-ranked pending pods take room",
			spec:     kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling()},
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementScaleDown, 12, capOf(20))},
			waiting:  6,
			want:     with(func(l *model.ReplicaLimits) { l.MaxCostPerHour = ptr.To(7.0) })}, // 20 - (7 + 6)
		{name: "scale-down: a budget's other spend by rank",
			spec:     kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling()},
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementScaleDown, 7, budgetOf(kcloudv1alpha1.BudgetPeriodWeek, 168))},
			// Others 2 USD/h, all yielding; 1 USD/h waiting: 168 - 1 x 84 = 84 USD over 84 hours.
			yielding: 2, waiting: 1,
			want: with(func(l *model.ReplicaLimits) { l.RemainingBudget, l.BudgetHoursLeft = ptr.To(84.0), 84 })},
		{name: "deny mode ignores rank",
			spec:     kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling()},
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementDeny, 12, capOf(20))},
			yielding: 4, waiting: 6,
			want: with(func(l *model.ReplicaLimits) { l.MaxCostPerHour = ptr.To(13.0) })},
		{name: "the optimizer's cap when tighter than a policy's",
			spec:     kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(), CostConstraints: &kcloudv1alpha1.CostConstraints{MaxCostPerHour: ptr.To(10.0)}},
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementDeny, 12, capOf(20))},
			want:     with(func(l *model.ReplicaLimits) { l.MaxCostPerHour = ptr.To(10.0) })},
		{name: "a policy whose status counts less than our pods cost: no other pods",
			spec:     kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling()},
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementDeny, 3, capOf(20))},
			want:     with(func(l *model.ReplicaLimits) { l.MaxCostPerHour = ptr.To(20.0) })},
		{name: "a warn-mode policy is ignored",
			spec:     kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling()},
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementWarn, 5, capOf(1))},
			extra: []kube.PodLimit{{Limit: model.Limit{Source: "CostPolicy watch", Kind: model.LimitCostPerHour, Cap: 1},
				Enforcement: kcloudv1alpha1.EnforcementWarn, CostPolicy: &kcloudv1alpha1.CostPolicy{}}},
			want: base},
		{name: "a policy covering other namespaces is ignored",
			spec: kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling()},
			policies: []kcloudv1alpha1.CostPolicy{policy("other", kcloudv1alpha1.EnforcementDeny, 0, func(p *kcloudv1alpha1.CostPolicy) {
				p.Spec.MaxCostPerHour = ptr.To(1.0)
				p.Spec.Namespaces = []string{"web"}
			})},
			want: base},
		{name: "limits not set by a CostPolicy are ignored",
			spec: kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling()},
			extra: []kube.PodLimit{
				{Limit: model.Limit{Kind: model.LimitCostPerHour, Cap: 1}, Enforcement: kcloudv1alpha1.EnforcementDeny, Optimizer: &kcloudv1alpha1.WorkloadOptimizer{}},
				{Limit: model.Limit{Kind: model.LimitPowerWatts, Cap: 1}, Enforcement: kcloudv1alpha1.EnforcementDeny, PowerPolicy: &kcloudv1alpha1.PowerPolicy{}},
			},
			want: base},
		{name: "a policy's budget over its week",
			spec:     kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling()},
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementDeny, 5, budgetOf(kcloudv1alpha1.BudgetPeriodWeek, 168))},
			want:     with(func(l *model.ReplicaLimits) { l.RemainingBudget, l.BudgetHoursLeft = ptr.To(168.0), 84 })},
		// Nothing accounted yet: the whole 1000 USD over the 12 hours left of the day at noon.
		{name: "a policy's budget without a status yet is whole",
			spec: kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling()},
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementDeny, 5, func(p *kcloudv1alpha1.CostPolicy) {
				p.Spec.Budget = &kcloudv1alpha1.CostBudget{Amount: 1000, Period: kcloudv1alpha1.BudgetPeriodDay}
			})},
			want: with(func(l *model.ReplicaLimits) { l.RemainingBudget, l.BudgetHoursLeft = ptr.To(1000.0), 12 })},
		{name: "tighter of two budgets by affordable rate: the policy's",
			spec:   kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(), CostConstraints: dayBudget},
			status: kcloudv1alpha1.WorkloadOptimizerStatus{Budget: budgetStatus},
			// 216 USD over the month's 108 hours: 2 USD/h, below the optimizer's 4.
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementDeny, 5, budgetOf(kcloudv1alpha1.BudgetPeriodMonth, 216))},
			want:     with(func(l *model.ReplicaLimits) { l.RemainingBudget, l.BudgetHoursLeft = ptr.To(216.0), 108 })},
		{name: "tighter of two budgets by affordable rate: the optimizer's",
			spec:   kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(), CostConstraints: dayBudget},
			status: kcloudv1alpha1.WorkloadOptimizerStatus{Budget: budgetStatus},
			// 540 USD over 108 hours: 5 USD/h, above the optimizer's 4, though more money.
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementDeny, 5, budgetOf(kcloudv1alpha1.BudgetPeriodMonth, 540))},
			want:     with(func(l *model.ReplicaLimits) { l.RemainingBudget, l.BudgetHoursLeft = ptr.To(48.0), 12 })},
		{name: "a policy's budget less what its other pods spend until the period ends",
			spec:   kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(), CostConstraints: dayBudget},
			status: kcloudv1alpha1.WorkloadOptimizerStatus{Budget: budgetStatus},
			// Other pods cost 7 - 5 = 2 USD/h: 540 - 2 x 108 = 324 USD, 3 USD/h, below the optimizer's 4.
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementDeny, 7, budgetOf(kcloudv1alpha1.BudgetPeriodMonth, 540))},
			want:     with(func(l *model.ReplicaLimits) { l.RemainingBudget, l.BudgetHoursLeft = ptr.To(324.0), 108 })},
		{name: "a policy's cap and budget together, with the optimizer's caps",
			spec: kcloudv1alpha1.WorkloadOptimizerSpec{AutoScaling: scaling(metric(kcloudv1alpha1.MetricCost, 50)),
				CostConstraints:  &kcloudv1alpha1.CostConstraints{MaxCostPerHour: ptr.To(30.0)},
				PowerConstraints: &kcloudv1alpha1.PowerConstraints{MaxPowerUsage: ptr.To(2000.0)}},
			// Cap: the optimizer's 30, its cost metric's 15, the policy's 20 - (9 - 5) = 16: 15.
			// Budget: 100 - 4 x 12 = 52 USD over the day.
			policies: []kcloudv1alpha1.CostPolicy{policy("team", kcloudv1alpha1.EnforcementDeny, 9, func(p *kcloudv1alpha1.CostPolicy) {
				capOf(20)(p)
				budgetOf(kcloudv1alpha1.BudgetPeriodDay, 100)(p)
			})},
			want: with(func(l *model.ReplicaLimits) {
				l.MaxCostPerHour, l.MaxPowerWatts = ptr.To(15.0), ptr.To(2000.0)
				l.RemainingBudget, l.BudgetHoursLeft = ptr.To(52.0), 12
			})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var limits []policyLimit
			for _, pl := range append(kube.PoliciesOf(tc.policies, nil).For(probe, nil).Limits, tc.extra...) {
				l := policyLimit{PodLimit: pl}
				if pl.Enforcement == kcloudv1alpha1.EnforcementScaleDown {
					l.yielding, l.waiting = tc.yielding, tc.waiting
				}
				limits = append(limits, l)
			}
			got := replicaLimits(&tc.spec, &tc.status, fig, now, limits)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
				t.Errorf("replicaLimits (-want +got):\n%s", diff)
			}
		})
	}
}
