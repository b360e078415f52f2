package devcluster

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/traces"
)

// KwokNodeAnnotation marks nodes that kwok manages; the local cluster's kwok watches only these.
const KwokNodeAnnotation = "kwok.x-k8s.io/node"

// LabelFleet names the fleet profile a node belongs to.
const LabelFleet = "kcloud.io/dev-fleet"

// NodeGroup is a set of identical simulated nodes.
type NodeGroup struct {
	InstanceType string // empty for on-premises nodes, priced per accelerator by the catalog
	Model        string // catalog accelerator model; empty for CPU-only nodes
	Accelerators int
	CPUs         int64 // used when the catalog does not know the instance type
	MemoryGiB    int64
	Region, Zone string
	Spot         bool
	Green        bool
	Count        int
	// Cloud is where a production-like node runs: CloudAWS or CloudGCP, empty for on-premises. It
	// decides which provider labels the node carries.
	Cloud string
	// System makes the group a CPU-only system node pool, labelled and tainted
	// CriticalAddonsOnly=true:NoSchedule as EKS and AKS system pools are: only the cluster add-ons
	// that tolerate the taint (CoreDNS, metrics-server, the node DaemonSets) run there.
	System bool
}

// Clouds of NodeGroup.Cloud.
const (
	CloudAWS = "aws"
	CloudGCP = "gcp"
)

// Profile is a fleet `kcloud dev up --profile` can start.
type Profile struct {
	// Groups builds the fleet's node groups.
	Groups func() ([]NodeGroup, error)
	// ProductionLike makes the fleet look like a production GPU cluster: nodes labelled by the
	// vendors' feature discovery and the clouds (no kcloud.io/accelerator-model, which no real node
	// has), and the DaemonSets and kube-system Deployments of daemons.go running on them; Up waits
	// until all of them are ready. The zero Profile is bare: plain nodes, nothing running.
	ProductionLike bool
}

// Profiles are the fleets `kcloud dev up --profile` knows. Tests may add their own; a Profile with
// only Groups set is bare.
var Profiles = map[string]Profile{
	"default": {Groups: productionFleet, ProductionLike: true},
	"bare":    {Groups: mixedFleet},
	"openb":   {Groups: openbFleet},
	"gpu1000": {Groups: gpu1000Fleet},
}

