package catalog

import (
	"errors"
	"fmt"

	"kcloud.io/optimizer/pkg/model"
)

// Economics is what pkg/model needs to know about a node: its price, host and device power, carbon
// intensity, capacity type and green label. A node the catalog cannot price (UnpricedError) or whose
// accelerators it cannot power is no error: the figure is left out and Economics.Unpriced or
// Unpowered says why, so that the node still runs what no limit on that figure covers.
func (cat *Catalog) Economics(facts NodeFacts) (model.Economics, error) {
	host := cat.HostPower(facts)
	carbon, _ := cat.CarbonIntensity(facts)
	e := model.Economics{
		HostIdleWatts:   host.IdleWatts,
		HostMaxWatts:    host.MaxWatts,
		CarbonIntensity: carbon,
		Spot:            facts.CapacityType == CapacitySpot,
		Green:           facts.Green,
	}
	price, err := cat.Price(facts)
	var unpriced *UnpricedError
	switch {
	case errors.As(err, &unpriced):
		e.Unpriced = unpriced.Reason
	case err != nil:
		return model.Economics{}, err
	default:
		e.PricePerHour = price.USDPerHour
	}
	e.Device, e.Unpowered = cat.devicePower(facts)
	return e, nil
}

// devicePower is the power curve of one of the node's accelerators: from the node's watts
// annotations, else the catalog's model; unpowered says why there is none.
func (cat *Catalog) devicePower(facts NodeFacts) (curve model.PowerCurve, unpowered string) {
	if facts.AcceleratorCount == 0 && facts.AcceleratorModel == "" {
		return nil, ""
	}
	if facts.DeviceMaxWatts > 0 {
		return shapedCurve(facts.DeviceIdleWatts, facts.DeviceMaxWatts, cat.shape), ""
	}
	dev, err := cat.Device(facts.AcceleratorModel)
	if err != nil {
		return nil, fmt.Sprintf("accelerator model %q is not in the catalog and the node has no %s annotation", facts.AcceleratorModel, AnnotationAcceleratorMaxWatts)
	}
	if len(dev.Curve) == 0 {
		return model.PowerCurve{{Utilization: 0, Watts: dev.IdleWatts}, {Utilization: 1, Watts: dev.MaxWatts}}, ""
	}
	return dev.Curve, ""
}
