// Package monitoring checks what the chart ships for Prometheus and Grafana: the alerting rules
// (charts/kcloud-operator/files/prometheus/rules.yaml, the PrometheusRule's one source) with
// promtool, and the dashboard's queries. Its helpers read those files and pick the metric names
// out of PromQL, for this package's tests and for the integration test that checks the names
// against a running operator's registry.
package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// RulesFile and DashboardFile are the chart's files, RulesTestFile the promtool unit tests.
var (
	RulesFile     = filepath.Join(Root(), "charts", "kcloud-operator", "files", "prometheus", "rules.yaml")
	DashboardFile = filepath.Join(Root(), "charts", "kcloud-operator", "files", "dashboards", "kcloud-optimizer.json")
	RulesTestFile = filepath.Join(Root(), "test", "monitoring", "testdata", "rules_test.yaml")
)

// Promtool returns promtool's path. Where it is missing the test is skipped, unless CI is set:
// there it fails, so that a CI machine without it does not pass by skipping.
func Promtool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatalf("promtool is not installed (CI=%s): run `make prometheus` (hack/ensure-prometheus.sh, Debian's prometheus package)", ci)
	}
	t.Skip("promtool is not installed: `make prometheus` installs it (Debian's prometheus package)")
	return ""
}

// RunPromtool runs promtool with args and fails the test with its output when it fails.
func RunPromtool(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(Promtool(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Rule is one rule of a rules file.
type Rule struct {
	Alert  string `json:"alert,omitempty"`
	Record string `json:"record,omitempty"`
	Expr   string `json:"expr"`
}

// RuleGroups is a Prometheus rules file (and a PrometheusRule's spec).
type RuleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []Rule `json:"rules"`
	} `json:"groups"`
}

// ReadRules reads a rules file.
func ReadRules(path string) (RuleGroups, error) {
	var g RuleGroups
	b, err := os.ReadFile(path)
	if err != nil {
		return g, err
	}
	if err := yaml.Unmarshal(b, &g); err != nil {
		return g, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// Query is one PromQL query of the dashboard: where it is (a panel's title and target, or a
// template variable) and its text with Grafana's variables still in it.
type Query struct {
	Where string
	Expr  string
}

type dashboardPanel struct {
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"` // a collapsed row's
}

// DashboardQueries returns every panel target's query and every query variable's, in order.
func DashboardQueries(path string) ([]Query, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var dash struct {
		Panels     []dashboardPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Query
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, Query{Where: fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), Expr: tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, err := variableQuery(v.Query)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		out = append(out, Query{Where: "variable " + v.Name, Expr: q})
	}
	return out, nil
}

// variableQuery is the PromQL in a query variable: Grafana's query is a string or an object with
// a query field, and label_values(expr, label) and query_result(expr) wrap PromQL.
func variableQuery(raw json.RawMessage) (string, error) {
	var q string
	if err := json.Unmarshal(raw, &q); err != nil {
		var obj struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return "", err
		}
		q = obj.Query
	}
	q = strings.TrimSpace(q)
	if m := regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$`).FindStringSubmatch(q); m != nil {
		return m[1], nil
	}
	if m := regexp.MustCompile(`^query_result\((.+)\)$`).FindStringSubmatch(q); m != nil {
		return m[1], nil
	}
	return "", fmt.Errorf("%q: not label_values(<PromQL>, <label>) or query_result(<PromQL>)", q)
}

// Grafana's built-in interval variables, replaced by durations; any other variable ($namespace,
// ${datasource}) stands inside a label matcher's string and is replaced by a word.
var (
	intervalVar = regexp.MustCompile(`\$\{?(__rate_interval|__interval|__range)\}?`)
	otherVar    = regexp.MustCompile(`\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?`)
)

// SubstituteVariables turns a Grafana query into PromQL.
func SubstituteVariables(q string) string {
	q = intervalVar.ReplaceAllString(q, "5m")
	return otherVar.ReplaceAllString(q, "x")
}

var (
	stringLit   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	braces      = regexp.MustCompile(`\{[^{}]*\}`)
	brackets    = regexp.MustCompile(`\[[^\[\]]*\]`)
	labelList   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	identifier  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	numberStart = regexp.MustCompile(`[0-9.]$`)
	nameMatcher = regexp.MustCompile(`__name__\s*=\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"`)
	keywords    = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"}
)

// MetricNames returns the metric names a PromQL expression selects, sorted and without repeats:
// the identifiers left once strings, label matchers, ranges, label lists, functions and keywords
// are taken out, and those a {__name__="..."} matcher names.
func MetricNames(expr string) []string {
	var names []string
	for _, m := range nameMatcher.FindAllStringSubmatch(expr, -1) {
		names = append(names, m[1])
	}
	s := stringLit.ReplaceAllString(expr, `""`)
	s = braces.ReplaceAllString(s, " ")
	s = brackets.ReplaceAllString(s, " ")
	s = labelList.ReplaceAllString(s, " ")
	for _, loc := range identifier.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		if strings.HasSuffix(tok, "(") {
			continue // a function or an aggregation
		}
		if loc[0] > 0 && numberStart.MatchString(s[:loc[0]]) {
			continue // a number's exponent or a duration's unit
		}
		tok = strings.TrimSpace(tok)
		if slices.Contains(keywords, tok) {
			continue
		}
		names = append(names, tok)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
