package catalog

import (
	"fmt"
	"math"
	"strings"
)

// UnpricedError says why the catalog has no price for a node: its accelerator model is one the
// catalog does not list and nothing else prices it. Economics turns it into Economics.Unpriced: the
// node still takes pods that no cost limit covers.
type UnpricedError struct {
	Node   string
	Reason string
}

func (e *UnpricedError) Error() string {
	return fmt.Sprintf("node %s has no price: %s", e.Node, e.Reason)
}

// unpricedHint names the ways to give a node a price.
const unpricedHint = ", and no price is set for it: set the node annotation " + AnnotationPricePerHour +
	", a prices.csv row for its instance type or a devices.csv row for its model in the catalog ConfigMap, or a price source"

// normalizeCapacity accepts the spellings of Karpenter ("spot", "on-demand") and EKS ("SPOT",
// "ON_DEMAND"); empty means on-demand.
func normalizeCapacity(ct CapacityType) (CapacityType, bool) {
	switch strings.ToLower(strings.ReplaceAll(string(ct), "_", "-")) {
	case "", "on-demand", "ondemand":
		return CapacityOnDemand, true
	case "spot":
		return CapacitySpot, true
	}
	return "", false
}

// Price returns the node's hourly price. Rules, first match wins (doc.go has them in full): the
// price annotation; a ConfigMap prices.csv row for the instance type; the price source layer
// (WithNodePrices) for the node; the AWS (us-east-1) or GCP (per region) instance table, less the
// ConfigMap's discount; a node without an instance type whose model has an onprem.csv row (or a
// CPU-only one while on-premises settings are set): amortised hardware plus energy; the per-device
// price x count plus the host (x SpotDiscount on spot), less the discount. A CPU-only node without
// a known instance type is priced by its host alone.
func (c *Catalog) Price(n NodeFacts) (Price, error) {
	if n.PriceOverrideUSDPerHour > 0 {
		return Price{USDPerHour: n.PriceOverrideUSDPerHour, Source: "annotation"}, nil
	}
	ct, ok := normalizeCapacity(n.CapacityType)
	if !ok {
		return Price{}, fmt.Errorf("pricing node %s: unknown capacity type %q (want %q or %q)", n.Name, n.CapacityType, CapacityOnDemand, CapacitySpot)
	}
	region := n.Region
	if region == "" {
		region = c.defaultRegion
	}
	if n.InstanceType != "" {
		if p, ok := c.overridePrice(n.InstanceType, ct, region); ok {
			return p, nil
		}
	}
	if np, ok := c.nodePrices[n.Name]; ok && n.Name != "" {
		return Price(np), nil
	}
	if n.InstanceType != "" {
		if p, provider, ok := c.instancePrice(n.InstanceType, ct, n.Region); ok {
			return c.discounted(p, provider, n.InstanceType, ct), nil
		}
	}
	canon := ""
	if n.AcceleratorModel != "" {
		var known bool
		if canon, known = c.resolve(n.AcceleratorModel); !known {
			return Price{}, &UnpricedError{Node: n.Name, Reason: fmt.Sprintf("accelerator model %q is not in the catalog%s", n.AcceleratorModel, unpricedHint)}
		}
	}
	if n.InstanceType == "" && (n.AcceleratorModel != "" || n.AcceleratorCount == 0) {
		if p, ok := c.onpremPrice(n, canon); ok {
			return p, nil
		}
	}
	hostUSD := float64(n.CPUMilli)/1000*c.host.USDPerVCPUHour + float64(n.MemoryMiB)/1024*c.host.USDPerGiBHour
	if n.AcceleratorModel == "" {
		if n.AcceleratorCount > 0 {
			return Price{}, &UnpricedError{Node: n.Name, Reason: fmt.Sprintf("%d accelerators of no model%s", n.AcceleratorCount, unpricedHint)}
		}
		p := Price{USDPerHour: hostUSD, Source: "host"}
		if ct == CapacitySpot {
			p.USDPerHour *= c.host.SpotDiscount
			p.Source = "host:spot"
		}
		return c.discounted(p, "", n.InstanceType, ct), nil
	}
	d := c.devices[canon]
	if c.noPrice[canon] && n.AcceleratorCount > 0 {
		return Price{}, &UnpricedError{Node: n.Name, Reason: fmt.Sprintf("accelerator model %s was added by the catalog ConfigMap without a price%s", canon, unpricedHint)}
	}
	unit, spotDiscount, note := d.PricePerHourUSD, d.SpotDiscount, ""
	if a, ok := c.gcpAttach[canon][strings.ToLower(region)]; ok {
		// A GCP attach price for the node's region beats the catalog's us-central1 default.
		unit, note = a.OnDemand, " (gcp attach price "+region+")"
		if a.Spot > 0 && a.OnDemand > 0 {
			spotDiscount = a.Spot / a.OnDemand
		}
	}
	p := Price{
		USDPerHour: float64(n.AcceleratorCount)*unit + hostUSD,
		Source:     fmt.Sprintf("device:%s x%d%s + host", canon, n.AcceleratorCount, note),
	}
	if ct == CapacitySpot {
		p.USDPerHour *= spotDiscount
		p.Source += ":spot"
	}
	return c.discounted(p, "", n.InstanceType, ct), nil
}

