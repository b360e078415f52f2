package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"kcloud.io/optimizer/pkg/install"
)

// previousChart is the chart as released before its CRDs became templates (testdata/README.md).
const previousChart = "test/e2e/deploy/testdata/kcloud-operator-0.1.0.tgz"

// TestHelmUpgradeFromPreviousChart installs the previous chart version, whose CRDs were in crds/,
// and upgrades it to this one as the docs say: every CRD field whose schema differs between the
// two versions has this version's schema in the API server afterwards, the release owns the CRDs,
// and `helm uninstall` leaves them.
func TestHelmUpgradeFromPreviousChart(t *testing.T) {
	c := startCluster(t)
	const ns = "kcloud-operator-system"
	c.run(t, "helm install kcloud-operator "+previousChart+" --namespace "+ns+" --create-namespace")
	before := c.storedCRDSchemas(t)
	want := configCRDSchemas(t)
	changed := schemaDiff(before, want)
	if len(changed) == 0 {
		t.Fatal("the previous chart's CRDs have the schemas of config/crd/bases: this upgrade would show nothing")
	}
	t.Logf("fields whose schema the upgrade changes: %s", strings.Join(changed, ", "))

	c.run(t, "helm upgrade kcloud-operator ./charts/kcloud-operator --namespace "+ns+" --reset-then-reuse-values --take-ownership")
	after := c.storedCRDSchemas(t)
	if left := schemaDiff(after, want); len(left) > 0 {
		t.Errorf("after the upgrade these fields still differ from config/crd/bases: %s", strings.Join(left, ", "))
	}
	for _, name := range kcloudCRDs {
		crd, err := c.dyn.Resource(crdGVR).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := crd.GetAnnotations()["meta.helm.sh/release-name"]; got != "kcloud-operator" {
			t.Errorf("CRD %s: meta.helm.sh/release-name %q after the upgrade, want the release", name, got)
		}
	}

	// A second upgrade needs no flag of the first, and uninstalling keeps the CRDs.
	c.run(t, "helm upgrade kcloud-operator ./charts/kcloud-operator --namespace "+ns+" --reset-then-reuse-values")
	c.run(t, "helm uninstall kcloud-operator --namespace "+ns+" --wait")
	for _, name := range kcloudCRDs {
		if _, err := c.dyn.Resource(crdGVR).Get(context.Background(), name, metav1.GetOptions{}); err != nil {
			t.Errorf("CRD %s after helm uninstall: %v (crds.keep should leave it)", name, err)
		}
	}
}

// TestChartCRDsAreConfigCRDs renders the chart and compares its CRDs with config/crd/bases, what
// controller-gen generates: the templates may add labels and annotations, never change a schema.
func TestChartCRDsAreConfigCRDs(t *testing.T) {
	want := configCRDSchemas(t)
	got := map[string]any{}
	for _, o := range byKind(helmTemplate(t, "kcloud-operator", "kcloud-operator-system"), "CustomResourceDefinition") {
		got[o.GetName()] = o.Object["spec"]
		if o.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s: no helm.sh/resource-policy=keep by default", o.GetName())
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chart CRDs (+) vs config/crd/bases (-):\n%s", diff)
	}
	if n := len(byKind(helmTemplate(t, "kcloud-operator", "kcloud-operator-system", "--set", "crds.install=false"), "CustomResourceDefinition")); n != 0 {
		t.Errorf("crds.install=false renders %d CRDs", n)
	}
}

// TestChartKubeVersionFollowsSkew renders the chart for the Kubernetes minor kcloud-scheduler is
// built from (go.mod's k8s.io/kubernetes) and for the one before: kube-scheduler must not be newer
// than the API server, so the older minor is refused.
func TestChartKubeVersionFollowsSkew(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/kubernetes v1\.(\d+)\.\d+`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod requires no k8s.io/kubernetes v1.x")
	}
	var minor int
	if _, err := fmt.Sscan(string(m[1]), &minor); err != nil {
		t.Fatal(err)
	}
	helmTemplate(t, "kcloud-operator", "kcloud-operator-system", "--kube-version", fmt.Sprintf("1.%d.0", minor))
	out, err := helmTemplateErr(t, "--kube-version", fmt.Sprintf("1.%d.9", minor-1))
	if err == nil || !strings.Contains(out, "kubeVersion") {
		t.Errorf("rendering for Kubernetes 1.%d (older than kcloud-scheduler's 1.%d): err %v, output %q; want a kubeVersion refusal", minor-1, minor, err, out)
	}
}

// storedCRDSchemas are the kcloud CRDs' specs as the API server holds them.
func (c *cluster) storedCRDSchemas(t *testing.T) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, name := range kcloudCRDs {
		crd, err := c.dyn.Resource(crdGVR).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out[name] = crd.Object["spec"]
	}
	return out
}

// configCRDSchemas are the specs of config/crd/bases, by CRD name.
func configCRDSchemas(t *testing.T) map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("config/crd/bases: %v (%d files)", err, len(files))
	}
	out := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := install.Decode(f, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			out[o.GetName()] = roundTrip(t, o)
		}
	}
	return out
}

// roundTrip gives a file's spec the JSON types the API server returns (int64 becomes float64 and
// back the same way for both sides).
func roundTrip(t *testing.T, o *unstructured.Unstructured) any {
	t.Helper()
	b, err := yaml.Marshal(o.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// schemaDiff lists the paths (CRD name, then the spec's keys and list indexes) where got and want
// differ, down to the first differing key on each branch. Top-level spec fields the API server
// sets itself (conversion) are not in the files and are ignored where want has none.
func schemaDiff(got, want map[string]any) []string {
	var out []string
	var walk func(path string, a, b any, top bool)
	walk = func(path string, a, b any, top bool) {
		if al, ok := a.([]any); ok {
			if bl, ok := b.([]any); ok && len(al) == len(bl) {
				for i := range al {
					walk(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i], false)
				}
				return
			}
		}
		am, aok := a.(map[string]any)
		bm, bok := b.(map[string]any)
		if !aok || !bok {
			if !reflect.DeepEqual(normalize(a), normalize(b)) {
				out = append(out, path)
			}
			return
		}
		keys := []string{}
		for k := range bm {
			keys = append(keys, k)
		}
		for k := range am {
			if _, ok := bm[k]; !ok && !top {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			walk(path+"/"+k, am[k], bm[k], false)
		}
	}
	for name, w := range want {
		walk(name, got[name], w, true)
	}
	slices.Sort(out)
	return out
}

// helmTemplateErr renders the chart with extra arguments and returns helm's combined output and
// error, for renderings that must fail.
func helmTemplateErr(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBin, append([]string{"template", "kcloud-operator", "./charts/kcloud-operator"}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// normalize makes numbers comparable whatever decoder produced them.
func normalize(v any) any {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case int:
		return float64(n)
	case []any:
		out := make([]any, len(n))
		for i, e := range n {
			out[i] = normalize(e)
		}
		return out
	}
	return v
}
