package model

import (
	"slices"
	"sort"
)

// Rebalancing: which running pods to move, where, and whether the move is worth its disruption.
//
// The unit of decision is a source node: its movable pods are placed elsewhere, one by one, each
// where it adds least to the cluster's bill (or draw), on the nodes as they are after the moves
// already planned. What the unit saves is what the cluster's hourly bill and draw drop by once all
// of them have moved, in the same marginal terms as WorkloadPlacement and the scheduler: a node
// left without pods stops costing and drawing (it is scaled in); a node woken up starts. Draining
// a node that keeps other pods saves no money, only the difference in load power.
//
// Disruption: an evicted pod does no work while its replacement starts, yet its capacity is paid
// for and powered. A move is charged RestartHours of the pod's attributed cost and power, spread
// over the first hour after the move: the unit's net saving is its hourly saving minus that
// charge. A unit is planned when its net saving reaches a threshold that is set (USD/h or W) and
// the other dimension, when its threshold is set too, does not get worse.

// RebalanceCandidate is a running pod the rebalancer may move.
type RebalanceCandidate struct {
	Placed
	Namespace string
	// Limits are indexes into RebalanceInput.Limits of the limits covering the pod.
	Limits []int
	// Allowed says whether the pod may run on a node (accelerator resource, selectors, affinity,
	// taints, spot rule); nil allows every node.
	Allowed func(node int) bool
	// Rank orders a unit's moves: the least important pod is placed and evicted first, so when a
	// cap on evictions cuts a unit short the more important pods are the ones left running.
	Rank Rank
}

// RebalanceInput is the cluster as the rebalancer sees it.
type RebalanceInput struct {
	// Nodes in their current state: every pod counted, reservations held for earlier moves too.
	Nodes []Node
	Econ  []*Economics
	Pods  []RebalanceCandidate
	// Limits are hard limits shared by the pods they cover, with Used what all covered pods use
	// now (attributed cost or power); a move must keep each within its cap, as the scheduler will
	// check when it places the replacement.
	Limits []Limit
}

// RebalanceConfig are the thresholds and caps of one rebalancing run.
type RebalanceConfig struct {
	// MinSavingUSDPerHour and MinSavingWatts are the net savings a unit must reach; 0 leaves the
	// dimension out of the decision.
	MinSavingUSDPerHour float64
	MinSavingWatts      float64
	// RestartHours is how long an evicted pod does no useful work: the disruption charge.
	RestartHours float64
	// Caps on evictions in one run: per source node, per namespace, in total; 0 or less: no cap.
	MaxPerNode, MaxPerNamespace, MaxTotal int
}

// RebalanceMove moves one candidate (an index into RebalanceInput.Pods) to a node; Device is the
// device a GPU share takes there (-1 for other pods).
type RebalanceMove struct {
	Pod    int
	From   int
	To     int
	Device int
}

// RebalanceUnit drains a source node of its movable pods.
type RebalanceUnit struct {
	From int
	// Moves are the evictions of this run, within the caps; Deferred counts the unit's pods the
	// caps leave for a later run.
	Moves    []RebalanceMove
	Deferred int
	// Saving is what the cluster's bill and draw drop by once every pod of the unit has moved;
	// Disruption the restart charge of those moves; Net the difference.
	Saving, Disruption, Net Totals
}

// RebalancePlan is the units chosen, best first.
type RebalancePlan struct {
	Units []RebalanceUnit
}

// Evictions counts the moves of the plan.
func (p RebalancePlan) Evictions() int {
	n := 0
	for _, u := range p.Units {
		n += len(u.Moves)
	}
	return n
}

