package simulator

import (
	"slices"

	"kcloud.io/optimizer/pkg/model"
)

// Weights re-exports the model's score weights for callers of NewPolicy.
type Weights = model.Weights

// placer is a policy that needs every candidate before it can score one (normalised scores).
type placer interface {
	Place(s *state, p *Pod) (int, model.Allocation)
}

// kcloudPolicy is the product's own policy: the combined score of pkg/model over marginal cost,
// marginal power, carbon and fragmentation, normalised across the feasible nodes. Ties go to the
// node of lowest model.TieRank under the run's seed, as in kcloud-scheduler; between nodes of one
// rank (alike to the model), to a random one.
type kcloudPolicy struct {
	w      model.Weights
	cache  classCache[candEntry]
	nodes  []int
	cands  []model.Candidate
	allocs []model.Allocation
	scores []float64
	// ranks caches each node's TieRank at the node version rankedAt (0: none yet).
	ranks    []uint64
	rankedAt []uint32
}

type candEntry struct {
	cand  model.Candidate
	alloc model.Allocation
}

func (*kcloudPolicy) Name() string { return "kcloud" }

// Score is unused: Place scores all candidates together.
func (k *kcloudPolicy) Score(s *state, i int, p *Pod) (float64, model.Allocation) {
	c, a := k.candidate(s, i, p)
	return -c.FragDelta, a
}

func (k *kcloudPolicy) candidate(s *state, i int, p *Pod) (model.Candidate, model.Allocation) {
	if e, ok := k.cache.get(s, i, p); ok {
		return e.cand, e.alloc
	}
	decrease, a := bestFragDelta(s, i, p)
	c := model.NewCandidate(&p.Pod, &s.c.Nodes[i], a, -decrease, &s.c.Econ[i])
	k.cache.put(s, i, p, candEntry{cand: c, alloc: a})
	return c, a
}

func (k *kcloudPolicy) Place(s *state, p *Pod) (int, model.Allocation) {
	k.nodes, k.cands, k.allocs = k.nodes[:0], k.cands[:0], k.allocs[:0]
	for i := range s.c.Nodes {
		if !model.Fits(&p.Pod, &s.c.Nodes[i]) {
			continue
		}
		c, a := k.candidate(s, i, p)
		k.nodes = append(k.nodes, i)
		k.cands = append(k.cands, c)
		k.allocs = append(k.allocs, a)
	}
	if len(k.nodes) == 0 {
		return -1, model.Allocation{}
	}
	k.scores = model.CombinedScores(k.cands, model.Preferences{}, k.w, k.scores)
	top := model.ScoreUnits(slices.Max(k.scores))
	best, ties := -1, 0
	var bestRank uint64
	for j, sc := range k.scores {
		if !model.Tied(model.ScoreUnits(sc), top) {
			continue
		}
		switch r := k.rank(s, k.nodes[j]); {
		case best < 0 || r < bestRank:
			best, bestRank, ties = j, r, 1
		case r == bestRank:
			ties++
			if s.rng.Intn(ties) == 0 {
				best = j
			}
		}
	}
	return k.nodes[best], k.allocs[best]
}

// rank is node i's TieRank in its current state.
func (k *kcloudPolicy) rank(s *state, i int) uint64 {
	if len(k.ranks) != len(s.c.Nodes) {
		k.ranks, k.rankedAt = make([]uint64, len(s.c.Nodes)), make([]uint32, len(s.c.Nodes))
	}
	if k.rankedAt[i] != s.version[i] {
		k.ranks[i], k.rankedAt[i] = model.TieRank(s.seed, &s.c.Nodes[i], &s.c.Econ[i]), s.version[i]
	}
	return k.ranks[i]
}
