package simulator

import (
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/traces"
)

// CatalogEconomics prices and powers trace nodes from the catalog: trace nodes have no instance type,
// so they are priced per accelerator plus host, on demand, in the catalog's default region.
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
		return cat.Economics(facts)
	}
}
