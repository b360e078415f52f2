package catalog

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Figures of the embedded catalog the hand calculations below start from (see price_test.go):
// p4d.24xlarge 32.7726 on-demand and 6.289 spot; a2-highgpu-1g 3.673385 in us-central1; the A100
// device price 2.933908 and max draw 407 W; the host at 0.031611 USD per vCPU-hour and 0.004237
// USD per GiB-hour.

func mustConfigMap(t *testing.T, data map[string]string) *Catalog {
	t.Helper()
	c, err := Default().WithConfigMap(data)
	if err != nil {
		t.Fatalf("WithConfigMap: %v", err)
	}
	return c
}

func TestDiscounts(t *testing.T) {
	c := mustConfigMap(t, map[string]string{
		ConfigMapKeyDiscount: `provider,instance_family,capacity_type,discount
any,,,0.05
aws,,,0.10
aws,p4d,on-demand,0.30
gcp,a2,,0.20
`,
		ConfigMapKeyPrices: "a2-ultragpu-8g,,,40\n",
	})
	tests := []struct {
		name string
		n    NodeFacts
		want Price
	}{
		{"family row beats provider row", NodeFacts{Name: "n", InstanceType: "p4d.24xlarge"},
			Price{32.7726 * 0.70, "instance:aws:p4d.24xlarge discount 0.3 (aws,p4d,on-demand)"}},
		{"family row is on-demand only: provider row on spot", NodeFacts{Name: "n", InstanceType: "p4d.24xlarge", CapacityType: CapacitySpot},
			Price{6.289 * 0.90, "instance:aws:p4d.24xlarge:spot discount 0.1 (aws,,)"}},
		{"gcp family row", NodeFacts{Name: "n", InstanceType: "a2-highgpu-1g", Region: "us-central1"},
			Price{3.673385 * 0.80, "instance:gcp:a2-highgpu-1g:us-central1 discount 0.2 (gcp,a2,)"}},
		{"per-device rule: only the any row", NodeFacts{Name: "n", AcceleratorModel: "A100", AcceleratorCount: 2, CPUMilli: 12000, MemoryMiB: 85 * 1024},
			Price{(2*2.933908 + 12*0.031611 + 85*0.004237) * 0.95, "device:A100 x2 + host discount 0.05 (any,,)"}},
		{"the annotation is the user's price", NodeFacts{Name: "n", InstanceType: "p4d.24xlarge", PriceOverrideUSDPerHour: 12.5},
			Price{12.5, "annotation"}},
		{"a prices.csv row is the user's price", NodeFacts{Name: "n", InstanceType: "a2-ultragpu-8g"},
			Price{40, "configmap"}},
	}
	for _, tt := range tests {
		got, err := c.Price(tt.n)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, got, approx); diff != "" {
			t.Errorf("%s: Price (-want +got):\n%s", tt.name, diff)
		}
	}
	if got, _ := Default().Price(NodeFacts{Name: "n", InstanceType: "p4d.24xlarge"}); got.USDPerHour != 32.7726 {
		t.Errorf("Default() changed by WithConfigMap: %+v", got)
	}
}

