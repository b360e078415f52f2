package catalog

import (
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"

	"kcloud.io/optimizer/pkg/model"
)

// CapacityType is how a node is bought.
type CapacityType string

const (
	CapacityOnDemand CapacityType = "on-demand"
	CapacitySpot     CapacityType = "spot"
)

// AcceleratorKind tells GPUs from NPUs.
type AcceleratorKind string

const (
	KindGPU AcceleratorKind = "gpu"
	KindNPU AcceleratorKind = "npu"
)

// DefaultRegion is the region of a node whose Region is empty: the region of the AWS price table, so
// that an unplaced node's price and carbon intensity describe the same place.
const DefaultRegion = "us-east-1"

// NodeFacts is everything the catalog needs to know about a node.
type NodeFacts struct {
	Name             string
	InstanceType     string       // e.g. "p4d.24xlarge", "a2-highgpu-1g"; empty for on-prem/openb nodes
	CapacityType     CapacityType // default on-demand
	Region           string       // e.g. "us-east-1", "us-central1"; empty = catalog default region
	AcceleratorModel string       // canonical model name, see Device(); empty for CPU-only nodes
	AcceleratorCount int
	CPUMilli         int64
	MemoryMiB        int64
	Green            bool // node labelled as running on green energy
	// Overrides from node annotations; zero means "not set".
	PriceOverrideUSDPerHour float64
	CarbonOverride          float64 // gCO2/kWh
	// DeviceMaxWatts and DeviceIdleWatts give one accelerator's draw at full load and at idle (idle
	// 0: from the mean curve shape); they win over the catalog's figure, and power a model it lacks.
	DeviceMaxWatts, DeviceIdleWatts float64
}

// CurvePoint is a device's draw in watts at a utilization between 0 and 1.
type CurvePoint = model.CurvePoint

// DeviceSpec describes one accelerator model.
type DeviceSpec struct {
	Model    string // canonical: "P100","V100","V100M16","V100M32","T4","A10","A10G","L4","A100","A100-80GB","H100","H200","MI300X","Gaudi2","Gaudi3","Inferentia2","Trainium","ATOM","RNGD","G2","G3"
	Kind     AcceleratorKind
	Vendor   string
	Resource string // extended resource name: nvidia.com/gpu, amd.com/gpu, habana.ai/gaudi, aws.amazon.com/neuron, google.com/tpu, rebellions.ai/ATOM, furiosa.ai/rngd
	// ProductLabelKey is the node label the vendor's device plugin / feature discovery sets (for the AWS
	// Neuron chips, which have none, Karpenter's accelerator-name label); ProductLabel is its value for
	// this model, e.g. nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB.
	ProductLabelKey     string
	ProductLabel        string
	IdleWatts, MaxWatts float64
	Curve               model.PowerCurve // sorted, from 0 to 1; at least idle and max
	PricePerHourUSD     float64          // on-demand price of one device (attach price or instance price / count), used when a node has no known instance type
	SpotDiscount        float64          // typical spot price / on-demand price for this device, 0..1
	Source              string           // where the power and price figures come from
	Assumption          string           // non-empty when a figure is assumed (G2, G3, anything without public data)
	// Aliases are the other names Device resolves to this model (normalised: lower case, '-' for
	// spaces and underscores).
	Aliases []string
}

// WattsAt returns the device's draw at utilization u (clamped to 0..1), linear between curve points.
func (d DeviceSpec) WattsAt(u float64) float64 {
	if len(d.Curve) == 0 {
		return model.PowerCurve{{Utilization: 0, Watts: d.IdleWatts}, {Utilization: 1, Watts: d.MaxWatts}}.WattsAt(u)
	}
	return d.Curve.WattsAt(u)
}

func (d DeviceSpec) clone() DeviceSpec {
	d.Curve = append(model.PowerCurve(nil), d.Curve...)
	d.Aliases = append([]string(nil), d.Aliases...)
	return d
}

// HostPower is the draw of a node's CPU, memory and board at 0% and 100% CPU.
type HostPower struct {
	IdleWatts, MaxWatts float64
	Source              string
}

