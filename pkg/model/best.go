package model

// Placed is one pod of a workload where it runs now: the index of its node among the nodes given
// to WorkloadPlacement (-1 when its node is not among them) and, for a GPU share, its device.
type Placed struct {
	Pod    Pod
	Node   int
	Device int
}

// Placement compares what a workload costs the cluster where it runs with the best placement the
// model finds and with a cost-blind one, all in the marginal terms the scheduler ranks nodes by:
// what the cluster's hourly bill and draw would drop by if the workload left (Current), what they
// would rise by at the best place (Best, never above Current: staying is a placement too) and on
// an average feasible node (Mean). Cost and power are minimised each on its own.
type Placement struct {
	Current, Best, Mean Totals
}

// WorkloadPlacement evaluates a workload's placement on nodes in their current state (the
// workload's own pods included). allowed says which nodes a pod may move to.
func WorkloadPlacement(placed []Placed, nodes []Node, econ []*Economics, allowed func(pod, node int) bool) Placement {
	freed := takeOffWorkload(placed, nodes) // nodes with the workload's pods taken off
	var p Placement
	for j, n := range freed {
		p.Current.CostPerHour += NodeCost(&nodes[j], econ[j]) - NodeCost(&n, econ[j])
		p.Current.PowerWatts += NodePower(&nodes[j], econ[j]) - NodePower(&n, econ[j])
	}
	p.Best.CostPerHour = min(p.Current.CostPerHour, greedyPlace(placed, nodes, freed, econ, allowed, func(m Marginal) float64 { return m.CostPerHour }))
	p.Best.PowerWatts = min(p.Current.PowerWatts, greedyPlace(placed, nodes, freed, econ, allowed, func(m Marginal) float64 { return m.PowerWatts }))
	for i := range placed {
		pl := &placed[i]
		var sum Totals
		count := 0.0
		for j := range nodes {
			if j != pl.Node && !allowed(i, j) {
				continue
			}
			n := nodes[j]
			if f, ok := freed[j]; ok {
				n = f
			}
			if !Fits(&pl.Pod, &n) {
				continue
			}
			m := MarginalOf(&pl.Pod, &n, Allocation{Device: BestFitDevice(&pl.Pod, &n)}, econ[j])
			sum.CostPerHour += m.CostPerHour
			sum.PowerWatts += m.PowerWatts
			count++
		}
		if count > 0 {
			p.Mean.CostPerHour += sum.CostPerHour / count
			p.Mean.PowerWatts += sum.PowerWatts / count
		}
	}
	return p
}

// greedyPlace puts the pods back one by one, each where it adds least to the dimension, starting
// from the nodes with the whole workload taken off; a pod that fits nowhere else goes back home.
func greedyPlace(placed []Placed, nodes []Node, freed map[int]Node, econ []*Economics, allowed func(pod, node int) bool,
	dim func(Marginal) float64) float64 {
	state := make(map[int]Node, len(freed))
	for j, n := range freed {
		state[j] = n
	}
	at := func(j int) Node {
		if n, ok := state[j]; ok {
			return n
		}
		return nodes[j]
	}
	total := 0.0
	for i := range placed {
		pl := &placed[i]
		best, bestNode := 0.0, -1
		for j := range nodes {
			if j != pl.Node && !allowed(i, j) {
				continue
			}
			n := at(j)
			if !Fits(&pl.Pod, &n) {
				continue
			}
			v := dim(MarginalOf(&pl.Pod, &n, Allocation{Device: BestFitDevice(&pl.Pod, &n)}, econ[j]))
			if bestNode < 0 || v < best {
				best, bestNode = v, j
			}
		}
		if bestNode < 0 {
			continue // its node is gone from the fleet and nothing else fits: nothing to compare
		}
		n := at(bestNode)
		Assign(&pl.Pod, &n, Allocation{Device: BestFitDevice(&pl.Pod, &n)})
		state[bestNode] = n
		total += best
	}
	return total
}

// takeOff removes a placed pod from a node's state: a share from its device, whole devices from
// the last fully allocated ones (which devices a whole-GPU pod holds is the device plugin's business).
func takeOff(p *Pod, n *Node, device int) {
	a := Allocation{Device: device}
	if p.GPUCount > 0 && !p.IsShare() {
		for d := n.Devices - 1; d >= 0 && len(a.Whole) < p.GPUCount; d-- {
			if n.DeviceFree[d] == 0 {
				a.Whole = append(a.Whole, d)
			}
		}
	}
	if p.IsShare() && (device < 0 || device >= n.Devices) {
		return
	}
	Release(p, n, a)
}
