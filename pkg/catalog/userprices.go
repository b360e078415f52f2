package catalog

import (
	"fmt"
	"maps"
	"strings"
)

// NodePrice is one node's hourly price from a price source (an OpenCost poller, a billing export):
// a measured figure, so it beats the catalog's list prices but not what the user wrote for the node
// (its price annotation) or for its instance type (a prices.csv row).
type NodePrice struct {
	USDPerHour float64
	Source     string // Price.Source of the nodes it prices, e.g. "opencost"
}

// WithNodePrices returns a copy of c whose price source layer is prices (node name -> price),
// replacing any layer c had; c is not changed.
func (c *Catalog) WithNodePrices(prices map[string]NodePrice) *Catalog {
	n := c.clone()
	n.nodePrices = maps.Clone(prices)
	return n
}

// PriceSourceKey is the key of the price source ConfigMap (the catalog ConfigMap's name +
// "-price-source") that holds the node prices: node,usd_per_hour,source.
const PriceSourceKey = "node-prices.csv"

var nodePriceColumns = []string{"node", "usd_per_hour", "source"}

// ParseNodePrices reads a price source ConfigMap's data: the key node-prices.csv in the CSV format
// of the catalog ConfigMap (optional header, '#' comments). An empty source is "price-source". Errors
// name the key, the line and the field.
func ParseNodePrices(data map[string]string) (map[string]NodePrice, error) {
	for k := range data {
		if k != PriceSourceKey {
			return nil, fmt.Errorf("configmap key %q: unknown key; known keys: %s", k, PriceSourceKey)
		}
	}
	rows, err := parseConfigCSV(PriceSourceKey, data[PriceSourceKey], nodePriceColumns, 2)
	if err != nil {
		return nil, err
	}
	out := make(map[string]NodePrice, len(rows))
	for _, r := range rows {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("configmap key %q line %d: %s", PriceSourceKey, r.line, fmt.Sprintf(format, args...))
		}
		node := r.fields[0]
		if node == "" {
			return nil, fail("empty node")
		}
		if _, dup := out[node]; dup {
			return nil, fail("node %s: a second row for the same node", node)
		}
		v, ok, err := number("usd_per_hour", r.fields[1])
		if err != nil {
			return nil, fail("%v", err)
		}
		if !ok {
			return nil, fail("empty usd_per_hour")
		}
		src := "price-source"
		if len(r.fields) > 2 && r.fields[2] != "" {
			src = r.fields[2]
		}
		out[node] = NodePrice{USDPerHour: v, Source: src}
	}
	return out, nil
}

// discount is a discounts.csv row: a fraction off the list price of the instances of a provider, an
// instance family and a capacity type (empty = all of them).
type discount struct {
	Provider string // "aws", "gcp" or "" (any)
	Family   string // lower case, e.g. "p5", "a3"; "" = all
	Capacity CapacityType
	Off      float64 // 0..1
}

// specificity orders matching rows: an instance family says more than a provider, which says more
// than a capacity type.
func (d discount) specificity() int {
	s := 0
	if d.Family != "" {
		s += 4
	}
	if d.Provider != "" {
		s += 2
	}
	if d.Capacity != "" {
		s++
	}
	return s
}

func (d discount) String() string {
	provider, capacity := d.Provider, string(d.Capacity)
	if provider == "" {
		provider = "any"
	}
	return fmt.Sprintf("discount %g (%s,%s,%s)", d.Off, provider, d.Family, capacity)
}

func (c *Catalog) applyDiscount(f []string) error {
	d := discount{Family: strings.ToLower(f[1])}
	switch p := strings.ToLower(f[0]); p {
	case "aws", "gcp":
		d.Provider = p
	case "any", "":
	default:
		return fmt.Errorf("provider %q: want aws, gcp or any", f[0])
	}
	if f[2] != "" {
		ct, ok := normalizeCapacity(CapacityType(f[2]))
		if !ok {
			return fmt.Errorf("capacity_type %q: want %s, %s or empty (both)", f[2], CapacityOnDemand, CapacitySpot)
		}
		d.Capacity = ct
	}
	v, ok, err := number("discount", f[3])
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("empty discount")
	}
	if v > 1 {
		return fmt.Errorf("discount %q: want a fraction from 0 to 1 off the list price", f[3])
	}
	d.Off = v
	for _, e := range c.discounts {
		if e.Provider == d.Provider && e.Family == d.Family && e.Capacity == d.Capacity {
			return fmt.Errorf("a second row for %s,%s,%s", f[0], f[1], f[2])
		}
	}
	c.discounts = append(c.discounts, d)
	return nil
}

