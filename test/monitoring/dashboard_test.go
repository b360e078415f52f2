package monitoring

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// TestDashboardQueriesParse writes every query of the dashboard, its Grafana variables
// substituted, as a recording rule and has `promtool check rules` parse them.
func TestDashboardQueriesParse(t *testing.T) {
	queries, err := DashboardQueries(DashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(queries) < 20 {
		t.Fatalf("the dashboard has %d queries: is it read right?", len(queries))
	}
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	var index strings.Builder
	for i, q := range queries {
		if strings.TrimSpace(q.Expr) == "" {
			t.Errorf("%s has no query", q.Where)
			continue
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: SubstituteVariables(q.Expr)})
		fmt.Fprintf(&index, "dashboard:query_%d: %s\n", i, q.Where)
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("the rules file's records are:\n%s", index.String())
	RunPromtool(t, "check", "rules", path)
}

// TestDashboardCovers checks that the dashboard has panels over what the chart documents: spend
// against budget per policy, $/h and W per workload, savings, the rebalancer and the autoscaler.
func TestDashboardCovers(t *testing.T) {
	queries, err := DashboardQueries(DashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, q := range queries {
		for _, m := range MetricNames(SubstituteVariables(q.Expr)) {
			used[m] = true
		}
	}
	for _, m := range []string{
		"kcloud_policy_spend_usd", "kcloud_policy_budget_usd", "kcloud_policy_energy_kwh", "kcloud_policy_energy_budget_kwh",
		"kcloud_policy_cost_usd_per_hour", "kcloud_policy_max_cost_usd_per_hour", "kcloud_policy_power_watts", "kcloud_policy_max_power_watts",
		"kcloud_workload_cost_usd_per_hour", "kcloud_workload_power_watts",
		"kcloud_cost_savings_total", "kcloud_power_savings_watts", "kcloud_optimization_score", "kcloud_workload_optimizations_total",
		"kcloud_rebalance_last_run_moves", "kcloud_rebalance_evictions_total", "kcloud_rebalance_realised_savings_usd_per_hour_total",
		"kcloud_autoscaler_current_replicas", "kcloud_autoscaler_desired_replicas", "kcloud_autoscaler_scale_events_total",
	} {
		if !used[m] {
			t.Errorf("no dashboard panel queries %s", m)
		}
	}
}

func TestMetricNames(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`sum(kcloud_workload_cost_usd_per_hour{namespace=~"x"})`, []string{"kcloud_workload_cost_usd_per_hour"}},
		{`max by (policy) (kcloud_policy_spend_usd) / on (policy) max by (policy) (kcloud_policy_budget_usd)`,
			[]string{"kcloud_policy_budget_usd", "kcloud_policy_spend_usd"}},
		{`sum by (job, webhook) (rate(controller_runtime_webhook_requests_total{code!~"2.."}[5m])) > 0.05`,
			[]string{"controller_runtime_webhook_requests_total"}},
		{`count(max by (node) (kcloud_node_priced) == 0) or vector(0)`, []string{"kcloud_node_priced"}},
		{`a_total unless ignoring(outcome) b offset 5m and c > 1e3`, []string{"a_total", "b", "c"}},
		{`{__name__="kcloud_x"} + rate({__name__ = "kcloud_y_total", job="j"}[5m])`, []string{"kcloud_x", "kcloud_y_total"}},
	}
	for _, c := range cases {
		if diff := cmp.Diff(c.want, MetricNames(c.expr)); diff != "" {
			t.Errorf("MetricNames(%s) (-want +got):\n%s", c.expr, diff)
		}
	}
}

func TestSubstituteVariables(t *testing.T) {
	got := SubstituteVariables(`sum(rate(m{namespace=~"$namespace",ds="${datasource}"}[$__rate_interval])) + increase(m[${__range}])`)
	want := `sum(rate(m{namespace=~"x",ds="x"}[5m])) + increase(m[5m])`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
