package devcluster

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"kcloud.io/optimizer/pkg/catalog"
)

func TestFleetNodes(t *testing.T) {
	cat := catalog.Default()
	nodes, err := FleetNodes("default", cat)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 22 {
		t.Errorf("default fleet: %d nodes, want 20 accelerator nodes and 2 of the system pool", len(nodes))
	}
	names := map[string]bool{}
	for i := range nodes {
		n := &nodes[i]
		if names[n.Name] {
			t.Errorf("duplicate node name %s", n.Name)
		}
		names[n.Name] = true
		facts, err := catalog.FactsFromNode(n)
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		system := n.Labels[LabelEKSNodegroup] == SystemNodegroup
		if system != (facts.AcceleratorModel == "" && facts.AcceleratorCount == 0) || facts.Region == "" {
			t.Errorf("%s: catalog reads %+v", n.Name, facts)
		}
		if _, err := cat.Price(facts); err != nil {
			t.Errorf("%s: %v", n.Name, err)
		}
		if n.Annotations[KwokNodeAnnotation] != "fake" || n.Status.Allocatable.Cpu().IsZero() {
			t.Errorf("%s: not a kwok node with capacity: %v %v", n.Name, n.Annotations, n.Status.Allocatable)
		}
	}
	openb, err := FleetNodes("openb", cat)
	if err != nil {
		t.Fatal(err)
	}
	gpus, cpuOnly := int64(0), 0
	for i := range openb {
		q := openb[i].Status.Allocatable[corev1.ResourceName(catalog.ResourceNVIDIAGPU)]
		gpus += q.Value()
		if q.IsZero() {
			cpuOnly++
		}
	}
	if len(openb) != 1523 || gpus != 6212 || cpuOnly != 310 {
		t.Errorf("openb fleet: %d nodes, %d GPUs, %d without GPUs; want 1523, 6212, 310", len(openb), gpus, cpuOnly)
	}
	if _, err := FleetNodes("mainframe", cat); err == nil || !strings.Contains(err.Error(), "known profiles: bare, default, gpu1000, openb") {
		t.Errorf("unknown profile: %v", err)
	}
}

// A scaled fleet is the default fleet's 22 nodes repeated in order: 50 nodes are two whole copies
// and the first 6 again, with unique names and the system pool's share kept.
func TestScaledFleet(t *testing.T) {
	const profile = "test-scaled-50"
	Profiles[profile] = Profile{Groups: Scaled(Profiles["default"].Groups, 50), ProductionLike: true}
	defer delete(Profiles, profile)
	nodes, err := FleetNodes(profile, catalog.Default())
	if err != nil {
		t.Fatal(err)
	}
	base, err := FleetNodes("default", catalog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 50 {
		t.Fatalf("%d nodes, want 50", len(nodes))
	}
	names, system := map[string]bool{}, 0
	for i := range nodes {
		if names[nodes[i].Name] {
			t.Errorf("duplicate node name %s", nodes[i].Name)
		}
		names[nodes[i].Name] = true
		if want := base[i%22].Labels[corev1.LabelInstanceTypeStable]; nodes[i].Labels[corev1.LabelInstanceTypeStable] != want {
			t.Errorf("node %d: instance type %q, want %q", i, nodes[i].Labels[corev1.LabelInstanceTypeStable], want)
		}
		if nodes[i].Labels[LabelEKSNodegroup] == SystemNodegroup {
			system++
		}
	}
	if system != 4 { // two in each whole copy; the last 6 nodes hold none
		t.Errorf("%d system nodes, want 4", system)
	}
	if _, err := Scaled(func() ([]NodeGroup, error) { return nil, nil }, 3)(); err == nil {
		t.Error("scaling an empty fleet: no error")
	}
}
