package e2e

import (
	"context"
	"fmt"
	"github.com/go-logr/logr"
	"os"
	"path/filepath"
	"regexp"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
)

var suite *Suite

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	var err error
	suite, err = Start(ctx, "default")
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := suite.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e teardown:", err)
		code = 1
	}
	os.Exit(code)
}

func TestFleetFromCatalog(t *testing.T) {
	ctx := context.Background()
	nodes, err := suite.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 22 {
		t.Errorf("default fleet: %d nodes, want 20 accelerator nodes and 2 of the system pool", len(nodes.Items))
	}
	cat := catalog.Default()
	resources := map[string]bool{}
	spot, regions := 0, map[string]bool{}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if !devcluster.NodeReady(n) {
			t.Errorf("node %s not Ready", n.Name)
		}
		facts, err := catalog.FactsFromNode(n)
		if err != nil {
			t.Errorf("node %s: %v", n.Name, err)
			continue
		}
		if facts.CapacityType == catalog.CapacitySpot {
			spot++
		}
		regions[facts.Region] = true
		if n.Labels[devcluster.LabelEKSNodegroup] == devcluster.SystemNodegroup {
			if facts.AcceleratorModel != "" || facts.AcceleratorCount != 0 {
				t.Errorf("system node %s: catalog reads accelerators %+v", n.Name, facts)
			}
			continue
		}
		dev, err := cat.Device(facts.AcceleratorModel)
		if err != nil {
			t.Errorf("node %s: %v", n.Name, err)
			continue
		}
		q := n.Status.Allocatable[corev1.ResourceName(dev.Resource)]
		if q.Value() != int64(facts.AcceleratorCount) || q.Value() == 0 {
			t.Errorf("node %s: allocatable %s = %s, catalog facts say %d", n.Name, dev.Resource, q.String(), facts.AcceleratorCount)
		}
		if n.Labels[dev.ProductLabelKey] != dev.ProductLabel {
			t.Errorf("node %s: label %s=%q, want %q", n.Name, dev.ProductLabelKey, n.Labels[dev.ProductLabelKey], dev.ProductLabel)
		}
		if _, err := cat.Price(facts); err != nil {
			t.Errorf("node %s: %v", n.Name, err)
		}
		resources[dev.Resource] = true
	}
	for _, r := range []string{catalog.ResourceNVIDIAGPU, catalog.ResourceAMDGPU, catalog.ResourceGaudi, catalog.ResourceNeuron, catalog.ResourceRebellionsATOM, catalog.ResourceFuriosaRNGD} {
		if !resources[r] {
			t.Errorf("no node offers %s", r)
		}
	}
	if spot == 0 || len(regions) < 3 {
		t.Errorf("want spot nodes and several regions: %d spot, regions %v", spot, regions)
	}
}

func TestGPUDeploymentRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	replicas := int32(4)
	labels := map[string]string{"app": "gpu-trainer"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "gpu-trainer", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "trainer", Image: "example.com/trainer:1",
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("2")}},
				}}},
			},
		},
	}
	if _, err := suite.Client.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Cleanup only: the suite's cluster is torn down after the tests, whatever is left on it.
		_ = suite.Client.AppsV1().Deployments("default").Delete(context.Background(), dep.Name, metav1.DeleteOptions{})
	}()
	for {
		pods, err := suite.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=gpu-trainer"})
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
				node, err := suite.Client.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if q := node.Status.Allocatable[catalog.ResourceNVIDIAGPU]; q.Value() < 2 {
					t.Fatalf("pod %s runs on %s, which has %s nvidia.com/gpu", p.Name, node.Name, q.String())
				}
			}
		}
		if running == int(replicas) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d pods Running after 2 minutes", running, replicas)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func TestDevBadInput(t *testing.T) {
	ctx := context.Background()
	controlPlane := os.Getenv("KCLOUD_BIN_DIR")
	dir := t.TempDir()
	port := strings.TrimPrefix(suite.State.Server, "https://127.0.0.1:")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown profile", []string{"--profile", "mainframe"}, `unknown fleet profile "mainframe"; known profiles: bare, default, gpu1000, openb`},
		{"missing binary", []string{"--bin-dir", dir}, "missing binary etcd in " + dir + ": build the control plane with `make controlplane`"},
		{"port in use", []string{"--apiserver-port", port}, "port " + port + " is in use on 127.0.0.1"},
		{"cluster already running", []string{"--state-dir", suite.StateDir}, "a local cluster is already running from " + suite.StateDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "c")
			args := append([]string{"dev", "up", "--state-dir", state, "--bin-dir", controlPlane}, tc.args...)
			out, err := suite.Kcloud(ctx, args...)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("kcloud %s: err %v, output:\n%s\nwant %q", strings.Join(args, " "), err, out, tc.want)
			}
			// Whatever failed, down cleans up what there is.
			if _, err := os.Stat(state); err == nil {
				if out, err := suite.Kcloud(ctx, "dev", "down", "--state-dir", state); err != nil {
					t.Errorf("down after failed up: %v\n%s", err, out)
				}
			}
		})
	}

	t.Run("stale state directory", func(t *testing.T) {
		state := filepath.Join(t.TempDir(), "c")
		if err := os.MkdirAll(state, 0o700); err != nil {
			t.Fatal(err)
		}
		stale := `{"profile":"default","kubeconfig":"x","processes":[{"name":"etcd","pid":999999999,"log":"x"}],"started":"2026-01-01T00:00:00Z"}`
		if err := os.WriteFile(filepath.Join(state, "state.json"), []byte(stale), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := suite.Kcloud(ctx, "dev", "up", "--state-dir", state, "--bin-dir", controlPlane)
		if err == nil || !strings.Contains(out, "holds a stopped cluster") || !strings.Contains(out, "kcloud dev down --state-dir "+state) {
			t.Errorf("stale state: err %v, output:\n%s", err, out)
		}
		if out, err := suite.Kcloud(ctx, "dev", "down", "--state-dir", state); err != nil {
			t.Errorf("down on stale state: %v\n%s", err, out)
		}
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Errorf("down left %s", state)
		}
	})
}

