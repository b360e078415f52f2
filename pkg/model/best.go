package model

// Placed is a pod where it runs now: the node it is on (by index into the nodes given to
// BestTotals) and what it costs and draws there.
type Placed struct {
	Pod     Pod
	Node    int
	Current Totals
}

// BestTotals is what the pods would cost and draw on the nodes the model finds cheapest (for cost)
// and most frugal (for power), each chosen greedily pod by pod: a pod may move to any node it fits
// (allowed says which nodes a pod may use, in the nodes' state with every other pod in place) or
// stay where it is. Pods that move take room, so later pods see it. Each dimension is minimised on
// its own, as OptimizationScore compares them one by one.
func BestTotals(placed []Placed, nodes []Node, econ []*Economics, allowed func(pod, node int) bool) Totals {
	return Totals{
		CostPerHour: greedyBest(placed, nodes, econ, allowed, func(t Totals) float64 { return t.CostPerHour },
			func(p *Pod, n *Node, e *Economics) float64 { return AttributedCost(p, n, e) }),
		PowerWatts: greedyBest(placed, nodes, econ, allowed, func(t Totals) float64 { return t.PowerWatts },
			func(p *Pod, n *Node, e *Economics) float64 { return AttributedPower(p, n, e) }),
	}
}

func greedyBest(placed []Placed, nodes []Node, econ []*Economics, allowed func(pod, node int) bool,
	current func(Totals) float64, on func(*Pod, *Node, *Economics) float64) float64 {
	taken := map[int]Node{} // nodes that moved pods have filled, copied on first use
	total := 0.0
	for i := range placed {
		pl := &placed[i]
		best, bestNode := current(pl.Current), -1
		for j := range nodes {
			if j == pl.Node || !allowed(i, j) {
				continue
			}
			n := nodes[j]
			if t, ok := taken[j]; ok {
				n = t
			}
			if !Fits(&pl.Pod, &n) {
				continue
			}
			if v := on(&pl.Pod, &n, econ[j]); v < best {
				best, bestNode = v, j
			}
		}
		if bestNode >= 0 {
			n, ok := taken[bestNode]
			if !ok {
				n = nodes[bestNode]
			}
			a := Allocation{Device: BestFitDevice(&pl.Pod, &n)}
			Assign(&pl.Pod, &n, a)
			taken[bestNode] = n
		}
		total += best
	}
	return total
}

// MeanTotals is what the pods would cost and draw on an average node they could run on: for each
// pod, the mean over the nodes it fits and may use (and its own), each pod on its own. It is the
// expected outcome of a placement blind to cost and power, against which savings are counted.
func MeanTotals(placed []Placed, nodes []Node, econ []*Economics, allowed func(pod, node int) bool) Totals {
	var t Totals
	for i := range placed {
		pl := &placed[i]
		sum, count := pl.Current, 1.0
		for j := range nodes {
			if j == pl.Node || !allowed(i, j) || !Fits(&pl.Pod, &nodes[j]) {
				continue
			}
			sum.CostPerHour += AttributedCost(&pl.Pod, &nodes[j], econ[j])
			sum.PowerWatts += AttributedPower(&pl.Pod, &nodes[j], econ[j])
			count++
		}
		t.CostPerHour += sum.CostPerHour / count
		t.PowerWatts += sum.PowerWatts / count
	}
	return t
}
