package model

import "math"

// Weights of the combined node score. Cost, power and carbon are normalised to 0..1 across the
// candidate nodes of one pod (1 = best candidate); fragmentation is FragmentationScore/100, an
// absolute measure, so that equally good packings tie and the other components decide between them.
// The weighted mean is scaled to 0..100.
type Weights struct {
	Cost          float64 // marginal cost: waking a node costs its price, a running node nothing
	Power         float64 // marginal power: waking a node costs its idle draw, plus the load added
	Carbon        float64 // marginal emissions: marginal power times the node's grid intensity
	Fragmentation float64 // change of the node's GPU fragmentation against the target workload
	// Reserve keeps accelerator nodes for accelerator pods: a pod that asks for no accelerator loses
	// this weight on a node that has accelerators, so CPU work goes to CPU nodes while they have room.
	Reserve float64
	Spot    float64 // spot capacity, when the pod prefers spot
	Green   float64 // green-energy nodes, when the pod prefers green
}

// DefaultWeights let fragmentation decide and cost break near-ties: a fragmentation point (about 40
// milli-GPUs) weighs 98/100 = 0.98 and the whole spread of marginal cost 2, so the cheapest
// candidate wins over the dearest when it packs up to 2 points worse (1.96 < 2), and fragmentation
// decides from 3 points on: a running node is kept over waking one unless waking packs the pod 3
// points better (TestDefaultWeightsCostAgainstFragmentation). Power and carbon weigh 0 by default: waking fewer nodes already saves
// both, and steering by load power sends tied pods to low-power models, which cost 3.5 points of GPU
// allocation in the simulator's inflate experiment on the openb default trace (docs/designs/scoring.md).
var DefaultWeights = Weights{Cost: 2, Power: 0, Carbon: 0, Fragmentation: 98, Reserve: 5, Spot: 5, Green: 5}

// Preferences are the soft wishes of the pod's workload.
type Preferences struct {
	Spot  bool
	Green bool
}

// Candidate is what one feasible node offers a pod.
type Candidate struct {
	Marginal  Marginal
	FragDelta float64 // fragmentation after minus before, in milli-GPUs (negative: less fragmented)
	Spot      bool
	Green     bool
	// AcceleratorNodeForCPUPod: the pod asks for no accelerator and the node has some.
	AcceleratorNodeForCPUPod bool
	// Unpriced and Unpowered: the node has no price, or no power figure for its accelerators
	// (Economics.Unpriced, Unpowered); Costs gives those criteria as unknown.
	Unpriced, Unpowered bool
}

// Scorer normalises candidates against the others of the same pod: Observe every candidate first,
// then Score any of them.
type Scorer struct {
	pref   Preferences
	w      Weights
	lo, hi [3]float64
}

// NewScorer returns a Scorer that has observed no candidate yet.
func NewScorer(pref Preferences, w Weights) Scorer {
	s := Scorer{pref: pref, w: w}
	for k := range s.lo {
		s.lo[k], s.hi[k] = math.Inf(1), math.Inf(-1)
	}
	return s
}

// NewScorerOver returns a Scorer whose normalisation ranges are lo..hi for each of Costs' criteria:
// for a caller that observes candidates on several goroutines and gathers the ranges itself.
func NewScorerOver(pref Preferences, w Weights, lo, hi [3]float64) Scorer {
	return Scorer{pref: pref, w: w, lo: lo, hi: hi}
}

// Observe widens the normalisation ranges to include a candidate.
func (s *Scorer) Observe(c *Candidate) {
	for k, v := range Costs(c) {
		if !math.IsNaN(v) {
			s.lo[k], s.hi[k] = min(s.lo[k], v), max(s.hi[k], v)
		}
	}
}

// Score is the candidate's combined score, 0..100 (higher is better).
func (s *Scorer) Score(c *Candidate) float64 {
	w := s.w
	weights := [3]float64{w.Cost, w.Power, w.Carbon}
	total := w.Cost + w.Power + w.Carbon + w.Fragmentation + w.Reserve
	if s.pref.Spot {
		total += w.Spot
	}
	if s.pref.Green {
		total += w.Green
	}
	v := 0.0
	for k, x := range Costs(c) {
		if math.IsNaN(x) {
			v += weights[k] * neutral
			continue
		}
		v += weights[k] * lowerIsBetter(x, s.lo[k], s.hi[k])
	}
	v += w.Fragmentation * FragmentationScore(c.FragDelta) / 100
	if !c.AcceleratorNodeForCPUPod {
		v += w.Reserve
	}
	if s.pref.Spot && c.Spot {
		v += w.Spot
	}
	if s.pref.Green && c.Green {
		v += w.Green
	}
	if total <= 0 {
		return 0
	}
	return 100 * v / total
}

// CombinedScores scores every candidate 0..100 (higher is better).
func CombinedScores(cands []Candidate, pref Preferences, w Weights, out []float64) []float64 {
	out = out[:0]
	s := NewScorer(pref, w)
	for i := range cands {
		s.Observe(&cands[i])
	}
	for i := range cands {
		out = append(out, s.Score(&cands[i]))
	}
	return out
}

// Costs are the criteria a Scorer normalises across the candidates of one pod: marginal cost, power
// and carbon. A criterion the node cannot give (cost on a node with no price; power and carbon on one
// whose accelerators have no power figure) is NaN: it widens no range and scores neutral.
func Costs(c *Candidate) [3]float64 {
	out := [3]float64{c.Marginal.CostPerHour, c.Marginal.PowerWatts, c.Marginal.CarbonPerHour}
	if c.Unpriced {
		out[0] = math.NaN()
	}
	if c.Unpowered {
		out[1], out[2] = math.NaN(), math.NaN()
	}
	return out
}

// neutral is the normalised score of a criterion a node cannot give: halfway between the best and
// the worst candidate, so that an unpriced node neither wins nor loses on cost and fragmentation
// and the other terms decide.
const neutral = 0.5

// FragmentationScore maps a change of fragmentation (milli-GPUs, negative when it falls) to 0..100
// as FGD does: 100*sigmoid(-delta/1000), truncated, so 50 means unchanged and one point is about
// 40 milli-GPUs near 50.
func FragmentationScore(delta float64) float64 {
	return math.Trunc(100 / (1 + math.Exp(delta/1000)))
}

// lowerIsBetter maps v in [lo, hi] to 1 (at lo) .. 0 (at hi); 1 when all candidates are equal.
func lowerIsBetter(v, lo, hi float64) float64 {
	if hi-lo < 1e-12 {
		return 1
	}
	return (hi - v) / (hi - lo)
}

// NewCandidate is what a node offers a pod placed on it with allocation a, the placement changing
// the node's fragmentation by fragDelta (model.PlaceShare): the one constructor of Candidate, for
// the scheduler, the operator's best placement and the simulator alike.
func NewCandidate(p *Pod, n *Node, a Allocation, fragDelta float64, e *Economics) Candidate {
	return Candidate{
		Marginal:                 MarginalOf(p, n, a, e),
		FragDelta:                fragDelta,
		Spot:                     e.Spot,
		Green:                    e.Green,
		AcceleratorNodeForCPUPod: p.GPUCount == 0 && n.Devices > 0,
		Unpriced:                 e.Unpriced != "",
		Unpowered:                e.Unpowered != "",
	}
}