// PlanRebalance chooses which source nodes to drain and where their pods go. It repeatedly
// evaluates every remaining unit on the nodes as the moves already chosen leave them and takes the
// one with the largest net saving, so two moves never count on the same free capacity; it stops
// when no unit qualifies or the total cap is reached. Units are all or nothing: a unit with a pod
// that fits nowhere else is not planned.
func PlanRebalance(in RebalanceInput, cfg RebalanceConfig) RebalancePlan {
	state := make([]Node, len(in.Nodes))
	copy(state, in.Nodes)
	used := make([]float64, len(in.Limits))
	for i, l := range in.Limits {
		used[i] = l.Used
	}
	// Units: the candidates on each node, least important first, else in candidate order.
	byNode := map[int][]int{}
	for i := range in.Pods {
		if n := in.Pods[i].Node; n >= 0 && n < len(state) {
			byNode[n] = append(byNode[n], i)
		}
	}
	for _, pods := range byNode {
		slices.SortStableFunc(pods, func(a, b int) int { return CompareRank(in.Pods[a].Rank, in.Pods[b].Rank) })
	}
	sources := make([]int, 0, len(byNode))
	for n := range byNode {
		sources = append(sources, n)
	}
	sort.Ints(sources)

	draining := map[int]bool{}
	perNode, perNamespace, total := map[int]int{}, map[string]int{}, 0
	within := func(pod int, from int) bool {
		ns := in.Pods[pod].Namespace
		return (cfg.MaxTotal <= 0 || total < cfg.MaxTotal) &&
			(cfg.MaxPerNode <= 0 || perNode[from] < cfg.MaxPerNode) &&
			(cfg.MaxPerNamespace <= 0 || perNamespace[ns] < cfg.MaxPerNamespace)
	}
	var plan RebalancePlan
	for {
		var best *RebalanceUnit
		for _, src := range sources {
			if draining[src] {
				continue
			}
			u := evaluateUnit(&in, cfg, state, used, draining, src, byNode[src])
			if u == nil || !qualifies(cfg, *u) {
				continue
			}
			if best == nil || better(cfg, *u, *best) {
				best = u
			}
		}
		if best == nil {
			return plan
		}
		u := *best
		draining[u.From] = true
		// Only the moves within the caps happen now; the rest stay where they are.
		var now []RebalanceMove
		for _, m := range u.Moves {
			if !within(m.Pod, m.From) {
				continue
			}
			now = append(now, m)
			perNode[m.From]++
			perNamespace[in.Pods[m.Pod].Namespace]++
			total++
		}
		if len(now) == 0 {
			continue // capped out: the source is left alone this run
		}
		for _, m := range now {
			c := &in.Pods[m.Pod]
			applyMove(&in, c, state, used, m)
		}
		u.Deferred = len(u.Moves) - len(now)
		u.Moves = now
		plan.Units = append(plan.Units, u)
		if cfg.MaxTotal > 0 && total >= cfg.MaxTotal {
			return plan
		}
	}
}

// evaluateUnit places the candidates of node src elsewhere, greedily, on a scratch copy of the
// nodes they touch, and prices the result; nil when a pod fits nowhere else.
func evaluateUnit(in *RebalanceInput, cfg RebalanceConfig, state []Node, used []float64, draining map[int]bool, src int, pods []int) *RebalanceUnit {
	scratch := map[int]Node{}
	at := func(j int) Node {
		if n, ok := scratch[j]; ok {
			return n
		}
		return state[j]
	}
	delta := map[int]float64{} // limit index -> change of its usage by this unit
	costFirst := cfg.MinSavingUSDPerHour > 0 || cfg.MinSavingWatts <= 0
	u := RebalanceUnit{From: src}
	for _, pi := range pods {
		c := &in.Pods[pi]
		from := at(src)
		srcCost, srcPower := AttributedCost(&c.Pod, &from, in.Econ[src]), AttributedPower(&c.Pod, &from, in.Econ[src])
		bestNode, bestKey := -1, [2]float64{}
		for j := range state {
			if j == src || draining[j] || (c.Allowed != nil && !c.Allowed(j)) {
				continue
			}
			n := at(j)
			if !Fits(&c.Pod, &n) {
				continue
			}
			cost, power := AttributedCost(&c.Pod, &n, in.Econ[j]), AttributedPower(&c.Pod, &n, in.Econ[j])
			if !withinLimits(in, c, used, delta, srcCost, srcPower, cost, power, in.Econ[j]) {
				continue
			}
			m := MarginalOf(&c.Pod, &n, Allocation{Device: BestFitDevice(&c.Pod, &n)}, in.Econ[j])
			key := [2]float64{m.CostPerHour, m.PowerWatts}
			if !costFirst {
				key = [2]float64{m.PowerWatts, m.CostPerHour}
			}
			if bestNode < 0 || key[0] < bestKey[0]-epsilon || (key[0] <= bestKey[0]+epsilon && key[1] < bestKey[1]-epsilon) {
				bestNode, bestKey = j, key
			}
		}
		if bestNode < 0 {
			return nil
		}
		n := at(bestNode)
		dev := BestFitDevice(&c.Pod, &n)
		cost, power := AttributedCost(&c.Pod, &n, in.Econ[bestNode]), AttributedPower(&c.Pod, &n, in.Econ[bestNode])
		for _, li := range c.Limits {
			delta[li] += LimitRate(in.Limits[li].Kind, cost, power) - LimitRate(in.Limits[li].Kind, srcCost, srcPower)
		}
		Assign(&c.Pod, &n, Allocation{Device: dev})
		scratch[bestNode] = n
		takeOff(&c.Pod, &from, c.Device)
		scratch[src] = from
		u.Moves = append(u.Moves, RebalanceMove{Pod: pi, From: src, To: bestNode, Device: moveDevice(&c.Pod, dev)})
		u.Disruption.CostPerHour += cfg.RestartHours * srcCost
		u.Disruption.PowerWatts += cfg.RestartHours * srcPower
	}
	for j, after := range scratch {
		before := state[j]
		u.Saving.CostPerHour += NodeCost(&before, in.Econ[j]) - NodeCost(&after, in.Econ[j])
		u.Saving.PowerWatts += NodePower(&before, in.Econ[j]) - NodePower(&after, in.Econ[j])
	}
	u.Net = Totals{CostPerHour: u.Saving.CostPerHour - u.Disruption.CostPerHour, PowerWatts: u.Saving.PowerWatts - u.Disruption.PowerWatts}
	return &u
}

