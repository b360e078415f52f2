package simulator

import (
	"cmp"
	"slices"
)

// CheapestFillCost is a lower bound on the inflate experiment's cost_usd_per_h_mean: to hold x% of
// the cluster's GPUs, pay for the cheapest nodes per GPU first, perfectly packed, fractional nodes
// allowed and CPU ignored; averaged over x = 0..100 like the experiment.
func CheapestFillCost(c *Cluster) float64 {
	type node struct{ perGPU, price, gpus float64 }
	var nodes []node
	total := 0.0
	for i := range c.Nodes {
		if g := float64(c.Nodes[i].Devices); g > 0 {
			nodes = append(nodes, node{c.Econ[i].PricePerHour / g, c.Econ[i].PricePerHour, g})
			total += g
		}
	}
	slices.SortFunc(nodes, func(a, b node) int { return cmp.Compare(a.perGPU, b.perGPU) })
	mean := 0.0
	for x := 0; x <= 100; x++ {
		need, cost := total*float64(x)/100, 0.0
		for _, n := range nodes {
			if need <= 0 {
				break
			}
			cost += min(1, need/n.gpus) * n.price
			need -= n.gpus
		}
		mean += cost / 101
	}
	return mean
}
