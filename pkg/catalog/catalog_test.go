package catalog

import (
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// requiredModels are the models the scheduler, the simulator and the openb trace rely on.
var requiredModels = []string{
	"A10", "A100", "A100-80GB", "A10G", "ATOM", "G2", "G3", "Gaudi2", "Gaudi3", "H100", "H200",
	"Inferentia2", "L4", "MI300X", "P100", "RNGD", "T4", "Trainium", "V100", "V100M16", "V100M32",
	// The late-2026 fleet.
	"B200", "GB200", "B300", "H100-NVL", "H20", "L40S", "L40", "RTX-PRO-6000", "MI325X", "MI355X",
	"Trainium2", "TPU-v5e", "TPU-v5p", "TPU-v6e",
}

func TestModelsAreTheRequiredSet(t *testing.T) {
	want := append([]string(nil), requiredModels...)
	sort.Strings(want)
	if diff := cmp.Diff(want, Default().Models()); diff != "" {
		t.Errorf("Models() mismatch (-want +got):\n%s", diff)
	}
}

func TestDeviceAliases(t *testing.T) {
	tests := []struct{ name, want string }{
		{"T4", "T4"},
		{"t4", "T4"},
		{"Tesla-T4", "T4"},
		{"Tesla-T4-SHARED", "T4"}, // NVIDIA GFD with time-slicing
		{"nvidia-tesla-t4", "T4"}, // GKE accelerator label
		{"NVIDIA T4 Tensor Core", "T4"},
		{"NVIDIA-A100-SXM4-80GB", "A100-80GB"},
		{"A100-SXM4-40GB", "A100"},
		{"NVIDIA-A100-SXM4-40GB", "A100"},
		{"NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "A100"}, // GFD, MIG mixed strategy
		{"nvidia-tesla-a100", "A100"},
		{"A100-40GB", "A100"}, // GCP price table
		{"nvidia-a100-80gb", "A100-80GB"},
		{"A800-SXM4-80GB", "A100-80GB"}, // Alibaba spot trace
		{"V100M32", "V100M32"},
		{"v100m16", "V100M16"},
		{"Tesla-V100-SXM2-32GB", "V100M32"},
		{"Tesla-V100-PCIE-16GB", "V100M16"},
		{"Tesla-V100-SXM2-16GB", "V100"},
		{"nvidia-tesla-v100", "V100"},
		{"Tesla-P100-PCIE-16GB", "P100"},
		{"P100", "P100"},
		{"NVIDIA-A10", "A10"},
		{"A10", "A10"},
		{"NVIDIA-A10G", "A10G"},
		{"nvidia-l4", "L4"},
		{"NVIDIA-H100-80GB-HBM3", "H100"},
		{"nvidia-h100-80gb", "H100"},
		{"nvidia-h100-mega-80gb", "H100"},
		{"H100-80GB-Mega", "H100"},
		{"H800", "H100"},
		{"NVIDIA-H200", "H200"},
		{"nvidia-h200-141gb", "H200"},
		{"AMD_Instinct_MI300X_OAM", "MI300X"},
		{"mi300x", "MI300X"},
		{"GAUDI2", "Gaudi2"},
		{"GAUDI3", "Gaudi3"},
		{"HL-325L", "Gaudi3"},
		{"inferentia2", "Inferentia2"},
		{"trainium", "Trainium"},
		{"trn1", "Trainium"},
		{"RBLN-CA12", "ATOM"},
		{"ATOM", "ATOM"},
		{"rngd", "RNGD"},
		{"G2", "G2"},
		{"g3", "G3"},
	}
	c := Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := c.Device(tt.name)
			if err != nil {
				t.Fatalf("Device(%q): %v", tt.name, err)
			}
			if d.Model != tt.want {
				t.Errorf("Device(%q).Model = %q, want %q", tt.name, d.Model, tt.want)
			}
		})
	}
}

func TestDeviceUnknownListsKnownModels(t *testing.T) {
	c := Default()
	for _, name := range []string{"X9", "", "nvidia-", "K80"} {
		_, err := c.Device(name)
		if err == nil {
			t.Fatalf("Device(%q): no error", name)
		}
		sorted := append([]string(nil), requiredModels...)
		sort.Strings(sorted)
		want := "known models: " + strings.Join(sorted, ", ")
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("Device(%q) error = %q, want it to name the model and contain %q", name, err, want)
		}
	}
}