// TestRunRefusesAClusterItDidNotStart: without the local cluster's marker, kcloud run refuses the
// cluster and changes nothing; with --existing-cluster it applies the examples but the deny-mode
// CostPolicy.
func TestRunRefusesAClusterItDidNotStart(t *testing.T) {
	ctx := context.Background()
	cms := suite.Client.CoreV1().ConfigMaps(devcluster.MarkerNamespace)
	marker, err := cms.Get(ctx, devcluster.MarkerName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the local cluster carries no marker: %v", err)
	}
	if err := cms.Delete(ctx, devcluster.MarkerName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		marker.ResourceVersion = ""
		if _, err := cms.Create(context.Background(), marker, metav1.CreateOptions{}); err != nil {
			t.Errorf("restoring the marker: %v", err)
		}
	})
	dyn, err := dynamic.NewForConfig(suite.Config)
	if err != nil {
		t.Fatal(err)
	}
	// The samples' deny-mode CostPolicy (config/samples/kcloud_v1alpha1_costpolicy.yaml): its
	// resourceVersion, "" while it does not exist, must not move.
	policies := dyn.Resource(schema.GroupVersionResource{Group: "kcloud.io", Version: "v1alpha1", Resource: "costpolicies"})
	version := func() string {
		u, err := policies.Get(ctx, "ml-team-budget", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return u.GetResourceVersion()
	}
	before := version()
	namespaceCount := func() int {
		list, err := suite.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}
	namespaces := namespaceCount()

	out, err := suite.Kcloud(ctx, "run", "--kubeconfig", suite.State.Kubeconfig)
	if err == nil {
		t.Fatalf("kcloud run accepted a cluster without the marker:\n%s", out)
	}
	for _, want := range []string{"was not started by `kcloud dev up`", "--existing-cluster", suite.Config.Host} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, out)
		}
	}
	if got := version(); got != before {
		t.Errorf("the refused run changed CostPolicy ml-team-budget: resourceVersion %q, was %q", got, before)
	}
	if got := namespaceCount(); got != namespaces {
		t.Errorf("the refused run changed the namespaces: %d, were %d", got, namespaces)
	}

	out, err = suite.Kcloud(ctx, "run", "--kubeconfig", suite.State.Kubeconfig, "--existing-cluster")
	if err != nil {
		t.Fatalf("kcloud run --existing-cluster: %v\n%s", err, out)
	}
	for _, want := range []string{`left out CostPolicy ml-team-budget: its enforcement "deny"`, "applied 4 of 5 examples"} {
		if !strings.Contains(out, want) {
			t.Errorf("kcloud run --existing-cluster output lacks %q:\n%s", want, out)
		}
	}
	if got := version(); got != before {
		t.Errorf("kcloud run --existing-cluster changed the deny-mode CostPolicy ml-team-budget: resourceVersion %q, was %q", got, before)
	}
}

// TestRunOnExistingCluster runs the README's run path (`kcloud run`) against the suite's cluster.
func TestRunOnExistingCluster(t *testing.T) {
	out, err := suite.Kcloud(context.Background(), "run", "--kubeconfig", suite.State.Kubeconfig)
	if err != nil {
		t.Fatalf("kcloud run: %v\n%s", err, out)
	}
	for _, want := range []string{"installed CRDs: costpolicies\\.kcloud\\.io, powerpolicies\\.kcloud\\.io, workloadoptimizers\\.kcloud\\.io",
		"applied 5 of 5 examples", "nodes: 22, Ready: 22", `ai-workloads +ml-training-optimizer`, `ml-workloads +bert-training`, `default +llm-serving`} {
		// Columns are as wide as the longest value, which other tests' optimizers may change.
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("kcloud run output lacks %q:\n%s", want, out)
		}
	}
}
