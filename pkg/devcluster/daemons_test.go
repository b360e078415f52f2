package devcluster

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"

	"kcloud.io/optimizer/pkg/catalog"
)

// DaemonSets every node runs, and those of each accelerator's vendor.
var (
	everyNodeDaemonNames = []string{"cilium", "kube-proxy", "node-exporter"}
	vendorDaemonNames    = map[string][]string{
		catalog.ResourceNVIDIAGPU:      {"gpu-feature-discovery", "nvidia-dcgm-exporter", "nvidia-device-plugin-daemonset"},
		catalog.ResourceAMDGPU:         {"amd-device-metrics-exporter", "amd-gpu-device-plugin", "amd-gpu-node-labeller"},
		catalog.ResourceGaudi:          {"habanalabs-device-plugin-daemonset", "metric-exporter-ds"},
		catalog.ResourceNeuron:         {"neuron-device-plugin-daemonset", "neuron-monitor"},
		catalog.ResourceRebellionsATOM: {"rbln-device-plugin"},
		catalog.ResourceFuriosaRNGD:    {"furiosa-device-plugin"},
	}
)

// nodeResource is the extended resource of the node's accelerators, empty for a CPU-only node.
func nodeResource(t *testing.T, n *corev1.Node) string {
	t.Helper()
	for _, res := range catalog.Default().Resources() {
		if q, ok := n.Status.Allocatable[corev1.ResourceName(res)]; ok && !q.IsZero() {
			return res
		}
	}
	return ""
}

// ExpectedDaemons is what TestDefaultFleetDaemons wants on a node: the every-node DaemonSets and its
// vendor's, sorted.
func expectedDaemons(resource string) []string {
	want := append(append([]string(nil), everyNodeDaemonNames...), vendorDaemonNames[resource]...)
	sort.Strings(want)
	return want
}

func TestDefaultFleetDaemons(t *testing.T) {
	nodes, err := FleetNodes("default", catalog.Default())
	if err != nil {
		t.Fatal(err)
	}
	addons := ClusterAddons()
	if len(addons.DaemonSets) != len(everyNodeDaemonNames)+12 {
		t.Errorf("%d DaemonSets, want the 3 of every node and 12 of the vendors", len(addons.DaemonSets))
	}
	vendors := map[string]bool{}
	for i := range nodes {
		n := &nodes[i]
		res := nodeResource(t, n)
		vendors[res] = true
		var got []string
		for _, ds := range addons.DaemonSets {
			if runsOn(ds.Spec.Template.Spec, n) {
				got = append(got, ds.Name)
			}
		}
		sort.Strings(got)
		if diff := cmp.Diff(expectedDaemons(res), got); diff != "" {
			t.Errorf("node %s (%s): DaemonSets selecting it (-want +got):\n%s", n.Name, res, diff)
		}
	}
	for res := range vendorDaemonNames {
		if !vendors[res] {
			t.Errorf("no node of the default fleet offers %s, so its DaemonSets are not exercised", res)
		}
	}
	for _, ds := range addons.DaemonSets {
		spec := ds.Spec.Template.Spec
		if spec.PriorityClassName == "" || len(spec.Tolerations) == 0 || ds.Namespace == "" || spec.ServiceAccountName == "" {
			t.Errorf("DaemonSet %s/%s: priority class %q, tolerations %v, service account %q", ds.Namespace, ds.Name, spec.PriorityClassName, spec.Tolerations, spec.ServiceAccountName)
		}
		for _, c := range spec.Containers {
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() && ds.Name != "kube-proxy" {
				t.Errorf("DaemonSet %s/%s container %s requests %v", ds.Namespace, ds.Name, c.Name, c.Resources.Requests)
			}
		}
	}
}

func TestSystemPool(t *testing.T) {
	nodes, err := FleetNodes("default", catalog.Default())
	if err != nil {
		t.Fatal(err)
	}
	workload := corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}
	system := 0
	for _, d := range ClusterAddons().Deployments {
		on := 0
		for i := range nodes {
			n := &nodes[i]
			isSystem := n.Labels[LabelEKSNodegroup] == SystemNodegroup
			if runsOn(d.Spec.Template.Spec, n) {
				on++
				if !isSystem {
					t.Errorf("Deployment %s/%s may run on %s, outside the system pool", d.Namespace, d.Name, n.Name)
				}
			}
			if isSystem && runsOn(workload, n) {
				t.Errorf("a workload pod without tolerations may run on system node %s", n.Name)
			}
		}
		if on != 2 {
			t.Errorf("Deployment %s/%s may run on %d nodes, want the 2 of the system pool", d.Namespace, d.Name, on)
		}
		system = on
	}
	if system == 0 {
		t.Error("no Deployments")
	}
}

