package deploy

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"kcloud.io/optimizer/pkg/install"
)

// specQuickStart is the product description's quick start ("빠른 시작"), character for character.
const specQuickStart = `# Helm을 사용한 설치 (권장)
helm install kcloud-operator ./charts/kcloud-operator \
  --namespace kcloud-operator-system \
  --create-namespace

# 설치 확인
kubectl get pods -n kcloud-operator-system
kubectl get crd | grep kcloud.io
`

var kcloudCRDs = []string{"costpolicies.kcloud.io", "powerpolicies.kcloud.io", "workloadoptimizers.kcloud.io"}

// checkCRDListing checks that `kubectl get crd | grep kcloud.io` printed the three kinds.
func checkCRDListing(t *testing.T, out string) {
	t.Helper()
	for _, crd := range kcloudCRDs {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(crd) + `\s`).MatchString(out) {
			t.Errorf("`kubectl get crd | grep kcloud.io` does not list %s:\n%s", crd, out)
		}
	}
}

// TestHelmChart installs the chart with the product description's command on a fresh cluster,
// has the API server enforce Pod Security "restricted" on its pods, checks both ServiceAccounts'
// permissions, uninstalls it, then applies every object of a non-default rendering (cert-manager
// certificates, a ServiceMonitor, other names, namespace and replicas) against the real
// cert-manager and prometheus-operator CRDs.
func TestHelmChart(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	const ns = "kcloud-operator-system"

	c.run(t, "helm lint --strict ./charts/kcloud-operator\nhelm lint --strict ./charts/kcloud-operator -f test/e2e/deploy/testdata/values-custom.yaml")
	out := c.run(t, specQuickStart)
	checkCRDListing(t, out)
	for _, crd := range kcloudCRDs {
		if _, err := c.dyn.Resource(crdGVR).Get(ctx, crd, metav1.GetOptions{}); err != nil {
			t.Errorf("CRD %s: %v", crd, err)
		}
	}

	// What helm installed is what `helm template` renders with the same values.
	objs := helmTemplate(t, "kcloud-operator", ns)
	c.checkExist(t, objs)
	deps := checkPodSecurity(t, objs)
	want := map[string]int32{"kcloud-operator": 2, "kcloud-operator-scheduler": 2}
	if got := mapsKeys(deps); !slices.Equal(got, []string{"kcloud-operator", "kcloud-operator-scheduler"}) {
		t.Fatalf("rendered Deployments %v", got)
	}
	c.waitRunning(t, ns, want)
	checkOperatorDeployment(t, deps["kcloud-operator"])
	checkDefaultRendering(t, objs, ns)
	c.enforceRestricted(t, ns, want)
	c.checkNoWildcard(t, objs)

	allowed, denied := operatorAccess(ns)
	c.checkAccess(t, ns, "kcloud-operator", allowed, denied)
	allowed, denied = schedulerAccess(ns)
	c.checkAccess(t, ns, "kcloud-operator-scheduler", allowed, denied)

	// An upgrade goes through, and its new pod is admitted under enforcement.
	c.run(t, "helm upgrade kcloud-operator ./charts/kcloud-operator --namespace kcloud-operator-system --reuse-values --set operator.replicas=3")
	c.waitRunning(t, ns, map[string]int32{"kcloud-operator": 3, "kcloud-operator-scheduler": 2})

	c.run(t, "helm uninstall kcloud-operator --namespace kcloud-operator-system --wait")

	t.Run("non-default values", func(t *testing.T) {
		const alt = "kcloud-alt"
		c.apply(t, thirdPartyCRDs(t))
		nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: alt, Labels: map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}}
		if _, err := c.cs.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		objs := helmTemplate(t, "kc", alt, "-f", "test/e2e/deploy/testdata/values-custom.yaml")
		for _, kind := range []string{"Certificate", "Issuer", "ServiceMonitor", "PrometheusRule"} {
			if len(byKind(objs, kind)) != 1 {
				t.Errorf("want one %s, got %v", kind, names(byKind(objs, kind)))
			}
		}
		if pdbs := names(byKind(objs, "PodDisruptionBudget")); !slices.Equal(pdbs, []string{"kcloud"}) {
			t.Errorf("PodDisruptionBudgets %v: want the operator's only (one scheduler replica)", pdbs)
		}
		for _, wh := range append(byKind(objs, "MutatingWebhookConfiguration"), byKind(objs, "ValidatingWebhookConfiguration")...) {
			if got := wh.GetAnnotations()["cert-manager.io/inject-ca-from"]; got != alt+"/kcloud-webhook" {
				t.Errorf("%s: cainjector annotation %q", wh.GetName(), got)
			}
			checkWebhookTargets(t, wh, alt, "kcloud-webhook")
		}
		deps := checkPodSecurity(t, objs)
		c.apply(t, objs)
		c.checkExist(t, objs)
		c.waitRunning(t, alt, map[string]int32{"kcloud": 3, "kcloud-scheduler": 1})
		op := deps["kcloud"]
		args := op.Spec.Template.Spec.Containers[0].Args
		for _, a := range []string{"--webhook-cert-mode=external", "--prometheus-url=http://prometheus.monitoring:9090", "--reoptimize-interval=2m"} {
			if !slices.Contains(args, a) {
				t.Errorf("operator args %v lack %s", args, a)
			}
		}
		if env := envOf(op.Spec.Template.Spec.Containers[0].Env); env["WATCH_NAMESPACE"] != "team-a,team-b" {
			t.Errorf("WATCH_NAMESPACE %q", env["WATCH_NAMESPACE"])
		}
		c.checkNoWildcard(t, objs)
		allowed, denied := operatorAccess(alt)
		// The Secret is cert-manager's here, the names are the override's; the rules are the same.
		c.checkAccess(t, alt, "kcloud", allowed, denied)
		allowed, denied = schedulerAccess(alt)
		c.checkAccess(t, alt, "kcloud-scheduler", allowed, denied)
		// The release of the first install is gone with its namespace's rights.
		c.checkAccess(t, ns, "kcloud-operator", nil, []access{{verb: "list", resource: "nodes"}})
	})

	t.Run("optional parts off", func(t *testing.T) {
		objs := helmTemplate(t, "kcloud-operator", ns, "--set", "webhook.enabled=false,networkPolicy.enabled=false,scheduler.enabled=false,grafanaDashboard.enabled=false,rbac.metricsReader=false,operator.replicas=1")
		for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "NetworkPolicy", "PodDisruptionBudget", "ConfigMap"} {
			if got := byKind(objs, kind); len(got) > 0 {
				t.Errorf("%s rendered with it switched off: %v", kind, names(got))
			}
		}
		deps := checkPodSecurity(t, objs)
		if len(deps) != 1 || !slices.Contains(deps["kcloud-operator"].Spec.Template.Spec.Containers[0].Args, "--webhook-port=0") {
			t.Errorf("want the operator alone, serving no webhooks: %v", mapsKeys(deps))
		}
	})
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// checkOperatorDeployment checks the operator's high-availability settings and environment.
func checkOperatorDeployment(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("operator replicas %v, want 2", d.Spec.Replicas)
	}
	ctr := d.Spec.Template.Spec.Containers[0]
	for _, a := range []string{"--leader-elect=true", "--leader-election-namespace=$(POD_NAMESPACE)", "--webhook-cert-mode=self"} {
		if !slices.Contains(ctr.Args, a) {
			t.Errorf("operator args %v lack %s", ctr.Args, a)
		}
	}
	env := envOf(ctr.Env)
	if env["POD_NAME"] != "fieldRef:metadata.name" {
		t.Errorf("POD_NAME %q, want from metadata.name", env["POD_NAME"])
	}
	for _, k := range []string{"WATCH_NAMESPACE", "OPERATOR_NAME", "CORE_SCHEDULER_URL"} {
		if _, ok := env[k]; !ok {
			t.Errorf("operator env lacks %s", k)
		}
	}
	aff := d.Spec.Template.Spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 ||
		len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
		t.Errorf("operator: want a soft pod anti-affinity, got %+v", aff)
	}
}

func mapsKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func envOf(env []corev1.EnvVar) map[string]string {
	out := map[string]string{}
	for _, e := range env {
		out[e.Name] = e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			out[e.Name] = "fieldRef:" + e.ValueFrom.FieldRef.FieldPath
		}
	}
	return out
}

// checkWebhookTargets checks that every webhook calls the release's Service and that the pod
// webhooks skip the release namespace.
func checkWebhookTargets(t *testing.T, wh *unstructured.Unstructured, ns, service string) {
	t.Helper()
	hooks, _, _ := unstructured.NestedSlice(wh.Object, "webhooks")
	if len(hooks) == 0 {
		t.Errorf("%s has no webhooks", wh.GetName())
	}
	for _, h := range hooks {
		m := h.(map[string]any)
		name, _, _ := unstructured.NestedString(m, "clientConfig", "service", "name")
		namespace, _, _ := unstructured.NestedString(m, "clientConfig", "service", "namespace")
		if name != service || namespace != ns {
			t.Errorf("%s webhook %v calls %s/%s, want %s/%s", wh.GetName(), m["name"], namespace, name, ns, service)
		}
		exprs, found, _ := unstructured.NestedSlice(m, "namespaceSelector", "matchExpressions")
		if !found {
			continue
		}
		b, _ := json.Marshal(exprs)
		for _, skip := range []string{ns, "kube-system", "gpu-operator", "cert-manager", "monitoring"} { // the release's and webhook.skipNamespaces
			if !strings.Contains(string(b), `"`+skip+`"`) {
				t.Errorf("%s webhook %v does not skip the namespace %s: %s", wh.GetName(), m["name"], skip, b)
			}
		}
	}
}

