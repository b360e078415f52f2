package catalog

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Keys of a catalog ConfigMap's data. Each value is CSV text: an optional header line (exactly the
// column names below), then one row per line; blank lines and lines starting with '#' are ignored.
// docs/CATALOG.md has a worked example of each.
//
//	prices.csv     instance_type,capacity_type,region,usd_per_hour
//	               The price of an instance type; capacity_type is on-demand or spot (empty = on-demand);
//	               region empty = any region (a row for the node's region wins). It beats the built-in
//	               instance tables, the discounts and the price source, but not the node's price annotation.
//	devices.csv    model,idle_watts,max_watts,price_per_hour_usd[,spot_discount[,resource[,product_label]]]
//	               Changes a known model (any name Device accepts); an empty field keeps the current
//	               value. A new idle/max rescales the device's curve, keeping its shape. A model the
//	               catalog lacks is added when the row names its resource (one the catalog's devices
//	               use, e.g. nvidia.com/gpu; its kind is theirs) and its max_watts; idle_watts empty takes the mean curve shape, price_per_hour_usd empty
//	               leaves its nodes unpriced but by other rules (Economics.Unpriced), spot_discount
//	               empty takes host_spot_discount.
//	               product_label is the value of the vendor's product label (e.g. nvidia.com/gpu.product)
//	               that names the model on a node, beside kcloud.io/accelerator-model=<model>.
//	discounts.csv  provider,instance_family,capacity_type,discount
//	               A negotiated discount, a fraction 0..1 off the list prices (instance tables and the
//	               per-device rule), never off a price the user gave (annotation, prices.csv, price
//	               source). provider is aws, gcp or any; instance_family e.g. p5 or a3, empty = all;
//	               capacity_type on-demand, spot or empty = both. The most specific matching row wins
//	               (family, then provider, then capacity type).
//	onprem.csv     model,hardware_usd_per_hour
//	               The amortised hardware cost of one device of a model: a node without an instance
//	               type of that model is priced as on-premises (see doc.go). Needs energy_usd_per_kwh.
//	carbon.csv     region,g_per_kwh
//	               The carbon intensity of a region (added or replaced), in gCO2/kWh.
//	settings.csv   key,value
//	               default_region, host_usd_per_vcpu_hour, host_usd_per_gib_hour, host_spot_discount,
//	               host_idle_watts_per_vcpu, host_max_watts_per_vcpu, host_idle_watts_per_gib,
//	               host_max_watts_per_gib, green_g_per_kwh, default_g_per_kwh, and for on-premises
//	               nodes energy_usd_per_kwh, pue (at least 1; default 1) and
//	               host_hardware_usd_per_vcpu_hour.
//
// Example:
//
//	data:
//	  prices.csv: |
//	    instance_type,capacity_type,region,usd_per_hour
//	    p4d.24xlarge,on-demand,us-east-1,21.96
//	  carbon.csv: |
//	    region,g_per_kwh
//	    on-prem-seoul,436
const (
	ConfigMapKeyPrices   = "prices.csv"
	ConfigMapKeyDevices  = "devices.csv"
	ConfigMapKeyCarbon   = "carbon.csv"
	ConfigMapKeySettings = "settings.csv"
	ConfigMapKeyDiscount = "discounts.csv"
	ConfigMapKeyOnprem   = "onprem.csv"
)

var configMapColumns = map[string][]string{
	ConfigMapKeyPrices:   {"instance_type", "capacity_type", "region", "usd_per_hour"},
	ConfigMapKeyDevices:  {"model", "idle_watts", "max_watts", "price_per_hour_usd", "spot_discount", "resource", "product_label"},
	ConfigMapKeyCarbon:   {"region", "g_per_kwh"},
	ConfigMapKeySettings: {"key", "value"},
	ConfigMapKeyDiscount: {"provider", "instance_family", "capacity_type", "discount"},
	ConfigMapKeyOnprem:   {"model", "hardware_usd_per_hour"},
}

// minColumns is the number of required columns of each key (the rest are optional).
var minColumns = map[string]int{
	ConfigMapKeyPrices:   4,
	ConfigMapKeyDevices:  4,
	ConfigMapKeyCarbon:   2,
	ConfigMapKeySettings: 2,
	ConfigMapKeyDiscount: 4,
	ConfigMapKeyOnprem:   2,
}