// TestDefaultFleetLabels checks that every node of the production-like fleet resolves its model
// through the vendors' and clouds' labels alone, as on a real cluster, and carries the labels the
// product description's examples and the tests select on.
func TestDefaultFleetLabels(t *testing.T) {
	cat := catalog.Default()
	groups, err := Profiles["default"].Groups()
	if err != nil {
		t.Fatal(err)
	}
	var models []string
	for _, g := range groups {
		for i := 0; i < g.Count; i++ {
			models = append(models, g.Model)
		}
	}
	nodes, err := FleetNodes("default", cat)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != len(models) {
		t.Fatalf("%d nodes for %d in the groups", len(nodes), len(models))
	}
	for i := range nodes {
		n := &nodes[i]
		if v, ok := n.Labels[catalog.LabelAcceleratorModel]; ok {
			t.Errorf("node %s carries %s=%s, which no real node has", n.Name, catalog.LabelAcceleratorModel, v)
		}
		facts, err := catalog.FactsFromNode(n)
		if err != nil {
			t.Fatalf("node %s: %v", n.Name, err)
		}
		want := ""
		if models[i] != "" {
			dev, err := cat.Device(models[i])
			if err != nil {
				t.Fatal(err)
			}
			want = dev.Model
		}
		if facts.AcceleratorModel != want {
			t.Errorf("node %s: the catalog resolves model %q from its labels, want %q", n.Name, facts.AcceleratorModel, want)
		}
		for _, key := range []string{corev1.LabelTopologyRegion, corev1.LabelTopologyZone, LabelFleet} {
			if n.Labels[key] == "" {
				t.Errorf("node %s has no %s", n.Name, key)
			}
		}
		switch nodeResource(t, n) {
		case catalog.ResourceNVIDIAGPU:
			for _, key := range []string{LabelNVIDIAGPUPresent, catalog.LabelNVIDIAGPUProduct, "nvidia.com/gpu.count", "nvidia.com/gpu.memory",
				"nvidia.com/gpu.family", "nvidia.com/gpu.machine", "nvidia.com/cuda.driver.major", LabelPCINVIDIA, LabelAccelerator, LabelNVIDIAClass} {
				if n.Labels[key] == "" {
					t.Errorf("NVIDIA node %s has no %s", n.Name, key)
				}
			}
			if n.Labels[LabelAccelerator] != "nvidia-gpu" || n.Labels["nvidia.com/gpu.count"] != n.Status.Allocatable.Name(catalog.ResourceNVIDIAGPU, "").String() {
				t.Errorf("NVIDIA node %s: accelerator=%s, gpu.count=%s", n.Name, n.Labels[LabelAccelerator], n.Labels["nvidia.com/gpu.count"])
			}
		case catalog.ResourceAMDGPU:
			if n.Labels[catalog.LabelAMDGPUProductName] == "" || n.Labels["amd.com/gpu.device-id"] == "" || n.Labels[LabelAMDGPU] != "true" {
				t.Errorf("AMD node %s lacks the node labeller's labels: %v", n.Name, n.Labels)
			}
		case catalog.ResourceGaudi:
			if n.Labels[catalog.LabelGaudiDeviceType] == "" || n.Labels[LabelPCIHabana] != "true" {
				t.Errorf("Gaudi node %s lacks Habana's labels: %v", n.Name, n.Labels)
			}
		}
		if n.Labels[catalog.LabelInstanceType] != "" {
			hasPool := n.Labels[LabelKarpenterNodePool] != "" || n.Labels[LabelGKENodePool] != "" || n.Labels[LabelEKSNodegroup] != ""
			if !hasPool {
				t.Errorf("cloud node %s has no node pool label", n.Name)
			}
		}
	}
}

func TestBareProfiles(t *testing.T) {
	cat := catalog.Default()
	for _, name := range []string{"bare", "openb", "gpu1000"} {
		if Profiles[name].ProductionLike {
			t.Errorf("profile %s runs add-ons; it should be bare", name)
		}
	}
	if !Profiles["default"].ProductionLike {
		t.Error("profile default is not production-like")
	}
	bare, err := FleetNodes("bare", cat)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := FleetNodes("default", cat)
	if err != nil {
		t.Fatal(err)
	}
	// Same accelerator nodes as the default fleet, without its system pool, named and labelled as the
	// fleet was before it became production-like.
	if len(bare) != 20 || len(prod) != 22 {
		t.Errorf("bare fleet: %d nodes, default %d; want 20 and 22", len(bare), len(prod))
	}
	for i := range bare {
		n := &bare[i]
		if n.Name != prod[i].Name || len(n.Spec.Taints) != 0 {
			t.Errorf("bare node %d: %s with taints %v; default has %s", i, n.Name, n.Spec.Taints, prod[i].Name)
		}
		if n.Labels[catalog.LabelAcceleratorModel] == "" || n.Labels[LabelNVIDIAGPUPresent] != "" {
			t.Errorf("bare node %s: labels %v", n.Name, n.Labels)
		}
	}
}

// TestAddonsNotReadyNamed: when the add-ons are not ready in time, the error names each DaemonSet and
// Deployment that is not, with its counts.
func TestAddonsNotReadyNamed(t *testing.T) {
	a := ClusterAddons()
	a.DaemonSets, a.Deployments = a.DaemonSets[:2], a.Deployments[:1]
	proxy, cilium, coredns := a.DaemonSets[0].DeepCopy(), a.DaemonSets[1].DeepCopy(), a.Deployments[0].DeepCopy()
	proxy.Generation, proxy.Status = 1, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 22, CurrentNumberScheduled: 22, NumberReady: 22}
	cilium.Generation, cilium.Status = 1, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 22, CurrentNumberScheduled: 21, NumberReady: 20}
	coredns.Generation, coredns.Status = 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1}
	cs := fake.NewClientset(proxy, cilium, coredns)
	c := &Cluster{}
	ready, err := c.waitAddonsReady(context.Background(), cs, a, time.Second)
	want := "cluster add-ons not ready after 1s: DaemonSet kube-system/cilium (21 of 22 pods scheduled, 20 Ready); Deployment kube-system/coredns (1 of 2 replicas available)"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	if ready.DaemonPods != 42 {
		t.Errorf("%d daemon pods Ready, want 42", ready.DaemonPods)
	}
	cilium.Status = proxy.Status
	coredns.Status.AvailableReplicas = 2
	cs = fake.NewClientset(proxy, cilium, coredns)
	if _, err := c.waitAddonsReady(context.Background(), cs, a, time.Second); err != nil {
		t.Errorf("all ready: %v", err)
	}
}