// Price is a node's hourly price and the rule that produced it: "instance:aws:p4d.24xlarge",
// "instance:gcp:a2-highgpu-1g:us-central1", "device:A100 x8 + host", "host", "annotation", "configmap".
type Price struct {
	USDPerHour float64
	Source     string
}

// hostParams are the per-vCPU and per-GiB figures used for a node's host.
type hostParams struct {
	USDPerVCPUHour, USDPerGiBHour                float64
	SpotDiscount                                 float64
	IdleWattsPerVCPU, MaxWattsPerVCPU            float64
	IdleWattsPerGiB, MaxWattsPerGiB              float64
	PriceSource, PowerSource, SpotDiscountSource string
}

// Default host figures. Each is overridable through the ConfigMap key settings.csv.
var defaultHost = hostParams{
	// GCP N2 (and A2) on-demand list rates in us-central1. Check against the embedded GCP table:
	// a2-highgpu-1g (12 vCPU, 85 GiB) 3.673385 - 12 x 0.031611 - 85 x 0.004237 = 2.933908, which is
	// GCP's published A100 40GB GPU price.
	USDPerVCPUHour: 0.031611,
	USDPerGiBHour:  0.004237,
	// Spot/on-demand ratio of the host increment between g2-standard-8 and g2-standard-4 (same single L4)
	// in us-central1 (gcp_gpu_instances_pricing_cyclenerd.csv): (0.479872 - 0.397336) /
	// (0.853624271 - 0.706832255) = 0.562.
	SpotDiscount: 0.562,
	// Least-squares fit without intercept of instance_watts - gpu_watts against vcpus and memory_gb over
	// the 24 rows of aws_gpu_instance_power_teads_ccf.csv (Teads / Cloud Carbon Footprint), at idle and at
	// 100% load. It covers CPU, memory and the rest of the board, not datacentre overhead (PUE).
	IdleWattsPerVCPU:   1.171,
	IdleWattsPerGiB:    0.216,
	MaxWattsPerVCPU:    2.984,
	MaxWattsPerGiB:     1.166,
	PriceSource:        "GCP N2/A2 us-central1 list rates: 0.031611 USD per vCPU-hour, 0.004237 USD per GiB-hour",
	PowerSource:        "fit of the Teads/CCF AWS GPU instance table (instance minus GPU watts): idle 1.171 W/vCPU + 0.216 W/GiB, max 2.984 W/vCPU + 1.166 W/GiB",
	SpotDiscountSource: "spot/on-demand ratio of the GCP g2-standard-8 minus g2-standard-4 host increment, us-central1",
}

const (
	// greenGPerKWh is the carbon intensity of a node labelled as running on green energy: the mean of
	// the IPCC AR5 WGIII (2014) Annex III Table A.III.2 lifecycle medians for onshore wind (11 gCO2eq/kWh)
	// and utility-scale solar PV (48 gCO2eq/kWh).
	greenGPerKWh = 29.5
	greenSource  = "green energy: 29.5 g, mean of IPCC AR5 WGIII Annex III lifecycle medians for onshore wind (11) and utility solar PV (48)"
	// fallbackGPerKWh is used for a region in no table: the world average carbon intensity of
	// electricity generation in 2018, IEA Global Energy & CO2 Status Report 2018.
	fallbackGPerKWh = 475.0
	fallbackSource  = "default: 475 g, world average of electricity generation 2018 (IEA Global Energy & CO2 Status Report 2018)"
	// gcpDefaultRegion prices a GCP instance type whose region is not in the GCP table.
	gcpDefaultRegion = "us-central1"
)

type instancePrice struct {
	InstanceType string
	Provider     string // "aws" or "gcp"
	Region       string
	Model        string // canonical accelerator model, "" if not in the catalog
	Count        int
	VCPUs        float64
	MemoryGiB    float64
	OnDemand     float64
	Spot         float64 // 0 = no spot price in the table
	SpotNote     string
}

type attachPrice struct{ OnDemand, Spot float64 }

type carbonEntry struct {
	Region  string // as the source spells it
	GPerKWh float64
	Source  string
}