// instanceFamily is the family of an instance type: the part before the first '.' on AWS (p5 of
// p5.48xlarge), before the first '-' on GCP (a3 of a3-highgpu-8g).
func instanceFamily(instanceType string) string {
	it := strings.ToLower(instanceType)
	if i := strings.IndexAny(it, ".-"); i > 0 {
		return it[:i]
	}
	return it
}

// discounted applies the most specific discounts.csv row that matches a list price. provider is ""
// for a price not read from a provider's table (the per-device rule), which only provider-any rows
// match.
func (c *Catalog) discounted(p Price, provider, instanceType string, ct CapacityType) Price {
	family := ""
	if instanceType != "" {
		family = instanceFamily(instanceType)
	}
	best, found := discount{}, false
	for _, d := range c.discounts {
		if (d.Provider != "" && d.Provider != provider) || (d.Family != "" && d.Family != family) ||
			(d.Capacity != "" && d.Capacity != ct) {
			continue
		}
		if !found || d.specificity() > best.specificity() {
			best, found = d, true
		}
	}
	if !found {
		return p
	}
	return Price{USDPerHour: p.USDPerHour * (1 - best.Off), Source: p.Source + " " + best.String()}
}

// onpremParams price a node without an instance type as the user's own hardware: what it costs per
// hour, amortised, plus the energy it draws at its maximum, times the site's PUE, at its tariff.
type onpremParams struct {
	EnergyUSDPerKWh        float64
	PUE                    float64 // 0: not set, taken as 1
	HostHardwareUSDPerVCPU float64 // USD per vCPU-hour of the host's amortised hardware
}

// enabled reports whether a CPU-only node without an instance type is priced as on-premises.
func (o onpremParams) enabled() bool { return o.EnergyUSDPerKWh > 0 || o.HostHardwareUSDPerVCPU > 0 }

func (o onpremParams) pue() float64 {
	if o.PUE == 0 {
		return 1
	}
	return o.PUE
}

func (c *Catalog) applyOnprem(f []string) error {
	canon, ok := c.resolve(f[0])
	if !ok {
		return fmt.Errorf("unknown accelerator model %q (add it with a devices.csv row first); known models: %s", f[0], strings.Join(c.models, ", "))
	}
	v, ok, err := number("hardware_usd_per_hour", f[1])
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("empty hardware_usd_per_hour")
	}
	if c.onpremHardware == nil {
		c.onpremHardware = map[string]float64{}
	}
	if _, dup := c.onpremHardware[canon]; dup {
		return fmt.Errorf("a second row for model %s", canon)
	}
	c.onpremHardware[canon] = v
	return nil
}

// onpremPrice prices a node without an instance type as on-premises hardware (see doc.go):
//
//	count x hardware_usd_per_hour + vCPUs x host_hardware_usd_per_vcpu_hour
//	+ (count x device max watts + host max watts) / 1000 x pue x energy_usd_per_kwh
//
// ok is false when the node is not priced so: an accelerator model without an onprem.csv row, or a
// CPU-only node while no on-premises setting is set.
func (c *Catalog) onpremPrice(n NodeFacts, canon string) (Price, bool) {
	hwUnit := 0.0
	if n.AcceleratorCount > 0 || canon != "" {
		v, ok := c.onpremHardware[canon]
		if !ok {
			return Price{}, false
		}
		hwUnit = v
	} else if !c.onprem.enabled() {
		return Price{}, false
	}
	deviceWatts := n.DeviceMaxWatts
	if deviceWatts <= 0 && canon != "" {
		deviceWatts = c.devices[canon].MaxWatts
	}
	vcpu := float64(n.CPUMilli) / 1000
	hardware := float64(n.AcceleratorCount)*hwUnit + vcpu*c.onprem.HostHardwareUSDPerVCPU
	watts := float64(n.AcceleratorCount)*deviceWatts + c.HostPower(n).MaxWatts
	energy := watts / 1000 * c.onprem.pue() * c.onprem.EnergyUSDPerKWh
	return Price{
		USDPerHour: hardware + energy,
		Source: fmt.Sprintf("onprem: hardware %.4g + energy %.4g kW x PUE %g x %g USD/kWh",
			hardware, watts/1000, c.onprem.pue(), c.onprem.EnergyUSDPerKWh),
	}, true
}
