package catalog

import (
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fuzzBase is the catalog the fuzzed ConfigMaps overlay: the defaults with one row of each key, so
// that an override, a discount and on-premises pricing are in force before.
func fuzzBase(f *testing.F) *Catalog {
	base, err := Default().WithConfigMap(map[string]string{
		ConfigMapKeyPrices:   "p4d.24xlarge,on-demand,,21.96\n",
		ConfigMapKeyDiscount: "aws,p5,,0.10\n",
		ConfigMapKeyCarbon:   "on-prem-seoul,436\n",
		ConfigMapKeySettings: "energy_usd_per_kwh,0.12\npue,1.5\n",
		ConfigMapKeyOnprem:   "A100,1.10\n",
	})
	if err != nil {
		f.Fatal(err)
	}
	return base
}

// catalogView is what a catalog reports about a fixed set of nodes, to tell whether it changed.
type catalogView struct {
	Prices        []Price
	PriceErrors   []string
	Devices       []DeviceSpec
	Carbon        []float64
	Host          HostPower
	DefaultRegion string
}

var viewNodes = []NodeFacts{
	{Name: "override", InstanceType: "p4d.24xlarge"},
	{Name: "list-discounted", InstanceType: "p5.48xlarge", CapacityType: CapacitySpot},
	{Name: "gcp", InstanceType: "a2-highgpu-1g", Region: "us-central1"},
	{Name: "device", AcceleratorModel: "T4", AcceleratorCount: 2, CPUMilli: 8000, MemoryMiB: 32768},
	{Name: "onprem", AcceleratorModel: "A100", AcceleratorCount: 8, CPUMilli: 96000, MemoryMiB: 1 << 20},
	{Name: "cpu", CPUMilli: 4000, MemoryMiB: 16384},
}

func viewOf(c *Catalog) catalogView {
	v := catalogView{Devices: c.Devices(), DefaultRegion: c.DefaultRegion(),
		Host: c.HostPower(NodeFacts{CPUMilli: 8000, MemoryMiB: 32768})}
	for _, n := range viewNodes {
		p, err := c.Price(n)
		v.Prices = append(v.Prices, p)
		if err != nil {
			v.PriceErrors = append(v.PriceErrors, err.Error())
		}
	}
	for _, n := range []NodeFacts{{}, {Region: "us-east-1"}, {Green: true}} {
		g, _ := c.CarbonIntensity(n)
		v.Carbon = append(v.Carbon, g)
	}
	return v
}

// FuzzCatalogConfigMap fuzzes the text of every key WithConfigMap reads. The base catalog never
// changes; a refusal says why; an accepted ConfigMap gives finite, non-negative prices, watts and
// carbon intensities for what its rows name (number refuses negative, NaN, infinite and huge
// figures, so neither a row nor a product of a few of them overflows).
func FuzzCatalogConfigMap(f *testing.F) {
	// configmap_test.go's TestWithConfigMap and docs/CATALOG.md's examples, then some of the rows
	// TestWithConfigMapMalformed refuses.
	f.Add("instance_type,capacity_type,region,usd_per_hour\n# negotiated discount\np4d.24xlarge,on-demand,,21.96\np4d.24xlarge,on-demand,us-west-2,23.10\np4d.24xlarge,spot,us-east-1,7.5\non-prem-dgx,,,0\n",
		"model,idle_watts,max_watts,price_per_hour_usd,spot_discount\nTesla-T4,10,80,,\nG2,,,1.9,0.3\n",
		"region,g_per_kwh\non-prem-seoul,436\nus-east-1,300\n",
		"default_region,on-prem-seoul\nhost_usd_per_vcpu_hour,0.02\nhost_max_watts_per_gib,0.5\ngreen_g_per_kwh,11\n",
		"", "")
	f.Add("instance_type,capacity_type,region,usd_per_hour\np4d.24xlarge,on-demand,,21.96\np4d.24xlarge,on-demand,us-west-2,23.10\n",
		"model,idle_watts,max_watts,price_per_hour_usd,spot_discount,resource,product_label\nX200,60,600,4.5,,nvidia.com/gpu,NVIDIA-X200-SXM\n",
		"region,g_per_kwh\non-prem-seoul,436\n",
		"key,value\nenergy_usd_per_kwh,0.12\npue,1.5\nhost_hardware_usd_per_vcpu_hour,0.01\nhost_max_watts_per_vcpu,3\nhost_max_watts_per_gib,0.5\ndefault_region,on-prem-seoul\n",
		"provider,instance_family,capacity_type,discount\nany,,,0.05\naws,,,0.10\naws,p4d,on-demand,0.30\ngcp,a2,,0.20\n",
		"model,hardware_usd_per_hour\nA100,1.10\nX200,2\n")
	f.Add("p5.48xlarge,on-demand,,lots\n", "L4,90,,\n", "us-east-1,dirty\n", "host_usd_per_core,0.1\n", "aws,p5,,1.5\n", "R100,1\n")
	f.Add("p4d.24xlarge,spot,,-2\n", "L4,,,,1.5\n", "\"us-east-1,300\n", "pue,0.5\n", "", "")
	// Figures that are finite but whose curve (new model) or on-premises price overflowed.
	f.Add("", "Y1,,1e306,,,nvidia.com/gpu\n", "", "", "", "")
	f.Add("", "", "", "pue,1e200\nenergy_usd_per_kwh,1e200\n", "", "")

	base := fuzzBase(f)
	before := viewOf(base)
	f.Fuzz(func(t *testing.T, prices, devices, carbon, settings, discounts, onprem string) {
		c, err := base.WithConfigMap(map[string]string{
			ConfigMapKeyPrices:   prices,
			ConfigMapKeyDevices:  devices,
			ConfigMapKeyCarbon:   carbon,
			ConfigMapKeySettings: settings,
			ConfigMapKeyDiscount: discounts,
			ConfigMapKeyOnprem:   onprem,
		})
		if diff := cmp.Diff(before, viewOf(base)); diff != "" {
			t.Fatalf("WithConfigMap (err %v) changed its receiver (-before +after):\n%s", err, diff)
		}
		if err != nil {
			if c != nil || err.Error() == "" {
				t.Fatalf("WithConfigMap = %p, %q: want no catalog and a message", c, err)
			}
			return
		}
		checkFigures(t, c)
	})
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }

// checkFigures checks what an accepted catalog reports for the rows it was given: the devices that
// devices.csv and onprem.csv rows change or add, and their nodes' prices; each prices.csv row; each
// region's carbon intensity; the settings through the host's power and the prices of viewNodes.
func checkFigures(t *testing.T, c *Catalog) {
	t.Helper()
	nodes := append([]NodeFacts(nil), viewNodes...)
	for _, d := range c.Devices() {
		if _, onprem := c.onpremHardware[d.Model]; !onprem && !strings.Contains(d.Source, "configmap") {
			continue // as the base has it
		}
		if !finite(d.IdleWatts) || !finite(d.MaxWatts) || !finite(d.PricePerHourUSD) || !(d.SpotDiscount >= 0 && d.SpotDiscount <= 1) {
			t.Fatalf("device %s: idle %g W, max %g W, %g USD/h, spot discount %g", d.Model, d.IdleWatts, d.MaxWatts, d.PricePerHourUSD, d.SpotDiscount)
		}
		for _, p := range d.Curve {
			if !finite(p.Watts) {
				t.Fatalf("device %s: curve %v", d.Model, d.Curve)
			}
		}
		if w := d.WattsAt(0.5); !finite(w) {
			t.Fatalf("device %s: %g W at 50%%", d.Model, w)
		}
		nodes = append(nodes, NodeFacts{Name: "d", AcceleratorModel: d.Model, AcceleratorCount: 1},
			NodeFacts{Name: "d", AcceleratorModel: d.Model, AcceleratorCount: 8, CPUMilli: 96000, MemoryMiB: 1 << 20, CapacityType: CapacitySpot})
	}
	for _, o := range c.overrides {
		nodes = append(nodes, NodeFacts{Name: "o", InstanceType: o.InstanceType, CapacityType: o.Capacity, Region: o.Region})
	}
	for _, n := range nodes {
		p, err := c.Price(n)
		var unpriced *UnpricedError
		if errors.As(err, &unpriced) {
			continue // a model added without a price
		}
		if err != nil || !finite(p.USDPerHour) {
			t.Fatalf("Price(%+v) = %v, %v", n, p, err)
		}
	}
	for _, r := range append(slices.Collect(maps.Keys(c.carbon)), c.DefaultRegion()) {
		if g, src := c.CarbonIntensity(NodeFacts{Region: r}); !finite(g) {
			t.Fatalf("carbon of %s: %g (%s)", r, g, src)
		}
	}
	if g, src := c.CarbonIntensity(NodeFacts{Green: true}); !finite(g) {
		t.Fatalf("green carbon: %g (%s)", g, src)
	}
	for _, n := range []NodeFacts{{CPUMilli: 1000}, {MemoryMiB: 1024}, {CPUMilli: 96000, MemoryMiB: 1 << 20}} {
		if h := c.HostPower(n); !finite(h.IdleWatts) || !finite(h.MaxWatts) || h.IdleWatts > h.MaxWatts {
			t.Fatalf("HostPower(%+v) = %+v", n, h)
		}
	}
}
