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
