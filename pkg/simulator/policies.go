package simulator

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"kcloud.io/optimizer/pkg/model"
)

// The baselines follow the FGD paper's simulator (Weng et al., USENIX ATC'23): integer scores in
// 0..100, one score plugin per policy, ties broken at random; resource vectors normalised by the
// largest node of that cluster (128 cores, 8 GPUs).
const (
	maxSpecCPU = 128000.0
	maxSpecGPU = 8000.0
)

// PolicyNames lists the known policies in report order.
var PolicyNames = []string{"random", "least-allocated", "most-allocated", "best-fit", "dot-product", "gpu-packing", "gpu-clustering", "fgd", "kcloud"}

// NewPolicy returns the named policy; an unknown name gets an error listing the known ones.
func NewPolicy(name string, w Weights) (Policy, error) {
	switch name {
	case "random":
		return randomPolicy{}, nil
	case "least-allocated":
		return allocatedPolicy{name: name, least: true}, nil
	case "most-allocated":
		return allocatedPolicy{name: name}, nil
	case "best-fit":
		return bestFitPolicy{}, nil
	case "dot-product":
		return dotProductPolicy{}, nil
	case "gpu-packing":
		return packingPolicy{}, nil
	case "gpu-clustering":
		return clusteringPolicy{}, nil
	case "fgd":
		return &fgdPolicy{}, nil
	case "kcloud":
		return &kcloudPolicy{w: w}, nil
	}
	return nil, fmt.Errorf("unknown policy %q; known policies: %s", name, strings.Join(PolicyNames, ", "))
}

// bestDevice is the "best" GPU selection of the baselines: the device with the least room that fits.
func bestDevice(p *Pod, n *model.Node) model.Allocation {
	if !p.IsShare() {
		return model.Allocation{Device: -1}
	}
	return model.Allocation{Device: model.BestFitDevice(&p.Pod, n)}
}

func freeGPU(n *model.Node) float64 { return float64(n.FreeGPU()) }

// randomPolicy: a uniformly random feasible node and a random fitting device.
type randomPolicy struct{}

func (randomPolicy) Name() string { return "random" }

func (r randomPolicy) Place(s *state, p *Pod) (int, model.Allocation) {
	node, seen := -1, 0
	for i := range s.c.Nodes {
		if model.Fits(&p.Pod, &s.c.Nodes[i]) {
			seen++
			if s.rng.Intn(seen) == 0 {
				node = i
			}
		}
	}
	if node < 0 {
		return -1, model.Allocation{}
	}
	_, a := r.Score(s, node, p)
	return node, a
}

func (randomPolicy) Score(s *state, i int, p *Pod) (float64, model.Allocation) {
	n := &s.c.Nodes[i]
	if !p.IsShare() {
		return 0, model.Allocation{Device: -1}
	}
	dev, seen := -1, 0
	for d := 0; d < n.Devices; d++ {
		if n.DeviceFree[d] >= p.GPUMilli {
			seen++
			if s.rng.Intn(seen) == 0 {
				dev = d
			}
		}
	}
	return 0, model.Allocation{Device: dev}
}

// allocatedPolicy is kube-scheduler's NodeResourcesFit with the LeastAllocated (its default) or
// MostAllocated strategy over CPU, memory and accelerators, equally weighted.
type allocatedPolicy struct {
	name  string
	least bool
}

func (a allocatedPolicy) Name() string { return a.name }
func (a allocatedPolicy) Score(s *state, i int, p *Pod) (float64, model.Allocation) {
	n := &s.c.Nodes[i]
	frac := func(used, capacity float64) float64 {
		if capacity == 0 {
			return 0
		}
		return used / capacity
	}
	u := []float64{
		frac(float64(n.CPUMilli-n.CPUFree+p.CPUMilli), float64(n.CPUMilli)),
		frac(float64(n.MemoryMiB-n.MemoryFree+p.MemoryMiB), float64(n.MemoryMiB)),
	}
	if n.Devices > 0 {
		u = append(u, frac(float64(n.AllocatedGPU+p.GPURequestMilli()), float64(n.Devices*model.MilliPerGPU)))
	}
	sum := 0.0
	for _, x := range u {
		if a.least {
			x = 1 - x
		}
		sum += x
	}
	return math.Trunc(100 * sum / float64(len(u))), bestDevice(p, n)
}

// bestFitPolicy: least CPU and GPU left after placement, equally weighted.
type bestFitPolicy struct{}

func (bestFitPolicy) Name() string { return "best-fit" }
func (bestFitPolicy) Score(s *state, i int, p *Pod) (float64, model.Allocation) {
	n := &s.c.Nodes[i]
	left := 0.5*float64(n.CPUFree-p.CPUMilli)/maxSpecCPU + 0.5*(freeGPU(n)-float64(p.GPURequestMilli()))/maxSpecGPU
	return math.Trunc(100 * (1 - left)), bestDevice(p, n)
}

