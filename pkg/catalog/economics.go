package catalog

import "kcloud.io/optimizer/pkg/model"

// Economics is what pkg/model needs to know about a node: its price, host and device power, carbon
// intensity, capacity type and green label.
func (cat *Catalog) Economics(facts NodeFacts) (model.Economics, error) {
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
		Spot:            facts.CapacityType == CapacitySpot,
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
