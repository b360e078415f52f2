// Package simulator replays pod traces over a cluster of nodes through the decisions of pkg/model,
// without an API server: the paper's workload-inflation experiment and a replay of a trace's own
// timeline. Baseline policies from the literature live beside ours so they are measured the same way.
package simulator

import (
	"fmt"
	"slices"

	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/traces"
)

// EconomicsFunc prices and powers one node of a node list.
type EconomicsFunc func(traces.Node) (model.Economics, error)

// DaemonsFunc lists what the DaemonSets running on one node of a node list ask for.
type DaemonsFunc func(traces.Node) []model.Pod

// Cluster is the simulated cluster: node states and their economics, index-aligned.
type Cluster struct {
	Names []string
	Nodes []model.Node
	Econ  []model.Economics
	// GPUCapacity is the cluster's accelerator capacity in milli-GPUs.
	GPUCapacity int64
	// empty is each node with nothing on it but its daemons: what Reset returns it to. Shared,
	// read-only, by the clones of a cluster.
	empty []model.Node
}

// NewCluster builds an empty cluster from a node list.
func NewCluster(nodes []traces.Node, econ EconomicsFunc) (*Cluster, error) {
	c := &Cluster{}
	for _, n := range nodes {
		e, err := econ(n)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		c.Names = append(c.Names, n.Name)
		c.Nodes = append(c.Nodes, model.NewNode(n.Model, n.CPUMilli, n.MemoryMiB, n.GPUs))
		c.Econ = append(c.Econ, e)
		c.GPUCapacity += int64(n.GPUs) * model.MilliPerGPU
	}
	c.empty = slices.Clone(c.Nodes)
	return c, nil
}

// RunDaemons puts on every node the DaemonSet pods it runs, as the node's overhead
// (model.AssignOverhead, the rule the scheduler and the operator count them by): they take CPU and
// memory and leave the node empty. nodes is the list the cluster was built from.
func (c *Cluster) RunDaemons(nodes []traces.Node, daemons DaemonsFunc) error {
	for i, tn := range nodes {
		n := &c.Nodes[i]
		for _, d := range daemons(tn) {
			if !model.Fits(&d, n) {
				return fmt.Errorf("node %s: its DaemonSets ask for more than it has (%d mCPU, %d MiB left)", c.Names[i], n.CPUFree, n.MemoryFree)
			}
			a := model.Allocation{Device: -1}
			if d.IsShare() {
				a.Device = model.BestFitDevice(&d, n)
			}
			model.AssignOverhead(&d, n, a)
		}
	}
	c.empty = slices.Clone(c.Nodes)
	return nil
}

// Reset empties every node but for its daemons.
func (c *Cluster) Reset() { copy(c.Nodes, c.empty) }

// CostPerHour is the hourly cost of the active nodes.
func (c *Cluster) CostPerHour() float64 {
	s := 0.0
	for i := range c.Nodes {
		s += model.NodeCost(&c.Nodes[i], &c.Econ[i])
	}
	return s
}

// PowerWatts is the draw of the active nodes.
func (c *Cluster) PowerWatts() float64 {
	s := 0.0
	for i := range c.Nodes {
		s += model.NodePower(&c.Nodes[i], &c.Econ[i])
	}
	return s
}

// AllocatedGPU is the allocated accelerator capacity in milli-GPUs.
func (c *Cluster) AllocatedGPU() int64 {
	var s int64
	for i := range c.Nodes {
		s += c.Nodes[i].AllocatedGPU
	}
	return s
}
