// Package fleet brings the production-like default fleet up on a fresh local cluster (kcloud dev
// up's control plane and kwok nodes, without our binaries) and checks that every node runs the daemon
// pods a production GPU cluster's node runs, Running and Ready, and that the system pool holds the
// kube-system Deployments.
package fleet

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
)

var controlPlane string // KCLOUD_BIN_DIR

func TestMain(m *testing.M) {
	controlPlane = os.Getenv("KCLOUD_BIN_DIR")
	if controlPlane == "" {
		fmt.Fprintln(os.Stderr, "fleet: KCLOUD_BIN_DIR is not set: run with `make test-e2e` (or `make test`), which builds the control plane from the module graph")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// vendorDaemons are the DaemonSets of each accelerator's vendor; everyNodeDaemons run on all nodes.
var (
	everyNodeDaemons = []string{"cilium", "kube-proxy", "node-exporter"}
	vendorDaemons    = map[string][]string{
		catalog.ResourceNVIDIAGPU:      {"gpu-feature-discovery", "nvidia-dcgm-exporter", "nvidia-device-plugin-daemonset"},
		catalog.ResourceAMDGPU:         {"amd-device-metrics-exporter", "amd-gpu-device-plugin", "amd-gpu-node-labeller"},
		catalog.ResourceGaudi:          {"habanalabs-device-plugin-daemonset", "metric-exporter-ds"},
		catalog.ResourceNeuron:         {"neuron-device-plugin-daemonset", "neuron-monitor"},
		catalog.ResourceRebellionsATOM: {"rbln-device-plugin"},
		catalog.ResourceFuriosaRNGD:    {"furiosa-device-plugin"},
	}
)

func TestDefaultFleetRunsItsDaemons(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	c, stop, err := devcluster.UpTemporary(ctx, devcluster.Options{BinDir: controlPlane, Profile: "default"})
	if err != nil {
		t.Fatalf("local cluster: %v", err)
	}
	t.Cleanup(stop)
	t.Logf("default fleet up with its add-ons in %.1fs", time.Since(start).Seconds())
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Up returned, so every add-on reported ready; the pods themselves must say so too.
	daemonsOn := map[string][]string{}
	deploymentsOn := map[string][]string{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if len(p.OwnerReferences) == 0 {
			t.Errorf("pod %s/%s has no owner: only the add-ons' controllers create pods here", p.Namespace, p.Name)
			continue
		}
		if p.Status.Phase != corev1.PodRunning || !podReady(p) {
			t.Errorf("pod %s/%s on %s is %s, Ready %v", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase, podReady(p))
		}
		name := p.Labels[devcluster.LabelDaemon]
		switch p.OwnerReferences[0].Kind {
		case "DaemonSet":
			daemonsOn[p.Spec.NodeName] = append(daemonsOn[p.Spec.NodeName], name)
		case "ReplicaSet":
			deploymentsOn[p.Spec.NodeName] = append(deploymentsOn[p.Spec.NodeName], name)
		}
	}
	cat := catalog.Default()
	systemNodes := 0
	for i := range nodes.Items {
		n := &nodes.Items[i]
		facts, err := catalog.FactsFromNode(n)
		if err != nil {
			t.Fatalf("node %s: %v", n.Name, err)
		}
		want := append([]string(nil), everyNodeDaemons...)
		if facts.AcceleratorModel != "" {
			dev, err := cat.Device(facts.AcceleratorModel)
			if err != nil {
				t.Fatalf("node %s: %v", n.Name, err)
			}
			want = append(want, vendorDaemons[dev.Resource]...)
		}
		sort.Strings(want)
		got := daemonsOn[n.Name]
		sort.Strings(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("node %s (%s): daemon pods (-want +got):\n%s", n.Name, facts.AcceleratorModel, diff)
		}
		if n.Labels[devcluster.LabelEKSNodegroup] == devcluster.SystemNodegroup {
			systemNodes++
		} else if len(deploymentsOn[n.Name]) > 0 {
			t.Errorf("node %s runs %s outside the system pool", n.Name, strings.Join(deploymentsOn[n.Name], ", "))
		}
	}
	if systemNodes != 2 {
		t.Errorf("%d system nodes, want 2", systemNodes)
	}
	var deployed []string
	for _, names := range deploymentsOn {
		deployed = append(deployed, names...)
	}
	sort.Strings(deployed)
	if diff := cmp.Diff([]string{"coredns", "coredns", "metrics-server"}, deployed); diff != "" {
		t.Errorf("Deployment pods (-want +got):\n%s", diff)
	}
	t.Logf("%d nodes, %d pods (%d of Deployments)", len(nodes.Items), len(pods.Items), len(deployed))
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