// WithConfigMap returns a copy of c with the overrides of a ConfigMap's data (format above); c is not
// changed. Malformed input returns an error naming the key, the line number and the problem; an
// unknown key is an error too, so that a misspelt key does not go unnoticed.
func (c *Catalog) WithConfigMap(data map[string]string) (*Catalog, error) {
	n := c.clone()
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		cols, ok := configMapColumns[key]
		if !ok {
			known := make([]string, 0, len(configMapColumns))
			for k := range configMapColumns {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("configmap key %q: unknown key; known keys: %s", key, strings.Join(known, ", "))
		}
		rows, err := parseConfigCSV(key, data[key], cols, minColumns[key])
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			var err error
			switch key {
			case ConfigMapKeyPrices:
				err = n.applyPrice(r.fields)
			case ConfigMapKeyDevices:
				err = n.applyDevice(r.fields)
			case ConfigMapKeyCarbon:
				err = n.applyCarbon(r.fields)
			case ConfigMapKeySettings:
				err = n.applySetting(r.fields)
			case ConfigMapKeyDiscount:
				err = n.applyDiscount(r.fields)
			case ConfigMapKeyOnprem:
				err = n.applyOnprem(r.fields)
			}
			if err != nil {
				return nil, fmt.Errorf("configmap key %q line %d: %w", key, r.line, err)
			}
		}
	}
	h := n.host
	if h.IdleWattsPerVCPU > h.MaxWattsPerVCPU || h.IdleWattsPerGiB > h.MaxWattsPerGiB {
		return nil, fmt.Errorf("configmap key %q: host idle watts exceed max watts", ConfigMapKeySettings)
	}
	if len(n.onpremHardware) > 0 && n.onprem.EnergyUSDPerKWh == 0 {
		// Hardware without energy would make on-premises power free, and saving it worth nothing.
		return nil, fmt.Errorf("configmap key %q: on-premises hardware costs need the setting energy_usd_per_kwh in %q", ConfigMapKeyOnprem, ConfigMapKeySettings)
	}
	return n, nil
}

type configRow struct {
	line   int
	fields []string
}

func parseConfigCSV(key, text string, cols []string, minCols int) ([]configRow, error) {
	r := csv.NewReader(strings.NewReader(text))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var rows []configRow
	first := true
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("configmap key %q line %d: %v", key, pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("configmap key %q: %v", key, err)
		}
		line, _ := r.FieldPos(0)
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if first {
			first = false
			if strings.EqualFold(rec[0], cols[0]) {
				for i, h := range rec {
					if i >= len(cols) || !strings.EqualFold(h, cols[i]) {
						return nil, fmt.Errorf("configmap key %q line %d: header %q, want %q", key, line, strings.Join(rec, ","), strings.Join(cols, ","))
					}
				}
				continue
			}
		}
		if len(rec) < minCols || len(rec) > len(cols) {
			return nil, fmt.Errorf("configmap key %q line %d: %d fields, want %d to %d (%s)", key, line, len(rec), minCols, len(cols), strings.Join(cols, ","))
		}
		rows = append(rows, configRow{line: line, fields: rec})
	}
	return rows, nil
}

// maxFigure is the largest figure a ConfigMap may give: far above any price (USD/h), watts, carbon
// intensity, tariff or PUE, and low enough that the catalog's products of a few figures (a curve
// rounded to milliwatts, an on-premises node's watts x PUE x tariff) stay finite.
const maxFigure = 1e9

// number parses a field; empty gives ok=false. Negative, NaN, infinite and values above maxFigure
// are errors.
func number(col, s string) (v float64, ok bool, err error) {
	if s == "" {
		return 0, false, nil
	}
	v, err = strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, fmt.Errorf("%s %q is not a number", col, s)
	}
	if v < 0 {
		return 0, false, fmt.Errorf("%s %q is negative", col, s)
	}
	if v > maxFigure {
		return 0, false, fmt.Errorf("%s %q is too large: at most %g", col, s, maxFigure)
	}
	return v, true, nil
}

func (c *Catalog) applyPrice(f []string) error {
	if f[0] == "" {
		return fmt.Errorf("empty instance_type")
	}
	ct, ok := normalizeCapacity(CapacityType(f[1]))
	if !ok {
		return fmt.Errorf("capacity_type %q: want %s or %s", f[1], CapacityOnDemand, CapacitySpot)
	}
	v, ok, err := number("usd_per_hour", f[3])
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("empty usd_per_hour")
	}
	o := priceOverride{InstanceType: strings.ToLower(f[0]), Capacity: ct, Region: strings.ToLower(f[2]), USDPerHour: v}
	for i := range c.overrides {
		if e := c.overrides[i]; e.InstanceType == o.InstanceType && e.Capacity == o.Capacity && e.Region == o.Region {
			c.overrides[i] = o
			return nil
		}
	}
	c.overrides = append(c.overrides, o)
	return nil
}

