// Package simulator replays pod traces over a cluster of nodes through the decisions of pkg/model,
// without an API server: the paper's workload-inflation experiment and a replay of a trace's own
// timeline. Baseline policies from the literature live beside ours so they are measured the same way.
package simulator

import (
	"fmt"

	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/traces"
)

// EconomicsFunc prices and powers one node of a node list.
type EconomicsFunc func(traces.Node) (model.Economics, error)

// Cluster is the simulated cluster: node states and their economics, index-aligned.
type Cluster struct {
	Names []string
	Nodes []model.Node
	Econ  []model.Economics
	// GPUCapacity is the cluster's accelerator capacity in milli-GPUs.
	GPUCapacity int64
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
	return c, nil
}

// Reset empties every node.
func (c *Cluster) Reset() {
	for i := range c.Nodes {
		n := &c.Nodes[i]
		*n = model.NewNode(n.Model, n.CPUMilli, n.MemoryMiB, n.Devices)
	}
}

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
