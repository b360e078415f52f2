package simulator

import (
	"fmt"
	"strings"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/traces"
)

// CatalogEconomics prices and powers trace nodes from the catalog: trace nodes have no instance type,
// so they are priced per accelerator plus host, on demand, in the catalog's default region. A node
// the catalog cannot price or power is an error: a simulation's totals would leave it out unseen.
func CatalogEconomics(cat *catalog.Catalog) EconomicsFunc {
	return func(n traces.Node) (model.Economics, error) {
		facts := catalog.NodeFacts{
			Name:             n.Name,
			AcceleratorModel: n.Model,
			AcceleratorCount: n.GPUs,
			CPUMilli:         n.CPUMilli,
			MemoryMiB:        n.MemoryMiB,
			CapacityType:     catalog.CapacityOnDemand,
		}
		e, err := cat.Economics(facts)
		if err == nil && (e.Unpriced != "" || e.Unpowered != "") {
			err = fmt.Errorf("%s; known models: %s", strings.Join(nonEmpty(e.Unpriced, e.Unpowered), "; "), strings.Join(cat.Models(), ", "))
		}
		return e, err
	}
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