// dotProductPolicy: the smallest dot product of the node's free (CPU, GPU) and the pod's request.
type dotProductPolicy struct{}

func (dotProductPolicy) Name() string { return "dot-product" }
func (dotProductPolicy) Score(s *state, i int, p *Pod) (float64, model.Allocation) {
	n := &s.c.Nodes[i]
	dot := float64(n.CPUFree)/maxSpecCPU*float64(p.CPUMilli)/maxSpecCPU + freeGPU(n)/maxSpecGPU*float64(p.GPURequestMilli())/maxSpecGPU
	return math.Trunc(100 * (1 - dot/2)), bestDevice(p, n)
}

// packingPolicy (GPU Packing): shared devices first, then partly used nodes, then idle nodes.
type packingPolicy struct{}

func (packingPolicy) Name() string { return "gpu-packing" }
func (packingPolicy) Score(s *state, i int, p *Pod) (float64, model.Allocation) {
	n := &s.c.Nodes[i]
	a := bestDevice(p, n)
	if p.GPUCount == 0 {
		return 0, a
	}
	if n.WholeFreeDevices() == n.Devices {
		return float64(max(33-n.Devices, n.Devices)), a
	}
	free := make([]int64, n.Devices)
	copy(free, n.DeviceFree[:n.Devices])
	slices.Sort(free)
	picked, whole, sum := 0, 0, int64(0)
	for _, f := range free {
		if picked == p.GPUCount {
			break
		}
		if f >= p.GPUMilli {
			picked++
			sum += f * 100 / model.MilliPerGPU
			if f == model.MilliPerGPU {
				whole++
			}
		}
	}
	if whole > 0 {
		return float64(max(50-whole, 33)), a
	}
	return float64(max(100-sum/10, 50)), a
}

// clusteringPolicy (GPU Clustering): nodes running only pods of the same GPU request kind first.
type clusteringPolicy struct{}

func (clusteringPolicy) Name() string { return "gpu-clustering" }
func (clusteringPolicy) Score(s *state, i int, p *Pod) (float64, model.Allocation) {
	n := &s.c.Nodes[i]
	a := bestDevice(p, n)
	tag := gpuTag(&p.Pod)
	if tag < 0 {
		return 0, a
	}
	base := 25 * (8000 - n.FreeGPU()) / 8000
	same, others := s.tags[i][tag] > 0, false
	for t, c := range s.tags[i] {
		if t != tag && c > 0 {
			others = true
		}
	}
	switch {
	case same && !others:
		return float64(base + 75), a
	case same:
		return float64(base + 50), a
	case !others:
		return float64(base + 25), a
	default:
		return float64(base), a
	}
}

// fgdPolicy (Fragmentation Gradient Descent): the placement that least increases the node's
// fragmentation against the target workload; for a share, the device that does so.
type fgdPolicy struct{ cache classCache[scored] }

type scored struct {
	score float64
	alloc model.Allocation
}

func (*fgdPolicy) Name() string { return "fgd" }
func (f *fgdPolicy) Score(s *state, i int, p *Pod) (float64, model.Allocation) {
	if v, ok := f.cache.get(s, i, p); ok {
		return v.score, v.alloc
	}
	decrease, a := bestFragDelta(s, i, p)
	sc := model.FragmentationScore(-decrease)
	f.cache.put(s, i, p, scored{sc, a})
	return sc, a
}

// bestFragDelta returns the largest decrease of node i's fragmentation over the devices p could
// take, and that allocation.
func bestFragDelta(s *state, i int, p *Pod) (float64, model.Allocation) {
	a, delta := model.PlaceShare(&p.Pod, &s.c.Nodes[i], s.types, s.frag[i])
	return -delta, a
}

// classCache remembers a value per node and pod class until the node changes: a run schedules
// thousands of pods of a few hundred classes, and each placement changes one node.
type classCache[T any] struct {
	entries [][]classEntry[T] // [node][class]
}

type classEntry[T any] struct {
	version uint32
	valid   bool
	value   T
}

func (c *classCache[T]) get(s *state, i int, p *Pod) (T, bool) {
	if i < len(c.entries) && p.Class < len(c.entries[i]) {
		if e := &c.entries[i][p.Class]; e.valid && e.version == s.version[i] {
			return e.value, true
		}
	}
	var zero T
	return zero, false
}

func (c *classCache[T]) put(s *state, i int, p *Pod, v T) {
	if len(c.entries) != len(s.c.Nodes) {
		c.entries = make([][]classEntry[T], len(s.c.Nodes))
	}
	if p.Class >= len(c.entries[i]) {
		c.entries[i] = append(c.entries[i], make([]classEntry[T], p.Class+1-len(c.entries[i]))...)
	}
	c.entries[i][p.Class] = classEntry[T]{version: s.version[i], valid: true, value: v}
}