type priceOverride struct {
	InstanceType string // lower case
	Capacity     CapacityType
	Region       string // lower case; "" = any region
	USDPerHour   float64
}

// Catalog is a read-only set of node facts. Methods are safe for concurrent use.
type Catalog struct {
	devices   map[string]DeviceSpec // canonical model -> spec
	models    []string              // canonical models, sorted
	aliases   map[string]string     // normalised name -> canonical model
	resources map[string][]string   // extended resource -> canonical models, sorted

	aws       map[string]instancePrice            // lower instance type -> row
	gcp       map[string]map[string]instancePrice // lower instance type -> lower region -> row
	gcpAttach map[string]map[string]attachPrice   // canonical model -> lower region -> price

	overrides []priceOverride
	carbon    map[string]carbonEntry // lower region -> entry

	// discounts are the ConfigMap's negotiated discounts off the list prices (discounts.csv).
	discounts []discount
	// nodePrices is the price source layer (WithNodePrices): node name -> price.
	nodePrices map[string]NodePrice
	// onprem prices nodes without an instance type as amortised hardware plus energy (onprem.csv and
	// the energy settings); onpremHardware is canonical model -> USD per device-hour.
	onprem         onpremParams
	onpremHardware map[string]float64
	// noPrice holds the models a devices.csv row added without a price: the per-device rule
	// cannot price them, and the node is Unpriced rather than free.
	noPrice map[string]bool

	defaultRegion string
	host          hostParams
	green         float64 // gCO2/kWh of a node on green energy
	greenSource   string
	fallback      float64 // gCO2/kWh of a region in no table
	fallbackSrc   string
	// shape is the mean normalised Boavizta curve (watts / max at each of boaviztaUtil): the curve of
	// a device known only by its maximum draw.
	shape []float64
}

var (
	defaultOnce    sync.Once
	defaultCatalog *Catalog
)

// Default returns the catalog built from the embedded data. It is parsed once and shared; it panics if
// the embedded data are malformed, which the package tests rule out.
func Default() *Catalog {
	defaultOnce.Do(func() {
		c, err := load()
		if err != nil {
			panic(fmt.Sprintf("catalog: embedded data: %v", err))
		}
		defaultCatalog = c
	})
	return defaultCatalog
}

// Device returns the spec of a model, by canonical name or alias, case-insensitively.
func (c *Catalog) Device(model string) (DeviceSpec, error) {
	if canon, ok := c.resolve(model); ok {
		return c.devices[canon].clone(), nil
	}
	return DeviceSpec{}, fmt.Errorf("unknown accelerator model %q; known models: %s", model, strings.Join(c.models, ", "))
}

// Devices returns every device spec, sorted by model.
func (c *Catalog) Devices() []DeviceSpec {
	out := make([]DeviceSpec, 0, len(c.models))
	for _, m := range c.models {
		out = append(out, c.devices[m].clone())
	}
	return out
}

// Models returns the canonical model names, sorted.
func (c *Catalog) Models() []string { return append([]string(nil), c.models...) }

// DeviceForResource returns the devices exposed under an extended resource name (e.g. all NVIDIA
// models for nvidia.com/gpu), sorted by model. Alternative resource names of the same device plugins
// (rebellions.ai/npu, aws.amazon.com/neurondevice) are accepted.
func (c *Catalog) DeviceForResource(resource string) []DeviceSpec {
	if r, ok := resourceAliases[resource]; ok {
		resource = r
	}
	var out []DeviceSpec
	for _, m := range c.resources[resource] {
		out = append(out, c.devices[m].clone())
	}
	return out
}