func TestNewDeviceModel(t *testing.T) {
	c := mustConfigMap(t, map[string]string{
		ConfigMapKeyDevices: `model,idle_watts,max_watts,price_per_hour_usd,spot_discount,resource,product_label
X200,60,600,4.5,,nvidia.com/gpu,NVIDIA-X200-SXM
`,
	})
	d, err := c.Device("x200")
	if err != nil {
		t.Fatalf("Device: %v", err)
	}
	if d.Model != "X200" || d.Kind != KindGPU || d.Resource != ResourceNVIDIAGPU || d.IdleWatts != 60 || d.MaxWatts != 600 || d.PricePerHourUSD != 4.5 {
		t.Errorf("Device = %+v", d)
	}
	if _, err := Default().Device("X200"); err == nil {
		t.Errorf("Default() knows X200: WithConfigMap changed it")
	}
	alloc := map[string]string{"cpu": "32", "memory": "256Gi", ResourceNVIDIAGPU: "4"}
	for _, n := range []*corev1.Node{
		node("by-product", map[string]string{LabelNVIDIAGPUProduct: "NVIDIA-X200-SXM"}, nil, alloc),
		node("by-model", map[string]string{LabelAcceleratorModel: "x200"}, nil, alloc),
	} {
		f, err := c.FactsFromNode(n)
		if err != nil {
			t.Fatalf("%s: FactsFromNode: %v", n.Name, err)
		}
		if f.AcceleratorModel != "X200" || f.AcceleratorCount != 4 {
			t.Errorf("%s: model %q x%d, want X200 x4", n.Name, f.AcceleratorModel, f.AcceleratorCount)
		}
		p, err := c.Price(f)
		if err != nil {
			t.Fatalf("%s: Price: %v", n.Name, err)
		}
		want := Price{4*4.5 + 32*0.031611 + 256*0.004237, "device:X200 x4 + host"}
		if diff := cmp.Diff(want, p, approx); diff != "" {
			t.Errorf("%s: Price (-want +got):\n%s", n.Name, diff)
		}
		e, err := c.Economics(f)
		if err != nil || e.Unpriced != "" || e.Unpowered != "" || e.Device.WattsAt(1) != 600 || e.Device.WattsAt(0) != 60 {
			t.Errorf("%s: Economics = %+v, %v", n.Name, e, err)
		}
	}
	// Without a price the new model is powered but unpriced (not free), until something prices it.
	c2 := mustConfigMap(t, map[string]string{ConfigMapKeyDevices: "X300,,800,,,nvidia.com/gpu\n"})
	e, err := c2.Economics(NodeFacts{Name: "n", AcceleratorModel: "X300", AcceleratorCount: 1})
	if err != nil || !strings.Contains(e.Unpriced, "X300 was added by the catalog ConfigMap without a price") || e.PricePerHour != 0 || e.Device.WattsAt(1) != 800 || e.Unpowered != "" {
		t.Errorf("Economics of a new model without a price = %+v, %v", e, err)
	}
	if p, err := c2.WithNodePrices(map[string]NodePrice{"n": {2, "opencost"}}).Price(NodeFacts{Name: "n", AcceleratorModel: "X300", AcceleratorCount: 1}); err != nil || p.USDPerHour != 2 {
		t.Errorf("price source for the new model: %+v, %v", p, err)
	}
}

func TestOnPremises(t *testing.T) {
	c := mustConfigMap(t, map[string]string{
		ConfigMapKeySettings: `key,value
energy_usd_per_kwh,0.12
pue,1.5
host_hardware_usd_per_vcpu_hour,0.01
host_max_watts_per_vcpu,3
host_max_watts_per_gib,0.5
`,
		ConfigMapKeyOnprem: "model,hardware_usd_per_hour\nA100,1.10\n",
	})
	tests := []struct {
		name string
		n    NodeFacts
		want float64
	}{
		// hardware 8 x 1.10 + 64 x 0.01 = 9.44; power 8 x 407 + 64 x 3 + 512 x 0.5 = 3704 W;
		// energy 3.704 kW x 1.5 x 0.12 = 0.66672.
		{"A100 x8 server", NodeFacts{Name: "dgx", AcceleratorModel: "A100", AcceleratorCount: 8, CPUMilli: 64000, MemoryMiB: 512 * 1024}, 9.44 + 0.66672},
		// The watts annotation lowers the draw, and so the price: 8 x 300 + 448 = 2848 W.
		{"power capped to 300 W", NodeFacts{Name: "dgx", AcceleratorModel: "A100", AcceleratorCount: 8, CPUMilli: 64000, MemoryMiB: 512 * 1024, DeviceMaxWatts: 300}, 9.44 + 2.848*1.5*0.12},
		// hardware 16 x 0.01 = 0.16; power 16 x 3 + 64 x 0.5 = 80 W; energy 0.08 x 1.5 x 0.12 = 0.0144.
		{"CPU-only server", NodeFacts{Name: "cpu", CPUMilli: 16000, MemoryMiB: 64 * 1024}, 0.16 + 0.0144},
		{"cloud instance: its table price", NodeFacts{Name: "p4d", InstanceType: "p4d.24xlarge"}, 32.7726},
		// T4 has no onprem.csv row: the per-device rule, 0.35 + host 4 x 0.031611 + 16 x 0.004237.
		{"model without hardware cost", NodeFacts{Name: "t4", AcceleratorModel: "T4", AcceleratorCount: 1, CPUMilli: 4000, MemoryMiB: 16 * 1024}, 0.35 + 4*0.031611 + 16*0.004237},
	}
	for _, tt := range tests {
		got, err := c.Price(tt.n)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, got.USDPerHour, approx); diff != "" {
			t.Errorf("%s: Price %q (-want +got):\n%s", tt.name, got.Source, diff)
		}
		if strings.HasPrefix(tt.name, "A100") && got.Source != "onprem: hardware 9.44 + energy 3.704 kW x PUE 1.5 x 0.12 USD/kWh" {
			t.Errorf("%s: source %q", tt.name, got.Source)
		}
	}
}

