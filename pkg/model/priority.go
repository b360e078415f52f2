package model

import "cmp"

// Rank is how much a pod matters when pods compete for the same capacity, cap or budget: its
// PriorityClass value first (as Kubernetes orders pods), then its WorkloadOptimizer's
// spec.priority (0 to 100).
type Rank struct {
	Class, Optimizer int32
}

// CompareRank orders ranks from the least important: negative when a matters less than b. The
// scheduling queue hands out the most important first; the rebalancer moves the least important
// first.
func CompareRank(a, b Rank) int {
	if c := cmp.Compare(a.Class, b.Class); c != 0 {
		return c
	}
	return cmp.Compare(a.Optimizer, b.Optimizer)
}

// Rival is another pod under a cap or budget that a workload shares, as that workload's autoscaler
// sees it.
type Rival struct {
	Rank        Rank
	CostPerHour float64
	// Placed: bound to a node, so its cost counts in the policy's current cost; a pending pod's does
	// not yet, though it waits for room under the same cap.
	Placed bool
}

// ScaleDownShares is what priority changes in a scale-down enforced cap shared with rivals, for a
// workload of rank r: yielding is the cost of the placed rivals that matter less (room the workload
// may take: scale-down enforcement shrinks them for it), waiting the cost of the pending rivals that
// matter more (room it must give up: they are refused until it shrinks). Rivals of the same rank
// count as placed, first come first served: neither gives way to the other.
func ScaleDownShares(r Rank, rivals []Rival) (yielding, waiting float64) {
	for _, o := range rivals {
		c := CompareRank(o.Rank, r)
		switch {
		case o.Placed && c < 0:
			yielding += o.CostPerHour
		case !o.Placed && c > 0:
			waiting += o.CostPerHour
		}
	}
	return yielding, waiting
}