func TestEveryDeviceIsComplete(t *testing.T) {
	c := Default()
	resources := []string{ResourceNVIDIAGPU, ResourceAMDGPU, ResourceGaudi, ResourceNeuron, ResourceGoogleTPU, ResourceRebellionsATOM, ResourceFuriosaRNGD}
	labelKeys := ProductLabelKeys()
	devices := c.Devices()
	if len(devices) != len(requiredModels) {
		t.Fatalf("Devices() has %d entries, want %d", len(devices), len(requiredModels))
	}
	if !sort.SliceIsSorted(devices, func(i, j int) bool { return devices[i].Model < devices[j].Model }) {
		t.Errorf("Devices() not sorted by model")
	}
	for _, d := range devices {
		t.Run(d.Model, func(t *testing.T) {
			if d.Source == "" {
				t.Errorf("empty Source")
			}
			if !(d.IdleWatts < d.MaxWatts) || d.IdleWatts <= 0 {
				t.Errorf("IdleWatts %g, MaxWatts %g: want 0 < idle < max", d.IdleWatts, d.MaxWatts)
			}
			if len(d.Curve) < 2 || d.Curve[0].Utilization != 0 || d.Curve[len(d.Curve)-1].Utilization != 1 {
				t.Fatalf("curve %v must run from 0 to 1 with at least two points", d.Curve)
			}
			if !sort.SliceIsSorted(d.Curve, func(i, j int) bool { return d.Curve[i].Utilization < d.Curve[j].Utilization }) {
				t.Errorf("curve %v not sorted", d.Curve)
			}
			for i := 1; i < len(d.Curve); i++ {
				if d.Curve[i].Watts < d.Curve[i-1].Watts {
					t.Errorf("curve %v decreases at %d", d.Curve, i)
				}
			}
			if d.Curve[0].Watts != d.IdleWatts || d.Curve[len(d.Curve)-1].Watts != d.MaxWatts {
				t.Errorf("curve ends %g..%g differ from idle/max %g..%g", d.Curve[0].Watts, d.Curve[len(d.Curve)-1].Watts, d.IdleWatts, d.MaxWatts)
			}
			if !slices.Contains(resources, d.Resource) {
				t.Errorf("Resource %q is not one of %v", d.Resource, resources)
			}
			if d.Kind != KindGPU && d.Kind != KindNPU {
				t.Errorf("Kind %q", d.Kind)
			}
			if !(d.PricePerHourUSD > 0) || !(d.SpotDiscount > 0 && d.SpotDiscount <= 1) {
				t.Errorf("price %g, spot discount %g", d.PricePerHourUSD, d.SpotDiscount)
			}
			if d.Vendor == "" || d.ProductLabel == "" || !slices.Contains(labelKeys, d.ProductLabelKey) {
				t.Errorf("vendor %q, product label %s=%q", d.Vendor, d.ProductLabelKey, d.ProductLabel)
			}
			if back, err := c.Device(d.ProductLabel); err != nil || back.Model != d.Model {
				t.Errorf("product label %q resolves to %q (%v), want %q", d.ProductLabel, back.Model, err, d.Model)
			}
			if (d.Model == "G2" || d.Model == "G3") && d.Assumption == "" {
				t.Errorf("%s: figures are assumed but Assumption is empty", d.Model)
			}
			if !slices.ContainsFunc(c.DeviceForResource(d.Resource), func(o DeviceSpec) bool { return o.Model == d.Model }) {
				t.Errorf("DeviceForResource(%q) misses %s", d.Resource, d.Model)
			}
		})
	}
}

// TestDeviceCurvesMatchSources checks the power figures against the embedded source files.
func TestDeviceCurvesMatchSources(t *testing.T) {
	c := Default()
	tests := []struct {
		model     string
		idle, max float64
	}{
		{"T4", 8, 71},     // Boavizta T4 row
		{"V100", 35, 306}, // Boavizta Tesla V100 row
		{"V100M16", 35, 306},
		{"V100M32", 35, 306},
		{"A100", 46, 407},  // Boavizta Tesla A100 row
		{"P100", 29, 250},  // openb power map
		{"A10", 17.5, 150}, // openb power map
		{"L4", 0, 72},      // mlco2 TDP; idle from the shape
		{"H100", 0, 700},   // mlco2 TDP
		{"H200", 0, 700},
		{"MI300X", 0, 750},
		{"Gaudi2", 0, 600},
		{"Gaudi3", 0, 900},
		{"ATOM", 0, 130},
		{"RNGD", 0, 180},
	}
	_, shape, err := loadBoavizta()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		d, err := c.Device(tt.model)
		if err != nil {
			t.Fatal(err)
		}
		idle := tt.idle
		if idle == 0 {
			idle = round3(shape[0] * tt.max)
		}
		if d.IdleWatts != idle || d.MaxWatts != tt.max {
			t.Errorf("%s: idle/max = %g/%g, want %g/%g", tt.model, d.IdleWatts, d.MaxWatts, idle, tt.max)
		}
	}
	// The mean Boavizta shape: idle about 11% of the maximum, 50% load about 74%.
	if math.Abs(shape[0]-0.1137) > 0.001 || math.Abs(shape[2]-0.7397) > 0.002 || shape[3] != 1 {
		t.Errorf("mean Boavizta shape = %v", shape)
	}
}