func TestPriceLayerOrder(t *testing.T) {
	c := mustConfigMap(t, map[string]string{ConfigMapKeyPrices: "p4d.24xlarge,,,21.96\n"}).WithNodePrices(map[string]NodePrice{
		"annotated": {USDPerHour: 5, Source: "opencost"},
		"listed":    {USDPerHour: 5, Source: "opencost"},
		"measured":  {USDPerHour: 1.23, Source: "opencost"},
		"device":    {USDPerHour: 0.5, Source: "opencost"},
	})
	host := 12*0.031611 + 85*0.004237
	tests := []struct {
		name string
		n    NodeFacts
		want Price
	}{
		{"annotation beats everything", NodeFacts{Name: "annotated", InstanceType: "p4d.24xlarge", PriceOverrideUSDPerHour: 9}, Price{9, "annotation"}},
		{"prices.csv beats the price source", NodeFacts{Name: "listed", InstanceType: "p4d.24xlarge"}, Price{21.96, "configmap"}},
		{"price source beats the instance table", NodeFacts{Name: "measured", InstanceType: "a2-highgpu-1g"}, Price{1.23, "opencost"}},
		{"instance table beats the device price", NodeFacts{Name: "other", InstanceType: "a2-highgpu-1g", AcceleratorModel: "A100", AcceleratorCount: 1}, Price{3.673385, "instance:gcp:a2-highgpu-1g:us-central1"}},
		{"price source beats the device price", NodeFacts{Name: "device", AcceleratorModel: "A100", AcceleratorCount: 1, CPUMilli: 12000, MemoryMiB: 85 * 1024}, Price{0.5, "opencost"}},
		{"device price last", NodeFacts{Name: "other", AcceleratorModel: "A100", AcceleratorCount: 1, CPUMilli: 12000, MemoryMiB: 85 * 1024}, Price{2.933908 + host, "device:A100 x1 + host"}},
	}
	for _, tt := range tests {
		got, err := c.Price(tt.n)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, got, approx); diff != "" {
			t.Errorf("%s: Price (-want +got):\n%s", tt.name, diff)
		}
	}
	if got, _ := Default().Price(NodeFacts{Name: "measured", InstanceType: "a2-highgpu-1g"}); got.Source == "opencost" {
		t.Errorf("WithNodePrices changed Default()")
	}
}

