package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/operator"
	"kcloud.io/optimizer/internal/telemetry"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/test/monitoring"
)

// productMetrics are the product description's four metric names, which stay as they are.
var productMetrics = []string{"kcloud_workload_optimizations_total", "kcloud_cost_savings_total", "kcloud_power_savings_watts", "kcloud_optimization_score"}

// TestMetricsEndpoint runs the operator with its real HTTPS metrics endpoint (TokenReview and
// SubjectAccessReview against envtest's API server), scrapes it as a ServiceAccount bound to
// get /metrics, as the chart's ServiceMonitor does, and has `promtool check metrics` lint the
// output; a ServiceAccount without the binding, and a scrape without a token, are refused. Every
// metric the chart's alerts and dashboard query must be in the running operator's registry.
func TestMetricsEndpoint(t *testing.T) {
	ctx := context.Background()
	ns := "op-metrics"
	ensureNamespace(t, ns)
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	node := t4Node(t, "op-metrics-t4", "on-demand")
	runningPod(t, ns, "serve-0", node.Name, clk.Now().Add(-time.Hour), map[string]string{kube.LabelOptimizer: "serve"})
	wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "serve", Namespace: ns},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadServing}}
	budget, maxCost := 100.0, 50.0
	cp := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "op-metrics"},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}}, MaxCostPerHour: &maxCost,
			Budget: &kcloudv1alpha1.CostBudget{Amount: budget, Period: kcloudv1alpha1.BudgetPeriodDay, AlertThresholds: []int32{50}}}}
	if err := k8sClient.Create(ctx, wo); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(ctx, cp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), cp) })

	addr := freeAddr(t)
	ctrllog.SetLogger(testr.New(t))
	// As the chart runs it: HTTPS metrics, and a catalog ConfigMap named (here a missing one).
	mgr, err := operator.New(cfg, operator.Options{MetricsAddr: addr, MetricsSecure: true, ProbeAddr: "0", Clock: clk, SkipNameValidation: true,
		CatalogConfigMap:   ns + "/kcloud-catalog",
		AccountingInterval: 200 * time.Millisecond, ReoptimizeInterval: 200 * time.Millisecond,
		Telemetry: telemetry.Static{Readings: map[types.NamespacedName]telemetry.Reading{{Namespace: ns, Name: "serve-0"}: {Watts: 60, Source: telemetry.SourceDCGM}}}})
	if err != nil {
		t.Fatal(err)
	}
	runManager(t, mgr)

	reader := scrapeToken(t, ns, "prometheus", true)
	url := "https://" + addr + "/metrics"
	var body string
	waitFor(t, "the operator's metrics", func() error {
		code, b, err := scrape(url, reader)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("GET %s: %d %v", url, code, err)
		}
		body = b
		for _, m := range append(slices.Clone(productMetrics), "kcloud_policy_budget_usd", "kcloud_policy_budget_threshold_ratio",
			"kcloud_policy_max_cost_usd_per_hour", "kcloud_telemetry_up", "kcloud_telemetry_measured_pods", "kcloud_node_priced") {
			if !strings.Contains(body, "\n# TYPE "+m+" ") {
				return fmt.Errorf("no %s in the scrape", m)
			}
		}
		return nil
	})
	for _, m := range productMetrics {
		if !strings.Contains(body, "\n"+m+"{") {
			t.Errorf("the product metric %s has no series", m)
		}
	}

	// What promtool says of the real output.
	cmd := exec.Command(monitoring.Promtool(t), "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics on %d lines of /metrics: %v\n%s", strings.Count(body, "\n"), err, out)
	}
	t.Logf("promtool check metrics: %d lines, %d metric families of /metrics", strings.Count(body, "\n"), strings.Count(body, "\n# TYPE "))

	// Authentication and authorization of the scrape.
	for _, c := range []struct {
		who, token string
		want       int
	}{
		{"a ServiceAccount without get /metrics", scrapeToken(t, ns, "stranger", false), http.StatusForbidden},
		{"no token", "", http.StatusUnauthorized},
	} {
		if code, _, err := scrape(url, c.token); err != nil || code != c.want {
			t.Errorf("scrape with %s: %d %v, want %d", c.who, code, err, c.want)
		}
	}

	checkNamesRegistered(t)
}

// checkNamesRegistered checks that every metric the chart's alerting rules and dashboard query is
// one the operator's registry holds (a name without series yet counts: an alert may wait for it).
func checkNamesRegistered(t *testing.T) {
	t.Helper()
	used := map[string][]string{}
	rules, err := monitoring.ReadRules(monitoring.RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, m := range monitoring.MetricNames(r.Expr) {
				used[m] = append(used[m], "alert "+r.Alert)
			}
		}
	}
	queries, err := monitoring.DashboardQueries(monitoring.DashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		for _, m := range monitoring.MetricNames(monitoring.SubstituteVariables(q.Expr)) {
			used[m] = append(used[m], "dashboard "+q.Where)
		}
	}
	if len(used) < 30 {
		t.Fatalf("only %d metric names in the rules and the dashboard: are they read right?", len(used))
	}
	for m, where := range used {
		if !registered(m) {
			t.Errorf("%s, queried by %v, is not a metric of the operator", m, where)
		}
	}
	// The check can tell: a name the operator does not have is not taken for one.
	if registered("kcloud_no_such_metric_total") {
		t.Error("registered() takes an unknown name for a metric")
	}
}

// registered reports whether the operator's registry (controller-runtime's, which its metrics
// endpoint serves) holds a metric named name: registering a collector with that name and another
// help text fails exactly when it does. Histogram and summary series are looked up by their
// family's name.
func registered(name string) bool {
	for _, n := range []string{name, strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")} {
		probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: n, Help: "probe of test/integration's registered()"})
		if err := ctrlmetrics.Registry.Register(probe); err != nil {
			return true
		}
		ctrlmetrics.Registry.Unregister(probe)
	}
	return false
}

// scrapeToken returns a token of ServiceAccount name in ns, bound to a ClusterRole allowing get
// on /metrics when canRead.
func scrapeToken(t *testing.T, ns, name string, canRead bool) string {
	t.Helper()
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if canRead {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics-reader"},
			Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}}}
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
			_ = cs.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
		})
	}
	expiry := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// scrape GETs url with a Bearer token (none when empty), not verifying the certificate the
// operator signed itself (the chart's ServiceMonitor default).
func scrape(url, token string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed by controller-runtime
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	var b bytes.Buffer
	_, err = io.Copy(&b, resp.Body)
	return resp.StatusCode, b.String(), err
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
