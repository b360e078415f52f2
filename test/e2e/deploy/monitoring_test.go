package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// TestChartMonitoring renders the ServiceMonitor and the PrometheusRule (no cluster): the scrape
// keeps the series' labels, authenticates with a Bearer token from a Secret whose ServiceAccount
// may get /metrics, checks TLS as the values say, and the rules are the chart's rules file.
func TestChartMonitoring(t *testing.T) {
	const ns = "kcloud-operator-system"
	t.Run("defaults", func(t *testing.T) {
		objs := helmTemplate(t, "kcloud-operator", ns, "--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true")
		ep := serviceMonitorEndpoint(t, objs)
		want := map[string]any{
			"port": "https", "scheme": "https", "path": "/metrics", "interval": "30s", "honorLabels": true,
			"authorization": map[string]any{"type": "Bearer", "credentials": map[string]any{"name": "kcloud-operator-metrics-token", "key": "token"}},
			"tlsConfig":     map[string]any{"serverName": "kcloud-operator-metrics." + ns + ".svc", "insecureSkipVerify": true},
		}
		if diff := cmp.Diff(want, ep); diff != "" {
			t.Errorf("ServiceMonitor endpoint (-want +got):\n%s", diff)
		}
		// The serverName and port are the metrics Service's.
		svc := named(t, objs, "Service", "kcloud-operator-metrics")
		ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
		if len(ports) != 1 || ports[0].(map[string]any)["name"] != "https" {
			t.Errorf("metrics Service ports %v: want the one named https", ports)
		}
		checkScrapeIdentity(t, objs, ns)
		checkPrometheusRule(t, objs, nil, nil)
		checkAgainstCRDs(t, objs, "ServiceMonitor", "PrometheusRule")
	})

	t.Run("own token and CA", func(t *testing.T) {
		objs := helmTemplate(t, "kcloud-operator", ns, "--set", "serviceMonitor.enabled=true",
			"--set", "serviceMonitor.authorization.createToken=false",
			"--set", "serviceMonitor.authorization.secretName=prometheus-scrape", "--set", "serviceMonitor.authorization.key=jwt",
			"--set", "serviceMonitor.tlsConfig.insecureSkipVerify=false", "--set", "serviceMonitor.tlsConfig.serverName=metrics.example.internal",
			"--set", "serviceMonitor.tlsConfig.ca.configMap.name=cluster-ca", "--set", "serviceMonitor.tlsConfig.ca.configMap.key=ca.crt")
		ep := serviceMonitorEndpoint(t, objs)
		if diff := cmp.Diff(map[string]any{"type": "Bearer", "credentials": map[string]any{"name": "prometheus-scrape", "key": "jwt"}}, ep["authorization"]); diff != "" {
			t.Errorf("authorization (-want +got):\n%s", diff)
		}
		wantTLS := map[string]any{"serverName": "metrics.example.internal", "ca": map[string]any{"configMap": map[string]any{"name": "cluster-ca", "key": "ca.crt"}}}
		if diff := cmp.Diff(wantTLS, ep["tlsConfig"]); diff != "" {
			t.Errorf("tlsConfig (-want +got):\n%s", diff)
		}
		for _, kind := range []string{"Secret", "ClusterRoleBinding", "ServiceAccount"} {
			for _, o := range byKind(objs, kind) {
				if strings.Contains(o.GetName(), "metrics-") {
					t.Errorf("%s %s rendered although the user names the token Secret", kind, o.GetName())
				}
			}
		}
		if got := byKind(objs, "PrometheusRule"); len(got) != 0 {
			t.Error("PrometheusRule rendered without prometheusRule.enabled")
		}
		checkAgainstCRDs(t, objs, "ServiceMonitor")
	})

	t.Run("refused values", func(t *testing.T) {
		for _, c := range []struct{ args, want string }{
			{"serviceMonitor.enabled=true,serviceMonitor.authorization.createToken=false", "serviceMonitor.authorization.secretName"},
			{"serviceMonitor.enabled=true,rbac.metricsReader=false", "needs rbac.create and rbac.metricsReader"},
		} {
			out, err := renderChartErr(t, "--set", c.args)
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("--set %s: err %v, output %q: want a refusal naming %q", c.args, err, out, c.want)
			}
		}
	})

	t.Run("rule labels and disabled alerts", func(t *testing.T) {
		objs := helmTemplate(t, "kcloud-operator", ns, "--set", "prometheusRule.enabled=true", "--set", "prometheusRule.ruleLabels.team=ml-platform",
			"--set", "prometheusRule.ruleLabels.severity=page", "--set", "prometheusRule.disabledAlerts={KCloudRebalancerBlocked,KCloudCoreSchedulerDown}",
			"--set", "prometheusRule.labels.release=prometheus")
		pr := checkPrometheusRule(t, objs, []string{"KCloudRebalancerBlocked", "KCloudCoreSchedulerDown"}, map[string]string{"team": "ml-platform"})
		if pr.GetLabels()["release"] != "prometheus" {
			t.Errorf("PrometheusRule labels %v: want release=prometheus", pr.GetLabels())
		}
		checkAgainstCRDs(t, objs, "PrometheusRule")
	})
}

