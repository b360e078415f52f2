package simulator

import (
	"math/rand"

	"kcloud.io/optimizer/pkg/model"
)

// Pod is a trace pod prepared for scheduling.
type Pod struct {
	model.Pod
	Name  string
	Class int // pods of one class score alike: same CPU, GPU count, GPU share and models
}

// state is one run's cluster state with the running totals the metrics need, kept incrementally so
// an event costs O(1) beyond the policy's own work.
type state struct {
	c       *Cluster
	seed    int64
	rng     *rand.Rand
	types   []model.PodType // target workload for the fragmentation metric and FGD
	version []uint32        // bumped whenever a node changes; policies key caches on it
	tags    [][9]int32      // per node: GPU pods by tag (0: share, k: k whole GPUs) for GPU Clustering
	order   []int           // tie-break rank of each node      // per node: GPU pods by tag (0: share, k: k whole GPUs) for GPU Clustering

	frag      []float64 // per node fragmentation against types
	cost      []float64
	power     []float64
	totalFrag float64
	totalCost float64
	totalPow  float64
	allocated int64
	// carbon rate (gCO2/h) and active node count, for replay's integrals
	carbon      []float64
	totalCarbon float64
	activeNodes int
}

func newState(c *Cluster, types []model.PodType, seed int64) *state {
	c.Reset()
	s := &state{
		c:       c,
		seed:    seed,
		rng:     rand.New(rand.NewSource(seed)),
		types:   types,
		version: make([]uint32, len(c.Nodes)),
		tags:    make([][9]int32, len(c.Nodes)),
		frag:    make([]float64, len(c.Nodes)),
		cost:    make([]float64, len(c.Nodes)),
		power:   make([]float64, len(c.Nodes)),
		carbon:  make([]float64, len(c.Nodes)),
	}
	for i := range c.Nodes {
		s.refresh(i)
	}
	s.order = rand.New(rand.NewSource(seed)).Perm(len(c.Nodes))
	return s
}

// refresh recomputes node i's contribution to the totals.
func (s *state) refresh(i int) {
	n, e := &s.c.Nodes[i], &s.c.Econ[i]
	f, c, p := model.Fragmentation(n, s.types), model.NodeCost(n, e), model.NodePower(n, e)
	s.totalFrag += f - s.frag[i]
	s.totalCost += c - s.cost[i]
	s.totalPow += p - s.power[i]
	s.frag[i], s.cost[i], s.power[i] = f, c, p
	g := p * e.CarbonIntensity / 1000
	s.totalCarbon += g - s.carbon[i]
	s.carbon[i] = g
	s.version[i]++
}

func gpuTag(p *model.Pod) int {
	switch {
	case p.GPUCount == 0:
		return -1
	case p.IsShare():
		return 0
	default:
		return min(p.GPUCount, 8)
	}
}

func (s *state) assign(i int, p *Pod, a model.Allocation) model.Allocation {
	n := &s.c.Nodes[i]
	before := n.AllocatedGPU
	if !n.Active() {
		s.activeNodes++
	}
	a = model.Assign(&p.Pod, n, a)
	s.allocated += n.AllocatedGPU - before
	if t := gpuTag(&p.Pod); t >= 0 {
		s.tags[i][t]++
	}
	s.refresh(i)
	return a
}

// release removes a pod placed with allocation a from node i.
func (s *state) release(i int, p *Pod, a model.Allocation) {
	n := &s.c.Nodes[i]
	before := n.AllocatedGPU
	model.Release(&p.Pod, n, a)
	s.allocated += n.AllocatedGPU - before
	if !n.Active() {
		s.activeNodes--
	}
	if t := gpuTag(&p.Pod); t >= 0 {
		s.tags[i][t]--
	}
	s.refresh(i)
}

// Policy scores a node for a pod; the engine places the pod on a highest-scoring feasible node.
// Ties go to the node that comes first in a seeded random order of the nodes, fixed for the run:
// that is how the FGD paper's simulator behaves (its published allocation ratios are reproduced
// only this way; uniformly random tie-breaking scatters pods and loses 3-5 points of allocation).
type Policy interface {
	Name() string
	// Score returns the node's score and the devices the pod would take; the node fits the pod.
	Score(s *state, node int, p *Pod) (float64, model.Allocation)
}

// place chooses a node for p, or returns -1 when none fits.
func (s *state) place(pol Policy, p *Pod) (int, model.Allocation) {
	if pl, ok := pol.(placer); ok {
		return pl.Place(s, p)
	}
	best := -1
	var bestScore float64
	var bestAlloc model.Allocation
	for i := range s.c.Nodes {
		if !model.Fits(&p.Pod, &s.c.Nodes[i]) {
			continue
		}
		sc, a := pol.Score(s, i, p)
		if best < 0 || sc > bestScore || (sc == bestScore && s.order[i] < s.order[best]) {
			best, bestScore, bestAlloc = i, sc, a
		}
	}
	return best, bestAlloc
}