// withinLimits checks the limits covering a pod as if it moved from a node where it is charged
// srcCost and srcPower to one where it would be charged cost and power, after the other moves
// already planned (used, delta).
func withinLimits(in *RebalanceInput, c *RebalanceCandidate, used []float64, delta map[int]float64, srcCost, srcPower, cost, power float64, e *Economics) bool {
	if len(c.Limits) == 0 {
		return true
	}
	ls := make([]Limit, 0, len(c.Limits))
	for _, li := range c.Limits {
		l := in.Limits[li]
		l.Used = used[li] + delta[li] - LimitRate(l.Kind, srcCost, srcPower)
		ls = append(ls, l)
	}
	return CheckLimits(ls, cost, power, e) == nil
}

// applyMove records a chosen move in the plan's state.
func applyMove(in *RebalanceInput, c *RebalanceCandidate, state []Node, used []float64, m RebalanceMove) {
	from, to := &state[m.From], &state[m.To]
	srcCost, srcPower := AttributedCost(&c.Pod, from, in.Econ[m.From]), AttributedPower(&c.Pod, from, in.Econ[m.From])
	cost, power := AttributedCost(&c.Pod, to, in.Econ[m.To]), AttributedPower(&c.Pod, to, in.Econ[m.To])
	for _, li := range c.Limits {
		k := in.Limits[li].Kind
		used[li] += LimitRate(k, cost, power) - LimitRate(k, srcCost, srcPower)
	}
	Assign(&c.Pod, to, Allocation{Device: m.Device})
	takeOff(&c.Pod, from, c.Device)
}

func moveDevice(p *Pod, dev int) int {
	if p.IsShare() {
		return dev
	}
	return -1
}

// qualifies says whether a unit's net saving reaches a threshold that is set, without the other
// dimension, when its threshold is set, getting worse.
func qualifies(cfg RebalanceConfig, u RebalanceUnit) bool {
	costGoal, powerGoal := cfg.MinSavingUSDPerHour > 0, cfg.MinSavingWatts > 0
	costOK := costGoal && u.Net.CostPerHour >= cfg.MinSavingUSDPerHour-epsilon
	powerOK := powerGoal && u.Net.PowerWatts >= cfg.MinSavingWatts-epsilon
	switch {
	case costOK && powerGoal:
		return u.Saving.PowerWatts >= -epsilon
	case powerOK && costGoal:
		return u.Saving.CostPerHour >= -epsilon
	}
	return costOK || powerOK
}

// better orders units by net saving in the leading dimension (cost unless only power is a goal),
// then the other, then by source node.
func better(cfg RebalanceConfig, a, b RebalanceUnit) bool {
	ka := [2]float64{a.Net.CostPerHour, a.Net.PowerWatts}
	kb := [2]float64{b.Net.CostPerHour, b.Net.PowerWatts}
	if cfg.MinSavingUSDPerHour <= 0 && cfg.MinSavingWatts > 0 {
		ka[0], ka[1], kb[0], kb[1] = ka[1], ka[0], kb[1], kb[0]
	}
	switch {
	case ka[0] > kb[0]+epsilon:
		return true
	case ka[0] < kb[0]-epsilon:
		return false
	case ka[1] > kb[1]+epsilon:
		return true
	case ka[1] < kb[1]-epsilon:
		return false
	}
	return a.From < b.From
}
