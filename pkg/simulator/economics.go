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
		return NodeEconomics(cat, facts)
	}
}

// NodeEconomics is the economics of one node from its catalog facts.
func NodeEconomics(cat *catalog.Catalog, facts catalog.NodeFacts) (model.Economics, error) {
	price, err := cat.Price(facts)
	if err != nil {
		return model.Economics{}, err
	}
	host := cat.HostPower(facts)
	carbon, _ := cat.CarbonIntensity(facts)
	e := model.Economics{
		PricePerHour:    price.USDPerHour,
		HostIdleWatts:   host.IdleWatts,
		HostMaxWatts:    host.MaxWatts,
		CarbonIntensity: carbon,
		Spot:            facts.CapacityType == catalog.CapacitySpot,
		Green:           facts.Green,
	}
	if facts.AcceleratorModel != "" {
		dev, err := cat.Device(facts.AcceleratorModel)
		if err != nil {
			return model.Economics{}, err
		}
		e.Device = dev.Curve
		if len(e.Device) == 0 {
			e.Device = model.PowerCurve{{Utilization: 0, Watts: dev.IdleWatts}, {Utilization: 1, Watts: dev.MaxWatts}}
		}
	}
	return e, nil
}
