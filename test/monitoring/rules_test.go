package monitoring

import (
	"os"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestAlertRules checks the chart's rules file and runs its promtool unit tests.
func TestAlertRules(t *testing.T) {
	RunPromtool(t, "check", "rules", RulesFile)
	RunPromtool(t, "test", "rules", RulesTestFile)
}

// promtoolTests is what TestEveryAlertTested reads of a promtool unit test file.
type promtoolTests struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name       string `json:"name"`
		AlertTests []struct {
			EvalTime  string `json:"eval_time"`
			AlertName string `json:"alertname"`
			ExpAlerts []any  `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// TestEveryAlertTested requires, for every alert of the rules file, a promtool case where it fires
// and one where it must not, and that the tests name no alert the file lacks.
func TestEveryAlertTested(t *testing.T) {
	rules, err := ReadRules(RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("the rules file has no alerts")
	}
	b, err := os.ReadFile(RulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var tests promtoolTests
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tests.RuleFiles, []string{"../../../charts/kcloud-operator/files/prometheus/rules.yaml"}) {
		t.Errorf("the unit tests read %v, not the chart's rules file", tests.RuleFiles)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertTests {
			if !slices.Contains(alerts, at.AlertName) {
				t.Errorf("test %q at %s expects alert %s, which the rules file does not have", tc.Name, at.EvalTime, at.AlertName)
			}
			if len(at.ExpAlerts) > 0 {
				fires[at.AlertName] = true
			} else {
				silent[at.AlertName] = true
			}
		}
	}
	for _, a := range alerts {
		if !fires[a] {
			t.Errorf("no promtool test where %s fires", a)
		}
		if !silent[a] {
			t.Errorf("no promtool test where %s must not fire", a)
		}
	}
}