// checkDefaultRendering checks the defaults the issue asks for in the rendered objects.
func checkDefaultRendering(t *testing.T, objs []*unstructured.Unstructured, ns string) {
	t.Helper()
	for _, wh := range append(byKind(objs, "MutatingWebhookConfiguration"), byKind(objs, "ValidatingWebhookConfiguration")...) {
		checkWebhookTargets(t, wh, ns, "kcloud-operator-webhook")
	}
	if got := names(byKind(objs, "NetworkPolicy")); !slices.Equal(got, []string{"kcloud-operator", "kcloud-operator-scheduler"}) {
		t.Errorf("NetworkPolicies %v", got)
	}
	if got := names(byKind(objs, "PodDisruptionBudget")); !slices.Equal(got, []string{"kcloud-operator", "kcloud-operator-scheduler"}) {
		t.Errorf("PodDisruptionBudgets %v", got)
	}
	if got := byKind(objs, "ServiceMonitor"); len(got) != 0 {
		t.Errorf("ServiceMonitor rendered by default")
	}
	var dashboard *unstructured.Unstructured
	for _, cm := range byKind(objs, "ConfigMap") {
		if cm.GetLabels()["grafana_dashboard"] == "1" {
			dashboard = cm
		}
	}
	if dashboard == nil {
		t.Fatal("no ConfigMap labelled grafana_dashboard=1")
	}
	checkDashboard(t, dashboard)
}

// checkDashboard checks that the Grafana dashboard is JSON with panels whose queries use only
// metrics the operator exports (internal/metrics), and that it covers cost, power, savings,
// scores and budgets.
func checkDashboard(t *testing.T, cm *unstructured.Unstructured) {
	t.Helper()
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(data["kcloud-optimizer.json"]), &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	// The operator's metrics are declared in internal/ and pkg/ (test/integration checks the
	// dashboard's names against a running operator's registry).
	exported := map[string]bool{}
	for _, dir := range []string{"internal", "pkg"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			for _, m := range regexp.MustCompile(`Name:\s+"(kcloud_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
				exported[m[1]] = true
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	used := map[string]bool{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range regexp.MustCompile(`kcloud_[a-z_]+`).FindAllString(tg.Expr, -1) {
				if !exported[m] {
					t.Errorf("dashboard panel %q queries %s, which the operator does not export", p.Title, m)
				}
				used[m] = true
			}
		}
	}
	for _, m := range []string{"kcloud_workload_cost_usd_per_hour", "kcloud_workload_power_watts", "kcloud_cost_savings_total",
		"kcloud_power_savings_watts", "kcloud_optimization_score", "kcloud_policy_spend_usd", "kcloud_policy_energy_kwh"} {
		if !used[m] {
			t.Errorf("dashboard has no panel over %s", m)
		}
	}
}

// thirdPartyCRDs are the CRDs of the kinds the non-default values render (cert-manager's
// Certificate and Issuer, prometheus-operator's ServiceMonitor), read from those projects' Go
// modules, which ship them, at pinned versions.
func thirdPartyCRDs(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, f := range []struct{ module, file string }{
		{"github.com/cert-manager/cert-manager@v1.21.2", "deploy/crds/cert-manager.io_certificates.yaml"},
		{"github.com/cert-manager/cert-manager@v1.21.2", "deploy/crds/cert-manager.io_issuers.yaml"},
		{"github.com/prometheus-operator/prometheus-operator@v0.85.0", "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"},
		{"github.com/prometheus-operator/prometheus-operator@v0.85.0", "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml"},
	} {
		dir := moduleDir(t, f.module)
		b, err := os.ReadFile(filepath.Join(dir, f.file))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := install.Decode(f.file, b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, objs...)
	}
	return out
}

func moduleDir(t *testing.T, module string) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = t.TempDir() // outside any module: nothing to update
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", module, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: %v %s", module, err, info.Error)
	}
	return info.Dir
}
