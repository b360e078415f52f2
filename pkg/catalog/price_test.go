package catalog

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// approx compares money and watts to a millionth.
var approx = cmpopts.EquateApprox(0, 1e-6)

func TestPrice(t *testing.T) {
	// Host of the openb-like G2 node: 96 vCPU x 0.031611 + 768 GiB x 0.004237.
	const g2Host = 96*0.031611 + 768*0.004237
	tests := []struct {
		name string
		n    NodeFacts
		want Price
	}{
		{
			name: "AWS instance on-demand",
			n:    NodeFacts{Name: "n", InstanceType: "p4d.24xlarge", Region: "us-east-1", AcceleratorModel: "A100", AcceleratorCount: 8},
			want: Price{32.7726, "instance:aws:p4d.24xlarge"},
		},
		{
			// aws_spot_2026.csv: lowest us-east-1 AZ SpotPrice of p4d.24xlarge in skypilot-catalog v8
			// (use1-az1 6.2890, az2 14.1051, az6 12.4991).
			name: "AWS instance spot is the provider's figure",
			n:    NodeFacts{Name: "n", InstanceType: "p4d.24xlarge", CapacityType: CapacitySpot},
			want: Price{6.289, "instance:aws:p4d.24xlarge:spot"},
		},
		{
			// No newer figure was read for g4dn: the vantage export's spot minimum, the same
			// lowest-AZ rule on its 2023 snapshot.
			name: "AWS spot spelled as EKS does",
			n:    NodeFacts{Name: "n", InstanceType: "g4dn.xlarge", CapacityType: "SPOT"},
			want: Price{0.1609, "instance:aws:g4dn.xlarge:spot"},
		},
		{
			// The vantage export had no spot price for p4de; skypilot-catalog has one (use1-az4
			// 11.4593, use1-az6 9.7262).
			name: "AWS instance that had no spot price gets the provider's figure",
			n:    NodeFacts{Name: "n", InstanceType: "p4de.24xlarge", CapacityType: CapacitySpot},
			want: Price{9.7262, "instance:aws:p4de.24xlarge:spot"},
		},
		{
			name: "AWS instance in another region keeps the us-east-1 list price",
			n:    NodeFacts{Name: "n", InstanceType: "p3.2xlarge", Region: "eu-west-1"},
			want: Price{3.06, "instance:aws:p3.2xlarge (us-east-1 list price)"},
		},
		{
			name: "GCP instance in us-central1",
			n:    NodeFacts{Name: "n", InstanceType: "a2-highgpu-1g", Region: "us-central1"},
			want: Price{3.673385, "instance:gcp:a2-highgpu-1g:us-central1"},
		},
		{
			name: "GCP instance in europe-west4",
			n:    NodeFacts{Name: "n", InstanceType: "a2-highgpu-1g", Region: "europe-west4"},
			want: Price{3.747972, "instance:gcp:a2-highgpu-1g:europe-west4"},
		},
		{
			name: "GCP instance spot in europe-west4",
			n:    NodeFacts{Name: "n", InstanceType: "a2-highgpu-1g", Region: "europe-west4", CapacityType: CapacitySpot},
			want: Price{1.692835, "instance:gcp:a2-highgpu-1g:europe-west4:spot"},
		},
		{
			name: "GCP instance without region",
			n:    NodeFacts{Name: "n", InstanceType: "g2-standard-4"},
			want: Price{0.706832255, "instance:gcp:g2-standard-4:us-central1"},
		},
		{
			name: "GCP instance in a region missing from the table",
			n:    NodeFacts{Name: "n", InstanceType: "a3-highgpu-8g", Region: "antarctica-south1"},
			want: Price{88.4899999025753, "instance:gcp:a3-highgpu-8g:us-central1 (region antarctica-south1 not in the GCP table)"},
		},
		{
			name: "openb-like per-device node",
			n:    NodeFacts{Name: "openb-node-0200", AcceleratorModel: "G2", AcceleratorCount: 8, CPUMilli: 96000, MemoryMiB: 786432},
			want: Price{8*2.48 + g2Host, "device:G2 x8 + host"},
		},
		{
			name: "per-device node on spot",
			n:    NodeFacts{Name: "n", AcceleratorModel: "G2", AcceleratorCount: 8, CPUMilli: 96000, MemoryMiB: 786432, CapacityType: CapacitySpot},
			want: Price{(8*2.48 + g2Host) * 0.4, "device:G2 x8 + host:spot"},
		},
		{
			name: "per-device node by alias with an unknown instance type",
			n:    NodeFacts{Name: "n", InstanceType: "custom-8xa100", AcceleratorModel: "NVIDIA-A100-SXM4-40GB", AcceleratorCount: 8, CPUMilli: 96000, MemoryMiB: 786432},
			want: Price{8*2.933908 + g2Host, "device:A100 x8 + host"},
		},
		{
			name: "per-device node uses the GCP attach price of its region",
			n:    NodeFacts{Name: "n", AcceleratorModel: "T4", AcceleratorCount: 2, Region: "europe-west4", CPUMilli: 96000, MemoryMiB: 786432},
			want: Price{2*0.3675 + g2Host, "device:T4 x2 (gcp attach price europe-west4) + host"},
		},
		{
			name: "NPU node",
			n:    NodeFacts{Name: "n", AcceleratorModel: "RNGD", AcceleratorCount: 8, CPUMilli: 64000, MemoryMiB: 524288},
			want: Price{8*2.933908 + 64*0.031611 + 512*0.004237, "device:RNGD x8 + host"},
		},
		{
			name: "CPU-only node",
			n:    NodeFacts{Name: "openb-node-1400", CPUMilli: 32000, MemoryMiB: 131072},
			want: Price{32*0.031611 + 128*0.004237, "host"},
		},
		{
			name: "CPU-only node on spot",
			n:    NodeFacts{Name: "n", CPUMilli: 32000, MemoryMiB: 131072, CapacityType: CapacitySpot},
			want: Price{(32*0.031611 + 128*0.004237) * 0.562, "host:spot"},
		},
		{
			name: "annotation overrides everything",
			n:    NodeFacts{Name: "n", InstanceType: "p4d.24xlarge", CapacityType: CapacitySpot, PriceOverrideUSDPerHour: 12.5},
			want: Price{12.5, "annotation"},
		},
		{
			name: "annotation overrides an unknown model",
			n:    NodeFacts{Name: "n", AcceleratorModel: "X9", AcceleratorCount: 1, PriceOverrideUSDPerHour: 1.25},
			want: Price{1.25, "annotation"},
		},
	}
	c := Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Price(tt.n)
			if err != nil {
				t.Fatalf("Price: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, approx); diff != "" {
				t.Errorf("Price (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPriceErrors(t *testing.T) {
	c := Default()
	tests := []struct {
		name string
		n    NodeFacts
		want []string
	}{
		{
			name: "unknown model",
			n:    NodeFacts{Name: "gpu-node-7", AcceleratorModel: "X9", AcceleratorCount: 4},
			want: []string{"gpu-node-7", `"X9" is not in the catalog`, AnnotationPricePerHour, "devices.csv"},
		},
		{
			name: "accelerators without a model",
			n:    NodeFacts{Name: "gpu-node-8", AcceleratorCount: 4},
			want: []string{"gpu-node-8", "4 accelerators of no model", AnnotationPricePerHour},
		},
		{
			name: "unknown capacity type",
			n:    NodeFacts{Name: "gpu-node-9", CapacityType: "preemptible-ish"},
			want: []string{"gpu-node-9", "preemptible-ish"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Price(tt.n)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestDevicePriceDerivations recomputes the per-device prices of devices.csv from the embedded price
// tables, as each row's price_source describes.
func TestDevicePriceDerivations(t *testing.T) {
	c := Default()
	h := defaultHost
	gcp := func(it string) instancePrice { return c.gcp[it]["us-central1"] }
	aws := func(it string) instancePrice { return c.aws[it] }
	host := func(r instancePrice) float64 { return r.VCPUs*h.USDPerVCPUHour + r.MemoryGiB*h.USDPerGiBHour }
	tests := []struct {
		model       string
		price, spot float64
	}{
		{"T4", c.gcpAttach["T4"]["us-central1"].OnDemand, c.gcpAttach["T4"]["us-central1"].Spot / c.gcpAttach["T4"]["us-central1"].OnDemand},
		{"P100", c.gcpAttach["P100"]["us-central1"].OnDemand, c.gcpAttach["P100"]["us-central1"].Spot / c.gcpAttach["P100"]["us-central1"].OnDemand},
		{"V100", c.gcpAttach["V100"]["us-central1"].OnDemand, c.gcpAttach["V100"]["us-central1"].Spot / c.gcpAttach["V100"]["us-central1"].OnDemand},
		{"A100", gcp("a2-highgpu-1g").OnDemand - host(gcp("a2-highgpu-1g")), gcp("a2-highgpu-1g").Spot / gcp("a2-highgpu-1g").OnDemand},
		{"A100-80GB", gcp("a2-ultragpu-1g").OnDemand - host(gcp("a2-ultragpu-1g")), gcp("a2-ultragpu-1g").Spot / gcp("a2-ultragpu-1g").OnDemand},
		{"H100", gcp("a3-highgpu-1g").OnDemand - host(gcp("a3-highgpu-1g")), gcp("a3-highgpu-1g").Spot / gcp("a3-highgpu-1g").OnDemand},
		{"L4", 2*gcp("g2-standard-4").OnDemand - gcp("g2-standard-8").OnDemand, gcp("g2-standard-4").Spot / gcp("g2-standard-4").OnDemand},
		{"A10G", 2*aws("g5.xlarge").OnDemand - aws("g5.2xlarge").OnDemand, aws("g5.xlarge").Spot / aws("g5.xlarge").OnDemand},
		{"Inferentia2", aws("inf2.xlarge").OnDemand - (aws("inf2.8xlarge").OnDemand-aws("inf2.xlarge").OnDemand)/7, aws("inf2.xlarge").Spot / aws("inf2.xlarge").OnDemand},
		{"Trainium", aws("trn1.2xlarge").OnDemand - host(aws("trn1.2xlarge")), aws("trn1.2xlarge").Spot / aws("trn1.2xlarge").OnDemand},
	}
	for _, tt := range tests {
		d, err := c.Device(tt.model)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(d.PricePerHourUSD-tt.price) > 5e-7 {
			t.Errorf("%s: price %g, derived %g", tt.model, d.PricePerHourUSD, tt.price)
		}
		if math.Abs(d.SpotDiscount-tt.spot) > 5e-4 {
			t.Errorf("%s: spot discount %g, derived %g", tt.model, d.SpotDiscount, tt.spot)
		}
	}
	// The host rates reproduce GCP's A100 price on the 8-GPU machine too.
	a8 := gcp("a2-highgpu-8g")
	if got := (a8.OnDemand - host(a8)) / 8; math.Abs(got-2.933908) > 5e-7 {
		t.Errorf("a2-highgpu-8g A100 share = %g, want 2.933908", got)
	}
	// Host spot discount: spot/on-demand of the g2-standard-8 minus g2-standard-4 host increment.
	g4, g8 := gcp("g2-standard-4"), gcp("g2-standard-8")
	if got := (g8.Spot - g4.Spot) / (g8.OnDemand - g4.OnDemand); math.Abs(got-h.SpotDiscount) > 5e-4 {
		t.Errorf("host spot discount %g, derived %g", h.SpotDiscount, got)
	}
}

// TestHostPowerFit recomputes the per-vCPU and per-GiB watts from the embedded Teads/CCF table.
func TestHostPowerFit(t *testing.T) {
	tbl, err := readTable("data/aws_gpu_instance_power_teads_ccf.csv")
	if err != nil {
		t.Fatal(err)
	}
	fit := func(level string) (perVCPU, perGiB float64) {
		var a11, a12, a22, b1, b2 float64
		for i := range tbl.rows {
			v, _, _ := tbl.float(i, "vcpus")
			m, _, _ := tbl.float(i, "memory_gb")
			inst, _, _ := tbl.float(i, "instance_watts_"+level)
			gpu, _, _ := tbl.float(i, "gpu_watts_"+level)
			y := inst - gpu
			a11, a12, a22, b1, b2 = a11+v*v, a12+v*m, a22+m*m, b1+v*y, b2+m*y
		}
		det := a11*a22 - a12*a12
		return (b1*a22 - b2*a12) / det, (a11*b2 - a12*b1) / det
	}
	h := defaultHost
	for _, tt := range []struct {
		level                string
		wantPerVCPU, wantGiB float64
	}{
		{"idle", h.IdleWattsPerVCPU, h.IdleWattsPerGiB},
		{"100pct", h.MaxWattsPerVCPU, h.MaxWattsPerGiB},
	} {
		v, m := fit(tt.level)
		if math.Abs(v-tt.wantPerVCPU) > 5e-4 || math.Abs(m-tt.wantGiB) > 5e-4 {
			t.Errorf("%s fit = %.4f W/vCPU + %.4f W/GiB, catalog has %g + %g", tt.level, v, m, tt.wantPerVCPU, tt.wantGiB)
		}
	}
}

func TestHostPower(t *testing.T) {
	c := Default()
	tests := []struct {
		name      string
		n         NodeFacts
		idle, max float64
	}{
		{"openb G2 node", NodeFacts{CPUMilli: 96000, MemoryMiB: 393216}, 96*1.171 + 384*0.216, 96*2.984 + 384*1.166},
		{"half a vCPU", NodeFacts{CPUMilli: 500, MemoryMiB: 512}, 0.5*1.171 + 0.5*0.216, 0.5*2.984 + 0.5*1.166},
		{"unknown size", NodeFacts{}, 0, 0},
	}
	for _, tt := range tests {
		got := c.HostPower(tt.n)
		want := HostPower{IdleWatts: tt.idle, MaxWatts: tt.max, Source: defaultHost.PowerSource}
		if diff := cmp.Diff(want, got, approx); diff != "" {
			t.Errorf("%s: HostPower (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestCarbonIntensity(t *testing.T) {
	c := Default()
	tests := []struct {
		name       string
		n          NodeFacts
		want       float64
		wantSource string
	}{
		{"annotation wins over green", NodeFacts{Region: "us-east-1", Green: true, CarbonOverride: 123.4}, 123.4, "annotation"},
		{"green", NodeFacts{Region: "us-east-1", Green: true}, 29.5, "green energy"},
		{"AWS region from CCF before mlco2 (367.8)", NodeFacts{Region: "us-east-1"}, 415.755, "Cloud Carbon Footprint"},
		{"GCP region from CCF", NodeFacts{Region: "us-central1"}, 479, "Cloud Carbon Footprint"},
		{"GCP region case-insensitive", NodeFacts{Region: "Europe-West4"}, 474, "Cloud Carbon Footprint"},
		{"Azure region from mlco2", NodeFacts{Region: "eastus"}, 367.8, "mlco2"},
		{"CCF (29) wins over mlco2 (16)", NodeFacts{Region: "europe-west6"}, 29, "Cloud Carbon Footprint"},
		{"empty region is the default region", NodeFacts{}, 415.755, "aws us-east-1"},
		{"unknown region", NodeFacts{Region: "on-prem-1"}, 475, "world average"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, src := c.CarbonIntensity(tt.n)
			if math.Abs(got-tt.want) > 1e-9 || !strings.Contains(src, tt.wantSource) {
				t.Errorf("CarbonIntensity = %g, %q; want %g, source containing %q", got, src, tt.want, tt.wantSource)
			}
		})
	}
}

func TestRegions(t *testing.T) {
	regions := Default().Regions()
	seen := map[string]bool{}
	for i, r := range regions {
		if i > 0 && regions[i-1] >= r {
			t.Errorf("Regions() not sorted or duplicated at %q", r)
		}
		seen[r] = true
	}
	for _, r := range []string{"us-east-1", "us-central1", "europe-west4", "eastus", "asia-south2", "LGA1"} {
		if !seen[r] {
			t.Errorf("Regions() misses %q", r)
		}
	}
}

// A model the catalog lacks makes no error: the node's economics say what is missing and why, and
// the node's own annotations fill in what they can.
func TestEconomicsOfUnknownModel(t *testing.T) {
	c := Default()
	// 8 GPUs, 96 vCPU, 1152 GiB: host draw from the per-vCPU and per-GiB fit of doc.go.
	base := NodeFacts{Name: "b999-0", AcceleratorModel: "NVIDIA-B999", AcceleratorCount: 8, CPUMilli: 96000, MemoryMiB: 1152 * 1024}
	hostIdle := 96*1.171 + 1152*0.216
	tests := []struct {
		name          string
		facts         func(NodeFacts) NodeFacts
		wantPrice     float64
		wantUnpriced  bool
		wantUnpowered bool
		wantMaxWatts  float64 // of one device, at 100%
		wantIdleWatts float64
	}{
		{"nothing known", func(f NodeFacts) NodeFacts { return f }, 0, true, true, 0, 0},
		{"a price annotation", func(f NodeFacts) NodeFacts { f.PriceOverrideUSDPerHour = 60; return f }, 60, false, true, 0, 0},
		{"watts annotations", func(f NodeFacts) NodeFacts { f.DeviceMaxWatts, f.DeviceIdleWatts = 1000, 140; return f }, 0, true, false, 1000, 140},
		// idle from the mean Boavizta shape: the mean of idle/max over its seven curves.
		{"max watts only", func(f NodeFacts) NodeFacts { f.DeviceMaxWatts = 1000; return f }, 0, true, false, 1000, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := c.Economics(tc.facts(base))
			if err != nil {
				t.Fatalf("Economics: %v", err)
			}
			if e.PricePerHour != tc.wantPrice || (e.Unpriced != "") != tc.wantUnpriced || (e.Unpowered != "") != tc.wantUnpowered {
				t.Errorf("price %g unpriced %q unpowered %q; want %g, %v, %v", e.PricePerHour, e.Unpriced, e.Unpowered, tc.wantPrice, tc.wantUnpriced, tc.wantUnpowered)
			}
			if tc.wantUnpriced && !strings.Contains(e.Unpriced, `"NVIDIA-B999" is not in the catalog`) {
				t.Errorf("Unpriced = %q, want it to name the model", e.Unpriced)
			}
			if math.Abs(e.HostIdleWatts-hostIdle) > 1e-6 {
				t.Errorf("host idle %g W, want %g", e.HostIdleWatts, hostIdle)
			}
			if tc.wantMaxWatts == 0 {
				if len(e.Device) != 0 {
					t.Errorf("device curve %v, want none", e.Device)
				}
				return
			}
			if got := e.Device.WattsAt(1); got != tc.wantMaxWatts {
				t.Errorf("device at 100%%: %g W, want %g", got, tc.wantMaxWatts)
			}
			idle := e.Device.WattsAt(0)
			if tc.wantIdleWatts > 0 && idle != tc.wantIdleWatts {
				t.Errorf("device idle %g W, want %g", idle, tc.wantIdleWatts)
			}
			if tc.wantIdleWatts < 0 && (idle < 50 || idle > 200) {
				t.Errorf("device idle %g W from the curve shape, want about 11%% of 1000 W", idle)
			}
		})
	}
}