func TestUserPriceErrors(t *testing.T) {
	tests := []struct {
		name string
		data map[string]string
		want string
	}{
		{"unknown provider", map[string]string{ConfigMapKeyDiscount: "provider,instance_family,capacity_type,discount\nazure,,,0.1\n"},
			`configmap key "discounts.csv" line 2: provider "azure": want aws, gcp or any`},
		{"discount above 1", map[string]string{ConfigMapKeyDiscount: "aws,p5,,1.5\n"},
			`configmap key "discounts.csv" line 1: discount "1.5": want a fraction from 0 to 1`},
		{"negative discount", map[string]string{ConfigMapKeyDiscount: "aws,p5,,-0.1\n"},
			`configmap key "discounts.csv" line 1: discount "-0.1" is negative`},
		{"discount capacity", map[string]string{ConfigMapKeyDiscount: "aws,p5,reserved,0.1\n"},
			`configmap key "discounts.csv" line 1: capacity_type "reserved"`},
		{"duplicate discount", map[string]string{ConfigMapKeyDiscount: "aws,p5,,0.1\n\naws,P5,,0.2\n"},
			`configmap key "discounts.csv" line 3: a second row for aws,P5,`},
		{"discount fields", map[string]string{ConfigMapKeyDiscount: "aws,p5,0.1\n"},
			`configmap key "discounts.csv" line 1: 3 fields, want 4 to 4`},
		{"new model without resource", map[string]string{ConfigMapKeyDevices: "X9,10,100,1\n"},
			`configmap key "devices.csv" line 1: model "X9" is not in the catalog: to add it, give its resource`},
		{"new model without max_watts", map[string]string{ConfigMapKeyDevices: "X9,10,,1,,nvidia.com/gpu\n"},
			`configmap key "devices.csv" line 1: new model X9: max_watts is required`},
		{"new model idle above max", map[string]string{ConfigMapKeyDevices: "X9,200,100,1,,nvidia.com/gpu\n"},
			`configmap key "devices.csv" line 1: new model X9: idle_watts 200 must be below max_watts 100`},
		{"new model, unknown resource", map[string]string{ConfigMapKeyDevices: "X9,,100,1,,example.com/npu\n"},
			`configmap key "devices.csv" line 1: new model X9: resource "example.com/npu" is not an accelerator resource the catalog knows; known: amd.com/gpu`},
		{"known model, other resource", map[string]string{ConfigMapKeyDevices: "T4,,,,,amd.com/gpu\n"},
			`configmap key "devices.csv" line 1: model T4: resource "amd.com/gpu"`},
		{"product label of another model", map[string]string{ConfigMapKeyDevices: "X9,,100,,,nvidia.com/gpu,Tesla-T4\n"},
			`configmap key "devices.csv" line 1: product_label: name "Tesla-T4" already names model T4`},
		{"onprem unknown model", map[string]string{ConfigMapKeyOnprem: "X9,1\n", ConfigMapKeySettings: "energy_usd_per_kwh,0.1\n"},
			`configmap key "onprem.csv" line 1: unknown accelerator model "X9"`},
		{"onprem hardware not a number", map[string]string{ConfigMapKeyOnprem: "A100,cheap\n", ConfigMapKeySettings: "energy_usd_per_kwh,0.1\n"},
			`configmap key "onprem.csv" line 1: hardware_usd_per_hour "cheap" is not a number`},
		{"onprem without a tariff", map[string]string{ConfigMapKeyOnprem: "A100,1\n"},
			`configmap key "onprem.csv": on-premises hardware costs need the setting energy_usd_per_kwh`},
		{"pue below 1", map[string]string{ConfigMapKeySettings: "key,value\npue,0.9\n"},
			`configmap key "settings.csv" line 2: pue "0.9": a power usage effectiveness is at least 1`},
	}
	for _, tt := range tests {
		_, err := Default().WithConfigMap(tt.data)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

func TestParseNodePrices(t *testing.T) {
	got, err := ParseNodePrices(map[string]string{PriceSourceKey: "node,usd_per_hour,source\n# from OpenCost\nn1,2.5,opencost\nn2,0.75\n"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]NodePrice{"n1": {2.5, "opencost"}, "n2": {0.75, "price-source"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseNodePrices (-want +got):\n%s", diff)
	}
	for _, tt := range []struct{ text, want string }{
		{"node,usd_per_hour,source\nn1,abc,opencost\n", `configmap key "node-prices.csv" line 2: usd_per_hour "abc" is not a number`},
		{"n1,,opencost\n", `configmap key "node-prices.csv" line 1: empty usd_per_hour`},
		{",1,opencost\n", `configmap key "node-prices.csv" line 1: empty node`},
		{"n1,1\nn1,2\n", `configmap key "node-prices.csv" line 2: node n1: a second row for the same node`},
		{"n1,1,opencost,extra\n", `configmap key "node-prices.csv" line 1: 4 fields, want 2 to 3`},
		{"node,price,source\n", `configmap key "node-prices.csv" line 1: header "node,price,source", want "node,usd_per_hour,source"`},
	} {
		if _, err := ParseNodePrices(map[string]string{PriceSourceKey: tt.text}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.text, err, tt.want)
		}
	}
	if _, err := ParseNodePrices(map[string]string{"prices.csv": ""}); err == nil || !strings.Contains(err.Error(), `configmap key "prices.csv": unknown key`) {
		t.Errorf("unknown key: %v", err)
	}
}

func TestStore(t *testing.T) {
	s := NewStore(nil)
	cm := func(data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kcloud-system", Name: "kcloud-catalog"}, Data: data}
	}
	a2 := NodeFacts{Name: "n1", InstanceType: "a2-highgpu-1g"}
	price := func() Price {
		cat, _ := s.Current()
		p, err := cat.Price(a2)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	gen := func() uint64 { _, g := s.Current(); return g }
	if gen() != 1 || price().USDPerHour != 3.673385 {
		t.Fatalf("new store: generation %d, price %+v", gen(), price())
	}

	if changed, err := s.Update(cm(map[string]string{ConfigMapKeyPrices: "a2-highgpu-1g,,,2\n"})); err != nil || !changed {
		t.Fatalf("good update: changed %v, %v", changed, err)
	}
	if gen() != 2 || price() != (Price{2, "configmap"}) {
		t.Errorf("after a good update: generation %d, price %+v", gen(), price())
	}
	if changed, err := s.Update(cm(map[string]string{ConfigMapKeyPrices: "a2-highgpu-1g,,,2\n"})); err != nil || changed || gen() != 2 {
		t.Errorf("same data again: changed %v, %v, generation %d", changed, err, gen())
	}

	_, err := s.Update(cm(map[string]string{ConfigMapKeyPrices: "a2-highgpu-1g,,,two\n"}))
	if want := `catalog ConfigMap kcloud-system/kcloud-catalog: configmap key "prices.csv" line 1: usd_per_hour "two" is not a number`; err == nil || err.Error() != want {
		t.Errorf("bad update: error %v, want %q", err, want)
	}
	if ok, _ := s.Valid(); ok || gen() != 2 || price() != (Price{2, "configmap"}) {
		t.Errorf("after a bad update: valid %v, generation %d, price %+v: want the last good catalog", ok, gen(), price())
	}

	if changed, err := s.UpdatePriceSource(cm(map[string]string{PriceSourceKey: "n2,0.9,opencost\n"})); err != nil || !changed || gen() != 3 {
		t.Errorf("price source: changed %v, %v, generation %d", changed, err, gen())
	}
	cat, _ := s.Current()
	if p, _ := cat.Price(NodeFacts{Name: "n2", InstanceType: "p4d.24xlarge"}); p != (Price{0.9, "opencost"}) {
		t.Errorf("price source node: %+v", p)
	}
	if _, err := s.UpdatePriceSource(cm(map[string]string{PriceSourceKey: "n2,-1\n"})); err == nil || !strings.Contains(err.Error(), `price source ConfigMap kcloud-system/kcloud-catalog: configmap key "node-prices.csv" line 1: usd_per_hour "-1" is negative`) {
		t.Errorf("bad price source: %v", err)
	}

	if changed, err := s.Update(nil); err != nil || !changed || gen() != 4 {
		t.Errorf("delete: changed %v, %v, generation %d", changed, err, gen())
	}
	if ok, _ := s.Valid(); !ok || price().USDPerHour != 3.673385 {
		t.Errorf("after delete: valid %v, price %+v: want the defaults", ok, price())
	}
	cat, _ = s.Current()
	if p, _ := cat.Price(NodeFacts{Name: "n2", InstanceType: "p4d.24xlarge"}); p != (Price{0.9, "opencost"}) {
		t.Errorf("the price source outlives the catalog ConfigMap: %+v", p)
	}
}