func (c *Catalog) applyDevice(f []string) error {
	field := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	resource, productLabel := field(5), field(6)
	canon, ok := c.resolve(f[0])
	if !ok {
		return c.addDevice(f[0], f[1], f[2], f[3], field(4), resource, productLabel)
	}
	d := c.devices[canon]
	if resource != "" && resource != d.Resource {
		return fmt.Errorf("model %s: resource %q, but the catalog's model is exposed as %s (leave resource empty to change a known model)", canon, resource, d.Resource)
	}
	if productLabel != "" {
		if err := c.addName(canon, productLabel); err != nil {
			return fmt.Errorf("product_label: %w", err)
		}
	}
	idle, idleSet, err := number("idle_watts", f[1])
	if err != nil {
		return err
	}
	maxW, maxSet, err := number("max_watts", f[2])
	if err != nil {
		return err
	}
	price, priceSet, err := number("price_per_hour_usd", f[3])
	if err != nil {
		return err
	}
	spot, spotSet := 0.0, false
	if len(f) > 4 {
		if spot, spotSet, err = number("spot_discount", f[4]); err != nil {
			return err
		}
		if spotSet && (spot <= 0 || spot > 1) {
			return fmt.Errorf("spot_discount %q not in (0, 1]", f[4])
		}
	}
	var changed []string
	if idleSet || maxSet {
		if !idleSet {
			idle = d.IdleWatts
		}
		if !maxSet {
			maxW = d.MaxWatts
		}
		if !(idle < maxW) {
			return fmt.Errorf("model %s: idle_watts %g must be below max_watts %g", canon, idle, maxW)
		}
		d.Curve = rescale(d.Curve, idle, maxW)
		d.IdleWatts, d.MaxWatts = idle, maxW
		changed = append(changed, "power")
	}
	if priceSet {
		d.PricePerHourUSD = price
		delete(c.noPrice, canon)
		changed = append(changed, "price")
	}
	if spotSet {
		d.SpotDiscount = spot
		changed = append(changed, "spot discount")
	}
	if len(changed) > 0 {
		d.Source += "; " + strings.Join(changed, ", ") + " overridden by configmap"
	}
	c.devices[canon] = d
	return nil
}

// addDevice adds a model the catalog lacks, from a devices.csv row that names at least its resource
// and its max_watts.
func (c *Catalog) addDevice(name, idleS, maxS, priceS, spotS, resource, productLabel string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return fmt.Errorf("empty model")
	}
	if resource == "" {
		return fmt.Errorf("model %q is not in the catalog: to add it, give its resource (e.g. %s) and max_watts; known models: %s", name, ResourceNVIDIAGPU, strings.Join(c.models, ", "))
	}
	maxW, maxSet, err := number("max_watts", maxS)
	if err != nil {
		return err
	}
	if !maxSet || maxW == 0 {
		return fmt.Errorf("new model %s: max_watts is required", name)
	}
	idle, _, err := number("idle_watts", idleS)
	if err != nil {
		return err
	}
	if idle >= maxW {
		return fmt.Errorf("new model %s: idle_watts %g must be below max_watts %g", name, idle, maxW)
	}
	price, priceSet, err := number("price_per_hour_usd", priceS)
	if err != nil {
		return err
	}
	spot, spotSet, err := number("spot_discount", spotS)
	if err != nil {
		return err
	}
	if spotSet && (spot <= 0 || spot > 1) {
		return fmt.Errorf("spot_discount %q not in (0, 1]", spotS)
	}
	if !spotSet {
		spot = c.host.SpotDiscount
	}
	if r, ok := resourceAliases[resource]; ok {
		resource = r
	}
	// Pods ask for accelerators through the resources the catalog's device plugins advertise, and
	// only those are counted as accelerators (pkg/kube): a new resource name would go unseen.
	models, known := c.resources[resource]
	if !known || len(models) == 0 {
		return fmt.Errorf("new model %s: resource %q is not an accelerator resource the catalog knows; known: %s", name, resource, strings.Join(c.Resources(), ", "))
	}
	d := DeviceSpec{
		Model:           name,
		Kind:            c.devices[models[0]].Kind,
		Resource:        resource,
		ProductLabel:    productLabel,
		Curve:           shapedCurve(idle, maxW, c.shape),
		PricePerHourUSD: price,
		SpotDiscount:    spot,
		Source:          "configmap",
		Assumption:      "added by the catalog ConfigMap; curve between idle and max from the mean Boavizta shape",
	}
	d.IdleWatts, d.MaxWatts = d.Curve[0].Watts, d.Curve[len(d.Curve)-1].Watts
	if err := c.addName(name, name); err != nil {
		return err
	}
	c.devices[name] = d
	if !priceSet {
		if c.noPrice == nil {
			c.noPrice = map[string]bool{}
		}
		c.noPrice[name] = true
	}
	c.models = append(c.models, name)
	sort.Strings(c.models)
	c.resources[resource] = append(c.resources[resource], name)
	sort.Strings(c.resources[resource])
	if productLabel != "" {
		if err := c.addName(name, productLabel); err != nil {
			return fmt.Errorf("product_label: %w", err)
		}
	}
	return nil
}

