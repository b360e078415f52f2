package metrics

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func ptr(v float64) *float64 { return &v }

func TestObservePolicyLimits(t *testing.T) {
	cases := []struct {
		name                    string
		limits                  PolicyLimits
		wantBudget, wantThresh  float64
		wantCap                 float64
		budgetSeries, capSeries bool
	}{
		{name: "budget and cap", limits: PolicyLimits{Budget: ptr(100), Cap: ptr(2.5), ThresholdPercent: 80},
			wantBudget: 100, wantThresh: 0.8, wantCap: 2.5, budgetSeries: true, capSeries: true},
		{name: "budget, no threshold reached", limits: PolicyLimits{Budget: ptr(40)},
			wantBudget: 40, wantThresh: 0, budgetSeries: true},
		{name: "cap only", limits: PolicyLimits{Cap: ptr(7)}, wantCap: 7, capSeries: true},
		{name: "neither", limits: PolicyLimits{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Start from a policy that has everything, so that unset limits must be removed.
			ObserveCostPolicyLimits("p", PolicyLimits{Budget: ptr(1), Cap: ptr(1), ThresholdPercent: 100})
			ObserveCostPolicyLimits("p", c.limits)
			if got := testutil.CollectAndCount(PolicyBudget); got != boolInt(c.budgetSeries) {
				t.Errorf("budget series: %d, want %d", got, boolInt(c.budgetSeries))
			}
			if got := testutil.CollectAndCount(PolicyBudgetThreshold); got != boolInt(c.budgetSeries) {
				t.Errorf("threshold series: %d, want %d", got, boolInt(c.budgetSeries))
			}
			if got := testutil.CollectAndCount(PolicyMaxCost); got != boolInt(c.capSeries) {
				t.Errorf("cap series: %d, want %d", got, boolInt(c.capSeries))
			}
			if c.budgetSeries {
				if v := testutil.ToFloat64(PolicyBudget.WithLabelValues("p")); v != c.wantBudget {
					t.Errorf("budget %v, want %v", v, c.wantBudget)
				}
				if v := testutil.ToFloat64(PolicyBudgetThreshold.WithLabelValues("p")); v != c.wantThresh {
					t.Errorf("threshold %v, want %v", v, c.wantThresh)
				}
			}
			if c.capSeries {
				if v := testutil.ToFloat64(PolicyMaxCost.WithLabelValues("p")); v != c.wantCap {
					t.Errorf("cap %v, want %v", v, c.wantCap)
				}
			}
			ForgetCostPolicy("p")
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A CostPolicy and a PowerPolicy may share a name: forgetting one keeps the other's series.
func TestForgetPolicyKeepsTheOtherKind(t *testing.T) {
	PolicySpend.WithLabelValues("shared").Set(3)
	ObserveCostPolicyLimits("shared", PolicyLimits{Budget: ptr(10)})
	PolicyEnergy.WithLabelValues("shared").Set(4)
	ObservePowerPolicyLimits("shared", PolicyLimits{Budget: ptr(20), Cap: ptr(500), ThresholdPercent: 50})

	ForgetCostPolicy("shared")
	for _, g := range costPolicyGauges {
		if n := testutil.CollectAndCount(g); n != 0 {
			t.Errorf("a CostPolicy gauge keeps %d series after ForgetCostPolicy", n)
		}
	}
	if v := testutil.ToFloat64(PolicyEnergy.WithLabelValues("shared")); v != 4 {
		t.Errorf("PowerPolicy energy %v after forgetting the CostPolicy, want 4", v)
	}
	if v := testutil.ToFloat64(PolicyEnergyBudgetThreshold.WithLabelValues("shared")); v != 0.5 {
		t.Errorf("PowerPolicy threshold %v, want 0.5", v)
	}
	ForgetPowerPolicy("shared")
	for _, g := range powerPolicyGauges {
		if n := testutil.CollectAndCount(g); n != 0 {
			t.Errorf("a PowerPolicy gauge keeps %d series after ForgetPowerPolicy", n)
		}
	}
}

func TestObserveTelemetryRead(t *testing.T) {
	ok := time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
	ObserveTelemetryRead(ok, 3, nil)
	if v := testutil.ToFloat64(TelemetryUp); v != 1 {
		t.Errorf("up %v after a read that succeeded", v)
	}
	if v := testutil.ToFloat64(TelemetryMeasuredPods); v != 3 {
		t.Errorf("measured pods %v, want 3", v)
	}
	want := float64(ok.Unix()) + 0.5
	if v := testutil.ToFloat64(TelemetryLastSuccess); v != want {
		t.Errorf("last success %v, want %v", v, want)
	}

	// A partial failure: the pods it measured count, the last success stays.
	ObserveTelemetryRead(ok.Add(time.Minute), 1, errors.New("query dcgm: timeout"))
	if v := testutil.ToFloat64(TelemetryUp); v != 0 {
		t.Errorf("up %v after a failed read", v)
	}
	if v := testutil.ToFloat64(TelemetryMeasuredPods); v != 1 {
		t.Errorf("measured pods %v, want 1", v)
	}
	if v := testutil.ToFloat64(TelemetryLastSuccess); v != want {
		t.Errorf("last success moved to %v on a failed read, want %v", v, want)
	}
}