// Resources returns the extended resource names of the catalog's devices, sorted.
func (c *Catalog) Resources() []string {
	out := make([]string, 0, len(c.resources))
	for r := range c.resources {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Regions returns every region the catalog has a carbon intensity or a price for, spelled as the
// clouds spell them, sorted.
func (c *Catalog) Regions() []string {
	seen := map[string]string{}
	for k, e := range c.carbon {
		seen[k] = e.Region
	}
	for _, regions := range c.gcp {
		for k, row := range regions {
			if _, ok := seen[k]; !ok {
				seen[k] = row.Region
			}
		}
	}
	for _, regions := range c.gcpAttach {
		for k := range regions {
			if _, ok := seen[k]; !ok {
				seen[k] = k
			}
		}
	}
	if _, ok := seen[strings.ToLower(c.defaultRegion)]; !ok {
		seen[strings.ToLower(c.defaultRegion)] = c.defaultRegion
	}
	out := make([]string, 0, len(seen))
	for _, r := range seen {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// DefaultRegion returns the region used for a node with an empty Region.
func (c *Catalog) DefaultRegion() string { return c.defaultRegion }

// InstanceAccelerator returns the accelerator model and count of a known instance type (AWS or GCP
// table). ok is false for an unknown type or one whose accelerator is not in the catalog.
func (c *Catalog) InstanceAccelerator(instanceType string) (model string, count int, ok bool) {
	key := strings.ToLower(instanceType)
	if row, found := c.aws[key]; found && row.Model != "" {
		return row.Model, row.Count, true
	}
	if regions, found := c.gcp[key]; found {
		for _, row := range regions {
			if row.Model != "" {
				return row.Model, row.Count, true
			}
			break
		}
	}
	return "", 0, false
}

// resourceAliases maps other resource names the same device plugins can advertise to the catalog's.
var resourceAliases = map[string]string{
	"rebellions.ai/npu":           ResourceRebellionsATOM,
	"aws.amazon.com/neurondevice": ResourceNeuron,
}

// normalizeName lower-cases a model name and writes spaces and underscores as '-'. It also drops the
// suffixes NVIDIA feature discovery appends for time-slicing ("-SHARED") and MIG ("-MIG-1g.5gb").
func normalizeName(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.NewReplacer(" ", "-", "_", "-").Replace(s)
	s = strings.TrimSuffix(s, "-shared")
	if i := strings.Index(s, "-mig-"); i > 0 {
		s = s[:i]
	}
	return s
}

// vendorPrefixes are stripped, one after another, from a name that does not resolve as it is.
var vendorPrefixes = []string{"nvidia-", "tesla-", "amd-", "instinct-", "intel-", "habana-", "aws-", "furiosa-", "rebellions-"}

func (c *Catalog) resolve(model string) (string, bool) {
	s := normalizeName(model)
	if s == "" {
		return "", false
	}
	for {
		if canon, ok := c.aliases[s]; ok {
			return canon, true
		}
		stripped := false
		for _, p := range vendorPrefixes {
			if strings.HasPrefix(s, p) && len(s) > len(p) {
				s = s[len(p):]
				stripped = true
				break
			}
		}
		if !stripped {
			return "", false
		}
	}
}

// clone returns a copy whose mutable parts (devices and their names, overrides, discounts, node
// prices, on-premises figures, carbon, settings) can be changed without touching c. The instance
// tables are never changed and stay shared.
func (c *Catalog) clone() *Catalog {
	n := *c
	n.devices = make(map[string]DeviceSpec, len(c.devices))
	for k, d := range c.devices {
		n.devices[k] = d.clone()
	}
	n.models = append([]string(nil), c.models...)
	n.aliases = maps.Clone(c.aliases)
	n.resources = make(map[string][]string, len(c.resources))
	for k, v := range c.resources {
		n.resources[k] = append([]string(nil), v...)
	}
	n.overrides = append([]priceOverride(nil), c.overrides...)
	n.discounts = append([]discount(nil), c.discounts...)
	n.nodePrices = maps.Clone(c.nodePrices)
	n.onpremHardware = maps.Clone(c.onpremHardware)
	n.noPrice = maps.Clone(c.noPrice)
	n.carbon = maps.Clone(c.carbon)
	return &n
}

// InstanceShape returns the vCPUs and memory (GiB) of a known AWS or GCP instance type.
func (c *Catalog) InstanceShape(instanceType string) (vcpus, memoryGiB float64, ok bool) {
	key := strings.ToLower(instanceType)
	if row, found := c.aws[key]; found {
		return row.VCPUs, row.MemoryGiB, true
	}
	for _, row := range c.gcp[key] {
		return row.VCPUs, row.MemoryGiB, true
	}
	return 0, 0, false
}