// checkAgainstCRDs validates the rendered objects of kinds against the OpenAPI schemas of
// prometheus-operator's CRDs (the pinned module's), as the API server would, and fails on a field
// the schema does not know, which the API server would drop without a word.
func checkAgainstCRDs(t *testing.T, objs []*unstructured.Unstructured, kinds ...string) {
	t.Helper()
	for _, crd := range thirdPartyCRDs(t) {
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		if !slices.Contains(kinds, kind) {
			continue
		}
		v1 := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(crd.Object, v1); err != nil {
			t.Fatal(err)
		}
		var internal apiextensions.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v1.Spec.Versions[0].Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			t.Fatal(err)
		}
		validator, _, err := validation.NewSchemaValidator(&internal)
		if err != nil {
			t.Fatal(err)
		}
		structural, err := structuralschema.NewStructural(&internal)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range byKind(objs, kind) {
			for _, e := range validator.Validate(o.DeepCopy().Object).Errors {
				t.Errorf("%s %s: %v", kind, o.GetName(), e)
			}
			if unknown := pruning.PruneWithOptions(o.DeepCopy().Object, structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}); len(unknown) > 0 {
				t.Errorf("%s %s: fields the CRD does not know: %v", kind, o.GetName(), unknown)
			}
		}
		kinds = slices.DeleteFunc(kinds, func(k string) bool { return k == kind })
	}
	if len(kinds) > 0 {
		t.Errorf("no CRD among thirdPartyCRDs for %v", kinds)
	}
}

// renderChartErr runs helm template with args and returns its output and error, for values the
// chart must refuse.
func renderChartErr(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBin, append([]string{"template", "kcloud-operator", "./charts/kcloud-operator"}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// serviceMonitorEndpoint returns the one endpoint of the one ServiceMonitor.
func serviceMonitorEndpoint(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
	t.Helper()
	sms := byKind(objs, "ServiceMonitor")
	if len(sms) != 1 {
		t.Fatalf("ServiceMonitors %v: want one", names(sms))
	}
	eps, _, _ := unstructured.NestedSlice(sms[0].Object, "spec", "endpoints")
	if len(eps) != 1 {
		t.Fatalf("ServiceMonitor endpoints %v: want one", eps)
	}
	return eps[0].(map[string]any)
}

func named(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range byKind(objs, kind) {
		if o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among %v", kind, name, names(byKind(objs, kind)))
	return nil
}

// checkScrapeIdentity checks that the token Secret belongs to a ServiceAccount that a binding
// gives the ClusterRole granting get on /metrics, the permission the operator's
// SubjectAccessReview asks for.
func checkScrapeIdentity(t *testing.T, objs []*unstructured.Unstructured, ns string) {
	t.Helper()
	sec := named(t, objs, "Secret", "kcloud-operator-metrics-token")
	if typ, _, _ := unstructured.NestedString(sec.Object, "type"); typ != "kubernetes.io/service-account-token" {
		t.Errorf("token Secret type %q", typ)
	}
	sa := sec.GetAnnotations()["kubernetes.io/service-account.name"]
	if got := named(t, objs, "ServiceAccount", sa); got.GetNamespace() != ns || sec.GetNamespace() != ns {
		t.Errorf("ServiceAccount in %q, Secret in %q: both belong in the ServiceMonitor's namespace %q", got.GetNamespace(), sec.GetNamespace(), ns)
	}
	crb := named(t, objs, "ClusterRoleBinding", sa)
	subjects, _, _ := unstructured.NestedSlice(crb.Object, "subjects")
	wantSubject := []any{map[string]any{"kind": "ServiceAccount", "name": sa, "namespace": ns}}
	if diff := cmp.Diff(wantSubject, subjects); diff != "" {
		t.Errorf("binding subjects (-want +got):\n%s", diff)
	}
	role, _, _ := unstructured.NestedString(crb.Object, "roleRef", "name")
	rules, _, _ := unstructured.NestedSlice(named(t, objs, "ClusterRole", role).Object, "rules")
	wantRules := []any{map[string]any{"nonResourceURLs": []any{"/metrics"}, "verbs": []any{"get"}}}
	if diff := cmp.Diff(wantRules, rules); diff != "" {
		t.Errorf("ClusterRole %s rules (-want +got):\n%s", role, diff)
	}
}

// checkPrometheusRule checks that the PrometheusRule holds the rules file's groups, less the
// disabled alerts, with extra labels on every alert (a rule's own labels win), and returns it.
func checkPrometheusRule(t *testing.T, objs []*unstructured.Unstructured, disabled []string, extra map[string]string) *unstructured.Unstructured {
	t.Helper()
	prs := byKind(objs, "PrometheusRule")
	if len(prs) != 1 {
		t.Fatalf("PrometheusRules %v: want one", names(prs))
	}
	b, err := os.ReadFile(filepath.Join(root, "charts", "kcloud-operator", "files", "prometheus", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	var want []any
	for _, g := range file["groups"].([]any) {
		group := g.(map[string]any)
		var rules []any
		for _, r := range group["rules"].([]any) {
			rule := r.(map[string]any)
			if slices.Contains(disabled, rule["alert"].(string)) {
				continue
			}
			labels := map[string]any{}
			for k, v := range extra {
				labels[k] = v
			}
			for k, v := range rule["labels"].(map[string]any) {
				labels[k] = v
			}
			rule["labels"] = labels
			rules = append(rules, rule)
		}
		if len(rules) > 0 {
			want = append(want, map[string]any{"name": group["name"], "rules": rules})
		}
	}
	got, _, _ := unstructured.NestedSlice(prs[0].Object, "spec", "groups")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PrometheusRule groups against files/prometheus/rules.yaml (-want +got):\n%s", diff)
	}
	return prs[0]
}
