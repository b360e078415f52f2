package kube

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
)

// NodeEconomics reads a node's catalog facts from its labels and annotations and prices and powers
// them with the catalog.
func NodeEconomics(cat *catalog.Catalog, node *corev1.Node) (catalog.NodeFacts, model.Economics, error) {
	facts, err := catalog.FactsFromNode(node)
	if err != nil {
		return facts, model.Economics{}, fmt.Errorf("node %s: %w", node.Name, err)
	}
	econ, err := cat.Economics(facts)
	if err != nil {
		return facts, model.Economics{}, fmt.Errorf("node %s: %w", node.Name, err)
	}
	return facts, econ, nil
}

// NodeCapacity is the model's view of an empty node: its allocatable CPU and memory and its
// accelerator devices.
func NodeCapacity(node *corev1.Node, facts catalog.NodeFacts) model.Node {
	alloc := node.Status.Allocatable
	return model.NewNode(facts.AcceleratorModel, alloc.Cpu().MilliValue(), alloc.Memory().Value()>>20, facts.AcceleratorCount)
}