// overridePrice looks up the ConfigMap's prices.csv: a row for the node's region beats a row for any
// region.
func (c *Catalog) overridePrice(instanceType string, ct CapacityType, region string) (Price, bool) {
	it, reg := strings.ToLower(instanceType), strings.ToLower(region)
	var any *priceOverride
	for i := range c.overrides {
		o := &c.overrides[i]
		if o.InstanceType != it || o.Capacity != ct {
			continue
		}
		if o.Region == reg {
			return Price{USDPerHour: o.USDPerHour, Source: "configmap"}, true
		}
		if o.Region == "" && any == nil {
			any = o
		}
	}
	if any != nil {
		return Price{USDPerHour: any.USDPerHour, Source: "configmap"}, true
	}
	return Price{}, false
}

// instancePrice prices a known instance type and names its provider. The AWS table is us-east-1 only and prices every AWS
// region; a GCP node with no region (or one missing from the table) gets the us-central1 price.
func (c *Catalog) instancePrice(instanceType string, ct CapacityType, region string) (Price, string, bool) {
	key := strings.ToLower(instanceType)
	if row, ok := c.aws[key]; ok {
		note := ""
		if region != "" && !strings.EqualFold(region, row.Region) {
			note = " (us-east-1 list price)"
		}
		return c.capacityPrice(row, ct, "instance:aws:"+row.InstanceType, note), "aws", true
	}
	if regions, ok := c.gcp[key]; ok {
		if region == "" {
			region = gcpDefaultRegion
		}
		row, found := regions[strings.ToLower(region)]
		note := ""
		if !found {
			row, found = regions[gcpDefaultRegion]
			note = fmt.Sprintf(" (region %s not in the GCP table)", region)
		}
		if !found {
			return Price{}, "", false
		}
		return c.capacityPrice(row, ct, "instance:gcp:"+row.InstanceType+":"+row.Region, note), "gcp", true
	}
	return Price{}, "", false
}

// capacityPrice returns the on-demand or the spot price of a table row; src names the row and note
// qualifies it. A row without a spot price gets on-demand x the spot discount of its accelerator (of
// the host for rows without a model).
func (c *Catalog) capacityPrice(row instancePrice, ct CapacityType, src, note string) Price {
	if ct != CapacitySpot {
		return Price{USDPerHour: row.OnDemand, Source: src + note}
	}
	if row.Spot > 0 {
		return Price{USDPerHour: row.Spot, Source: src + ":spot" + note}
	}
	discount, by := c.host.SpotDiscount, "host"
	if d, ok := c.devices[row.Model]; ok {
		discount, by = d.SpotDiscount, d.Model
	}
	return Price{USDPerHour: row.OnDemand * discount, Source: fmt.Sprintf("%s:spot%s (no spot price; on-demand x %s spot discount %g)", src, note, by, discount)}
}

// HostPower returns the draw of the node's CPU, memory and board at 0% and 100% CPU, from its vCPUs
// and GiB (see doc.go for the per-vCPU and per-GiB watts and their source).
func (c *Catalog) HostPower(n NodeFacts) HostPower {
	vcpu := float64(n.CPUMilli) / 1000
	gib := float64(n.MemoryMiB) / 1024
	return HostPower{
		IdleWatts: vcpu*c.host.IdleWattsPerVCPU + gib*c.host.IdleWattsPerGiB,
		MaxWatts:  vcpu*c.host.MaxWattsPerVCPU + gib*c.host.MaxWattsPerGiB,
		Source:    c.host.PowerSource,
	}
}

// CarbonIntensity returns the node's grid carbon intensity in gCO2/kWh and where it comes from.
// Rules, first match wins: the carbon annotation; the green-energy label; the region table (empty
// region = the catalog's default region); a stated world-average default.
func (c *Catalog) CarbonIntensity(n NodeFacts) (gPerKWh float64, source string) {
	if n.CarbonOverride > 0 && !math.IsInf(n.CarbonOverride, 0) {
		return n.CarbonOverride, "annotation"
	}
	if n.Green {
		return c.green, c.greenSource
	}
	region := n.Region
	if region == "" {
		region = c.defaultRegion
	}
	if e, ok := c.carbon[strings.ToLower(region)]; ok {
		return e.GPerKWh, e.Source
	}
	return c.fallback, fmt.Sprintf("%s (region %q not in the tables)", c.fallbackSrc, region)
}
