package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

var sampleFiles = []string{
	"kcloud_v1alpha1_workloadoptimizer_ml-training-optimizer.yaml",
	"kcloud_v1alpha1_workloadoptimizer_bert-training.yaml",
	"kcloud_v1alpha1_workloadoptimizer_llm-serving.yaml",
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "config", "samples", name))
	if err != nil {
		t.Fatalf("reading sample: %v", err)
	}
	return b
}

// TestSamplesAreTheSpecExamples keeps config/samples byte-identical to the product description's
// WorkloadOptimizer examples, so "the spec's examples work verbatim" is tested, not assumed.
func TestSamplesAreTheSpecExamples(t *testing.T) {
	specPath := os.Getenv("KCLOUD_SPEC")
	if specPath == "" {
		specPath = filepath.Join(repoRoot(), "..", "shared", "spec", "kcloud-product-spec.ko.md")
	}
	spec, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatalf("reading the product spec (set KCLOUD_SPEC to its path): %v", err)
	}
	var examples []string
	fence := regexp.MustCompile("(?s)```(\\w*)\n(.*?)```")
	heredoc := regexp.MustCompile("(?s)<<EOF\n(.*?)\nEOF")
	for _, m := range fence.FindAllStringSubmatch(string(spec), -1) {
		if m[1] == "yaml" && strings.Contains(m[2], "kind: WorkloadOptimizer") {
			examples = append(examples, m[2])
		}
		for _, h := range heredoc.FindAllStringSubmatch(m[2], -1) {
			if strings.Contains(h[1], "kind: WorkloadOptimizer") {
				examples = append(examples, h[1]+"\n")
			}
		}
	}
	if len(examples) != len(sampleFiles) {
		t.Fatalf("the spec has %d WorkloadOptimizer examples, config/samples has %d", len(examples), len(sampleFiles))
	}
	for i, name := range sampleFiles {
		if diff := cmp.Diff(examples[i], string(readSample(t, name))); diff != "" {
			t.Errorf("%s differs from spec example %d (-spec +sample):\n%s", name, i+1, diff)
		}
	}
}

// TestSpecExamplesApplyVerbatim applies each spec example unchanged, reads it back and checks that every
// field the user wrote is stored as written.
func TestSpecExamplesApplyVerbatim(t *testing.T) {
	ctx := context.Background()
	for _, name := range sampleFiles {
		t.Run(name, func(t *testing.T) {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(readSample(t, name), &obj.Object); err != nil {
				t.Fatalf("parsing: %v", err)
			}
			if obj.GetNamespace() == "" {
				obj.SetNamespace("default")
			}
			ensureNamespace(t, obj.GetNamespace())
			wantSpec := obj.Object["spec"]
			if err := k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()), client.FieldOwner("spec-example"), client.ForceOwnership); err != nil {
				t.Fatalf("applying %s: %v", name, err)
			}
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(obj.GroupVersionKind())
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), got); err != nil {
				t.Fatalf("reading back: %v", err)
			}
			assertSubset(t, "spec", wantSpec, got.Object["spec"])
		})
	}
}

// assertSubset fails for every value in want that got does not hold; got may hold more (defaults).
func assertSubset(t *testing.T, path string, want, got any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: want an object, got %#v", path, got)
			return
		}
		for k, v := range w {
			assertSubset(t, path+"."+k, v, g[k])
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			t.Errorf("%s: want %d items, got %#v", path, len(w), got)
			return
		}
		for i := range w {
			assertSubset(t, fmt.Sprintf("%s[%d]", path, i), w[i], g[i])
		}
	default:
		// JSON numbers come back as int64 or float64 depending on their form; compare their text.
		if fmt.Sprint(want) != fmt.Sprint(got) {
			t.Errorf("%s: want %v, got %v", path, want, got)
		}
	}
}

// TestPrinterColumns writes the spec example's status through the status subresource and reads the
// object as a Table, the way `kubectl get wo` does.
func TestPrinterColumns(t *testing.T) {
	ctx := context.Background()
	sample := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(readSample(t, sampleFiles[0]), &sample.Object); err != nil {
		t.Fatalf("parsing: %v", err)
	}
	ensureNamespace(t, sample.GetNamespace())
	obj := sample.DeepCopy()
	delete(obj.Object, "status")
	if err := k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("spec-example"), client.ForceOwnership); err != nil {
		t.Fatalf("applying: %v", err)
	}
	status := sample.DeepCopy()
	conds := status.Object["status"].(map[string]any)["conditions"].([]any)
	// A Condition needs lastTransitionTime and message; the spec's example omits them.
	conds[0].(map[string]any)["lastTransitionTime"] = "2026-01-01T00:00:00Z"
	conds[0].(map[string]any)["message"] = "cost within the workload's budget"
	delete(status.Object, "spec")
	if err := k8sClient.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(status), client.FieldOwner("status-writer"), client.ForceOwnership); err != nil {
		t.Fatalf("writing status: %v", err)
	}

	table := getTable(t, fmt.Sprintf("/apis/kcloud.io/v1alpha1/namespaces/%s/workloadoptimizers/%s", obj.GetNamespace(), obj.GetName()))
	var names []string
	for _, c := range table.ColumnDefinitions {
		names = append(names, c.Name)
	}
	wantNames := []string{"Name", "Type", "Phase", "Cost/h", "Power", "Node", "Score", "Age"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Fatalf("columns (-want +got):\n%s", diff)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("want 1 row, got %d", len(table.Rows))
	}
	cells := fmt.Sprint(table.Rows[0].Cells[:7])
	if want := "[ml-training-optimizer training Optimizing 42.5 1650 gpu-node-001 0.87]"; cells != want {
		t.Errorf("row = %s, want %s", cells, want)
	}
}

func getTable(t *testing.T, path string) metav1.Table {
	t.Helper()
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatalf("http client: %v", err)
	}
	req, err := http.NewRequest(http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatalf("decoding table: %v", err)
	}
	return table
}