// addName makes Device and FactsFromNode resolve name to the canonical model.
func (c *Catalog) addName(canon, name string) error {
	a := normalizeName(name)
	if prev, ok := c.aliases[a]; ok && prev != canon {
		return fmt.Errorf("name %q already names model %s", name, prev)
	}
	c.aliases[a] = canon
	return nil
}

// rescale maps a curve onto new idle and max watts, keeping where each point sits between them.
func rescale(curve []CurvePoint, idle, maxW float64) []CurvePoint {
	i0, m0 := curve[0].Watts, curve[len(curve)-1].Watts
	out := make([]CurvePoint, len(curve))
	for i, p := range curve {
		s := (p.Watts - i0) / (m0 - i0)
		out[i] = CurvePoint{Utilization: p.Utilization, Watts: idle + s*(maxW-idle)}
	}
	out[0].Watts, out[len(out)-1].Watts = idle, maxW
	return out
}

func (c *Catalog) applyCarbon(f []string) error {
	if f[0] == "" {
		return fmt.Errorf("empty region")
	}
	v, ok, err := number("g_per_kwh", f[1])
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("empty g_per_kwh")
	}
	c.carbon[strings.ToLower(f[0])] = carbonEntry{Region: f[0], GPerKWh: v, Source: "configmap"}
	return nil
}

func (c *Catalog) applySetting(f []string) error {
	key, val := f[0], f[1]
	if key == "default_region" {
		if val == "" {
			return fmt.Errorf("empty default_region")
		}
		c.defaultRegion = val
		return nil
	}
	v, ok, err := number(key, val)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("empty value for %s", key)
	}
	h := &c.host
	switch key {
	case "host_usd_per_vcpu_hour":
		h.USDPerVCPUHour, h.PriceSource = v, "configmap"
	case "host_usd_per_gib_hour":
		h.USDPerGiBHour, h.PriceSource = v, "configmap"
	case "host_spot_discount":
		if v <= 0 || v > 1 {
			return fmt.Errorf("host_spot_discount %q not in (0, 1]", val)
		}
		h.SpotDiscount, h.SpotDiscountSource = v, "configmap"
	case "host_idle_watts_per_vcpu":
		h.IdleWattsPerVCPU = v
	case "host_max_watts_per_vcpu":
		h.MaxWattsPerVCPU = v
	case "host_idle_watts_per_gib":
		h.IdleWattsPerGiB = v
	case "host_max_watts_per_gib":
		h.MaxWattsPerGiB = v
	case "green_g_per_kwh":
		c.green, c.greenSource = v, "green energy: configmap"
	case "default_g_per_kwh":
		c.fallback, c.fallbackSrc = v, "default: configmap"
	case "energy_usd_per_kwh":
		c.onprem.EnergyUSDPerKWh = v
	case "pue":
		if v < 1 {
			return fmt.Errorf("pue %q: a power usage effectiveness is at least 1", val)
		}
		c.onprem.PUE = v
	case "host_hardware_usd_per_vcpu_hour":
		c.onprem.HostHardwareUSDPerVCPU = v
	default:
		return fmt.Errorf("unknown setting %q; known: default_region, host_usd_per_vcpu_hour, host_usd_per_gib_hour, host_spot_discount, host_idle_watts_per_vcpu, host_max_watts_per_vcpu, host_idle_watts_per_gib, host_max_watts_per_gib, green_g_per_kwh, default_g_per_kwh, energy_usd_per_kwh, pue, host_hardware_usd_per_vcpu_hour", key)
	}
	if strings.HasPrefix(key, "host_") && strings.Contains(key, "watts") {
		h.PowerSource = fmt.Sprintf("configmap: idle %g W/vCPU + %g W/GiB, max %g W/vCPU + %g W/GiB",
			h.IdleWattsPerVCPU, h.IdleWattsPerGiB, h.MaxWattsPerVCPU, h.MaxWattsPerGiB)
	}
	return nil
}
