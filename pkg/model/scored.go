package model

// Scoring is how kcloud-scheduler ranks the nodes for a pod: its weights, the target workload's
// typical pods (fragmentation is measured against them) and the pod's preferences.
type Scoring struct {
	Weights Weights
	Types   []PodType
	Prefs   Preferences
	// Offer, when set, is what node j, as given, offers p, with ok false when p does not fit it:
	// a cache of Fits, PlaceShare and NewCandidate over nodes the workload does not touch, shared by
	// the workloads judged on one snapshot. Nil: worked out on each call.
	Offer func(j int, p *Pod) (c Candidate, a Allocation, ok bool)
}

// OfferOf is what a node offers a pod when the pod fits it: the candidate and the allocation the
// scheduler would choose; frag is the node's fragmentation against types.
func OfferOf(p *Pod, n *Node, e *Economics, types []PodType, frag float64) (Candidate, Allocation, bool) {
	if !Fits(p, n) {
		return Candidate{}, Allocation{}, false
	}
	a, delta := PlaceShare(p, n, types, frag)
	return NewCandidate(p, n, a, delta, e), a, true
}

// ScoredPlacement is what a workload's pods would add to the cluster's bill and draw if
// kcloud-scheduler placed them again now: starting from the nodes with the whole workload taken off,
// each pod goes, in turn, to the allowed node with room where the scheduler's combined score (the
// same candidates, normalised over the same feasible nodes) is highest, the first such node on a
// tie (its own node is always among them). It is the operator's "best placement": the
// scheduler's choice is then never reported as improvable by a rule the scheduler does not use.
func ScoredPlacement(placed []Placed, nodes []Node, econ []*Economics, allowed func(pod, node int) bool, sc Scoring) Totals {
	state := takeOffWorkload(placed, nodes)
	frag := make(map[int]float64, len(state))
	at := func(j int) Node {
		if n, ok := state[j]; ok {
			return n
		}
		return nodes[j]
	}
	fragOf := func(j int, n *Node) float64 {
		f, ok := frag[j]
		if !ok {
			f = Fragmentation(n, sc.Types)
			frag[j] = f
		}
		return f
	}
	var total Totals
	var cands []Candidate
	var where []int
	var allocs []Allocation
	var scores []float64
	for i := range placed {
		pl := &placed[i]
		cands, where, allocs = cands[:0], where[:0], allocs[:0]
		for j := range nodes {
			if j != pl.Node && !allowed(i, j) {
				continue
			}
			var c Candidate
			var a Allocation
			var ok bool
			if _, touched := state[j]; !touched && sc.Offer != nil {
				c, a, ok = sc.Offer(j, &pl.Pod)
			} else {
				n := at(j)
				c, a, ok = OfferOf(&pl.Pod, &n, econ[j], sc.Types, fragOf(j, &n))
			}
			if !ok {
				continue
			}
			cands = append(cands, c)
			where, allocs = append(where, j), append(allocs, a)
		}
		if len(cands) == 0 {
			continue // its node is gone from the fleet and nothing else fits: nothing to compare
		}
		scores = CombinedScores(cands, sc.Prefs, sc.Weights, scores)
		best := 0
		for k := range scores {
			if scores[k] > scores[best] {
				best = k
			}
		}
		j, n := where[best], at(where[best])
		total.CostPerHour += cands[best].Marginal.CostPerHour
		total.PowerWatts += cands[best].Marginal.PowerWatts
		Assign(&pl.Pod, &n, allocs[best])
		state[j] = n
		delete(frag, j)
	}
	return total
}

// takeOffWorkload is the nodes the workload runs on with its pods taken off, by index.
func takeOffWorkload(placed []Placed, nodes []Node) map[int]Node {
	freed := map[int]Node{}
	for i := range placed {
		pl := &placed[i]
		if pl.Node < 0 {
			continue
		}
		n, ok := freed[pl.Node]
		if !ok {
			n = nodes[pl.Node]
		}
		takeOff(&pl.Pod, &n, pl.Device)
		freed[pl.Node] = n
	}
	return freed
}