func TestWattsAt(t *testing.T) {
	c := Default()
	t4, _ := c.Device("T4")     // 8 / 22 / 53 / 71 W at 0 / 0.1 / 0.5 / 1
	h100, _ := c.Device("H100") // shaped curve up to 700 W
	twoPoint := DeviceSpec{IdleWatts: 10, MaxWatts: 110, Curve: []CurvePoint{{Utilization: 0, Watts: 10}, {Utilization: 1, Watts: 110}}}
	tests := []struct {
		name string
		d    DeviceSpec
		u    float64
		want float64
	}{
		{"T4 idle", t4, 0, 8},
		{"T4 half", t4, 0.5, 53},
		{"T4 full", t4, 1, 71},
		{"T4 between points", t4, 0.3, 37.5},
		{"T4 below 0 clamps", t4, -0.5, 8},
		{"T4 above 1 clamps", t4, 1.7, 71},
		{"T4 NaN is idle", t4, math.NaN(), 8},
		{"H100 idle", h100, 0, h100.IdleWatts},
		{"H100 full", h100, 1, 700},
		{"H100 half", h100, 0.5, h100.Curve[2].Watts},
		{"two points", twoPoint, 0.25, 35},
		{"no curve", DeviceSpec{IdleWatts: 10, MaxWatts: 110}, 0.5, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.WattsAt(tt.u); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("WattsAt(%g) = %g, want %g", tt.u, got, tt.want)
			}
		})
	}
}

func TestDeviceForResource(t *testing.T) {
	c := Default()
	models := func(ds []DeviceSpec) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.Model)
		}
		return out
	}
	tests := []struct {
		resource string
		want     []string
	}{
		{ResourceNVIDIAGPU, []string{"A10", "A100", "A100-80GB", "A10G", "B200", "B300", "G2", "G3", "GB200", "H100", "H100-NVL", "H20", "H200",
			"L4", "L40", "L40S", "P100", "RTX-PRO-6000", "T4", "V100", "V100M16", "V100M32"}},
		{ResourceAMDGPU, []string{"MI300X", "MI325X", "MI355X"}},
		{ResourceGaudi, []string{"Gaudi2", "Gaudi3"}},
		{ResourceNeuron, []string{"Inferentia2", "Trainium", "Trainium2"}},
		{"aws.amazon.com/neurondevice", []string{"Inferentia2", "Trainium", "Trainium2"}},
		{ResourceGoogleTPU, []string{"TPU-v5e", "TPU-v5p", "TPU-v6e"}},
		{ResourceRebellionsATOM, []string{"ATOM"}},
		{"rebellions.ai/npu", []string{"ATOM"}},
		{ResourceFuriosaRNGD, []string{"RNGD"}},
		{"example.com/tpu", nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, models(c.DeviceForResource(tt.resource))); diff != "" {
			t.Errorf("DeviceForResource(%q) (-want +got):\n%s", tt.resource, diff)
		}
	}
}

func TestReturnedSpecsAreCopies(t *testing.T) {
	c := Default()
	d, _ := c.Device("T4")
	d.Curve[0].Watts = 1e6
	d.Aliases[0] = "changed"
	for _, x := range c.Devices() {
		x.Curve[0].Watts = 1e6
	}
	again, _ := c.Device("T4")
	if again.Curve[0].Watts != 8 || again.Aliases[0] == "changed" {
		t.Errorf("catalog changed through a returned spec: %+v", again)
	}
}

func TestDefaultIsSharedAndConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	got := make([]*Catalog, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = Default()
			_, _ = got[i].Price(NodeFacts{Name: "n", AcceleratorModel: "T4", AcceleratorCount: 1})
		}()
	}
	wg.Wait()
	for _, c := range got {
		if c != got[0] || c == nil {
			t.Fatalf("Default() returned different catalogs")
		}
	}
}

func TestInstanceAccelerator(t *testing.T) {
	c := Default()
	tests := []struct {
		it    string
		model string
		count int
		ok    bool
	}{
		{"p4d.24xlarge", "A100", 8, true},
		{"p4de.24xlarge", "A100-80GB", 8, true},
		{"p3dn.24xlarge", "V100M32", 8, true},
		{"p5.48xlarge", "H100", 8, true},
		{"inf2.48xlarge", "Inferentia2", 12, true},
		{"trn1.32xlarge", "Trainium", 16, true},
		{"g5.xlarge", "A10G", 1, true},
		{"a2-ultragpu-8g", "A100-80GB", 8, true},
		{"a3-megagpu-8g", "H100", 8, true},
		{"g2-standard-24", "L4", 2, true},
		{"g4-standard-12", "", 0, false}, // a quarter of an RTX PRO 6000
		{"p2.xlarge", "", 0, false},      // K80: not in the catalog
		{"m5.large", "", 0, false},
	}
	for _, tt := range tests {
		m, n, ok := c.InstanceAccelerator(tt.it)
		if m != tt.model || n != tt.count || ok != tt.ok {
			t.Errorf("InstanceAccelerator(%q) = %q, %d, %v; want %q, %d, %v", tt.it, m, n, ok, tt.model, tt.count, tt.ok)
		}
	}
}
