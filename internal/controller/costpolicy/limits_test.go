package costpolicy

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/metrics"
)

func TestLimits(t *testing.T) {
	budget, maxRate := 200.0, 3.0
	spec := kcloudv1alpha1.CostPolicySpec{MaxCostPerHour: &maxRate,
		Budget: &kcloudv1alpha1.CostBudget{Amount: budget, AlertThresholds: []int32{50, 80, 100}}}
	cases := []struct {
		name  string
		spec  kcloudv1alpha1.CostPolicySpec
		spent float64
		want  metrics.PolicyLimits
	}{
		{"below every threshold", spec, 99, metrics.PolicyLimits{Budget: &budget, Cap: &maxRate}},
		{"80% reached", spec, 170, metrics.PolicyLimits{Budget: &budget, Cap: &maxRate, ThresholdPercent: 80}},
		{"spent", spec, 250, metrics.PolicyLimits{Budget: &budget, Cap: &maxRate, ThresholdPercent: 100}},
		{"no budget, no cap", kcloudv1alpha1.CostPolicySpec{}, 250, metrics.PolicyLimits{}},
	}
	for _, c := range cases {
		if diff := cmp.Diff(c.want, limits(c.spec, c.spent)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
}