// ProfileNames lists the profiles, sorted.
func ProfileNames() []string {
	var names []string
	for n := range Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Node labels of the simulated fleet beyond the catalog's.
const (
	LabelAccelerator = "accelerator"
	LabelNVIDIAClass = "gpu.nvidia.com/class"
)

// productionFleet is the mixed fleet plus a system pool of two CPU-only m5.xlarge nodes in two
// zones (the catalog prices no CPU-only instance, so the group gives their shape: 4 vCPUs, 16 GiB,
// and the catalog prices them by their host).
func productionFleet() ([]NodeGroup, error) {
	groups, err := mixedFleet()
	if err != nil {
		return nil, err
	}
	system := NodeGroup{InstanceType: "m5.xlarge", CPUs: 4, MemoryGiB: 16, Region: "us-east-1", Cloud: CloudAWS, System: true, Count: 1}
	a, b := system, system
	a.Zone, b.Zone = "us-east-1a", "us-east-1b"
	return append(groups, a, b), nil
}

// mixedFleet is a small mixed cloud fleet: 20 nodes over NVIDIA, AMD, Intel, AWS, Rebellions and
// FuriosaAI accelerators, spot and on-demand, in regions of different carbon intensity.
func mixedFleet() ([]NodeGroup, error) {
	return []NodeGroup{
		{InstanceType: "p4d.24xlarge", Model: "A100", Accelerators: 8, Region: "us-east-1", Zone: "us-east-1a", Cloud: CloudAWS, Count: 1},
		{InstanceType: "p4d.24xlarge", Model: "A100", Accelerators: 8, Region: "us-east-1", Zone: "us-east-1b", Cloud: CloudAWS, Spot: true, Count: 1},
		{InstanceType: "p5.48xlarge", Model: "H100", Accelerators: 8, Region: "us-east-1", Zone: "us-east-1a", Cloud: CloudAWS, Count: 1},
		{InstanceType: "p3.2xlarge", Model: "V100", Accelerators: 1, Region: "us-east-1", Zone: "us-east-1c", Cloud: CloudAWS, Spot: true, Count: 2},
		{InstanceType: "g4dn.xlarge", Model: "T4", Accelerators: 1, Region: "us-west-2", Zone: "us-west-2a", Cloud: CloudAWS, Count: 2},
		{InstanceType: "g4dn.xlarge", Model: "T4", Accelerators: 1, Region: "us-west-2", Zone: "us-west-2b", Cloud: CloudAWS, Spot: true, Count: 1},
		{InstanceType: "g5.xlarge", Model: "A10G", Accelerators: 1, Region: "us-west-2", Zone: "us-west-2a", Cloud: CloudAWS, Count: 1},
		// A 4-GPU node that draws little: the only place a 4-GPU pod fits under the product
		// description's 2,000 W cap (a p4d half draws about 2,020 W).
		{InstanceType: "g5.12xlarge", Model: "A10G", Accelerators: 4, Region: "us-west-2", Zone: "us-west-2b", Cloud: CloudAWS, Count: 1},
		{InstanceType: "a2-highgpu-1g", Model: "A100", Accelerators: 1, Region: "us-central1", Zone: "us-central1-a", Cloud: CloudGCP, Count: 1},
		{InstanceType: "a2-highgpu-1g", Model: "A100", Accelerators: 1, Region: "us-central1", Zone: "us-central1-b", Cloud: CloudGCP, Spot: true, Count: 1},
		{InstanceType: "g2-standard-4", Model: "L4", Accelerators: 1, Region: "europe-north1", Zone: "europe-north1-a", Cloud: CloudGCP, Count: 2},
		{InstanceType: "inf2.xlarge", Model: "Inferentia2", Accelerators: 1, Region: "us-east-1", Zone: "us-east-1a", Cloud: CloudAWS, Count: 1},
		{InstanceType: "trn1.2xlarge", Model: "Trainium", Accelerators: 1, Region: "us-east-1", Zone: "us-east-1b", Cloud: CloudAWS, Count: 1},
		{Model: "MI300X", Accelerators: 8, CPUs: 192, MemoryGiB: 2048, Region: "ap-northeast-2", Zone: "ap-northeast-2a", Count: 1},
		{Model: "Gaudi3", Accelerators: 8, CPUs: 160, MemoryGiB: 1024, Region: "ap-northeast-2", Zone: "ap-northeast-2a", Count: 1},
		{Model: "ATOM", Accelerators: 4, CPUs: 64, MemoryGiB: 512, Region: "ap-northeast-2", Zone: "ap-northeast-2b", Green: true, Count: 1},
		{Model: "RNGD", Accelerators: 4, CPUs: 64, MemoryGiB: 512, Region: "ap-northeast-2", Zone: "ap-northeast-2b", Green: true, Count: 1},
	}, nil
}

// openbFleet is the Alibaba openb cluster of the FGD paper: 1,523 nodes (310 without GPUs), priced
// and powered per accelerator by the catalog, all on demand in one region.
func openbFleet() ([]NodeGroup, error) {
	nodes, err := traces.ReadNodes(traces.OpenbAllNodes)
	if err != nil {
		return nil, err
	}
	var groups []NodeGroup
	for _, n := range nodes {
		groups = append(groups, NodeGroup{Model: n.Model, Accelerators: n.GPUs, CPUs: n.CPUMilli / 1000, MemoryGiB: n.MemoryMiB / 1024,
			Region: "cn-hangzhou", Zone: "cn-hangzhou-b", Count: 1})
	}
	return groups, nil
}

// gpu1000Fleet is the first 1,000 GPU nodes of the openb cluster, the scheduler benchmark's fleet.
func gpu1000Fleet() ([]NodeGroup, error) {
	all, err := openbFleet()
	if err != nil {
		return nil, err
	}
	var out []NodeGroup
	for _, g := range all {
		if g.Accelerators > 0 && len(out) < 1000 {
			out = append(out, g)
		}
	}
	return out, nil
}

// Scaled repeats a profile's nodes, in their order, until there are n of them: a fleet of the same
// mix at another size (the scheduler benchmark's production-like fleet at 1,000 and 5,000 nodes).
func Scaled(groups func() ([]NodeGroup, error), n int) func() ([]NodeGroup, error) {
	return func() ([]NodeGroup, error) {
		gs, err := groups()
		if err != nil {
			return nil, err
		}
		var one []NodeGroup
		for _, g := range gs {
			for range g.Count {
				g1 := g
				g1.Count = 1
				one = append(one, g1)
			}
		}
		if len(one) == 0 {
			return nil, fmt.Errorf("scaling a fleet without nodes to %d nodes", n)
		}
		out := make([]NodeGroup, n)
		for i := range out {
			out[i] = one[i%len(one)]
		}
		return out, nil
	}
}

// FleetNodes turns a profile into Node objects with the labels a cloud provider and the vendors'
// device plugins would set, and capacity for the accelerators' extended resources. A production-like
// profile's nodes carry the labels of productionLabels instead of kcloud.io/accelerator-model.
func FleetNodes(profile string, cat *catalog.Catalog) ([]corev1.Node, error) {
	p, ok := Profiles[profile]
	if !ok {
		return nil, fmt.Errorf("unknown fleet profile %q; known profiles: %s", profile, strings.Join(ProfileNames(), ", "))
	}
	groups, err := p.Groups()
	if err != nil {
		return nil, err
	}
	var nodes []corev1.Node
	for gi, g := range groups {
		cpus, mem := g.CPUs, g.MemoryGiB
		if g.InstanceType != "" {
			if v, m, ok := cat.InstanceShape(g.InstanceType); ok {
				cpus, mem = int64(v), int64(m)
			} else if cpus == 0 {
				return nil, fmt.Errorf("fleet %s group %d: instance type %s is not in the catalog and the group gives no CPUs", profile, gi, g.InstanceType)
			}
		}
		var dev catalog.DeviceSpec
		if g.Model != "" {
			if dev, err = cat.Device(g.Model); err != nil {
				return nil, fmt.Errorf("fleet %s group %d: %w", profile, gi, err)
			}
		}
		for i := 0; i < g.Count; i++ {
			name := nodeName(profile, g, len(nodes))
			node := buildNode(name, profile, g, dev, cpus, mem)
			if p.ProductionLike {
				if err := labelLikeProduction(&node, g, dev); err != nil {
					return nil, fmt.Errorf("fleet %s group %d: node %s: %w", profile, gi, name, err)
				}
			}
			nodes = append(nodes, node)
		}
	}
	return nodes, nil
}

func nodeName(profile string, g NodeGroup, index int) string {
	kind := "cpu"
	if g.Model != "" {
		kind = strings.ToLower(g.Model)
	}
	if g.System {
		kind = "system"
	}
	if profile == "openb" || profile == "gpu1000" {
		return fmt.Sprintf("%s-%04d-%s", profile, index, kind)
	}
	cap := "od"
	if g.Spot {
		cap = "spot"
	}
	return fmt.Sprintf("%s-%s-%s-%02d", kind, g.Region, cap, index)
}

func buildNode(name, profile string, g NodeGroup, dev catalog.DeviceSpec, cpus, memGiB int64) corev1.Node {
	capacityType := string(catalog.CapacityOnDemand)
	if g.Spot {
		capacityType = string(catalog.CapacitySpot)
	}
	labels := map[string]string{
		corev1.LabelHostname:          name,
		corev1.LabelOSStable:          "linux",
		corev1.LabelArchStable:        "amd64",
		"type":                        "kwok",
		LabelFleet:                    profile,
		catalog.LabelRegion:           g.Region,
		corev1.LabelTopologyZone:      g.Zone,
		catalog.LabelCapacityType:     capacityType,
		catalog.LabelAcceleratorModel: g.Model,
	}
	if g.InstanceType != "" {
		labels[catalog.LabelInstanceType] = g.InstanceType
	}
	if g.Green {
		labels[catalog.LabelGreenEnergy] = "true"
	}
	if g.Model == "" {
		delete(labels, catalog.LabelAcceleratorModel)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(cpus, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(memGiB<<30, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
	}
	if g.Model != "" && g.Accelerators > 0 {
		if dev.ProductLabelKey != "" && dev.ProductLabel != "" {
			labels[dev.ProductLabelKey] = dev.ProductLabel
		}
		// The labels platform teams put on accelerator nodes and the product description's examples
		// select on (accelerator: nvidia-gpu, gpu.nvidia.com/class: compute).
		if vendor := strings.Fields(dev.Vendor); len(vendor) > 0 {
			labels[LabelAccelerator] = strings.ToLower(vendor[0]) + "-" + string(dev.Kind)
		}
		if dev.Resource == catalog.ResourceNVIDIAGPU {
			labels[LabelNVIDIAClass] = "compute"
		}
		capacity[corev1.ResourceName(dev.Resource)] = *resource.NewQuantity(int64(g.Accelerators), resource.DecimalSI)
	}
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: map[string]string{KwokNodeAnnotation: "fake"}},
		Status:     corev1.NodeStatus{Capacity: capacity, Allocatable: capacity.DeepCopy()},
	}
}
