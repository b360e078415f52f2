package catalog

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFleet2026ResolvesFromNodeLabels checks that each model added for the late-2026 fleet is named by
// the label its vendor's software sets, by GKE's accelerator label and by Karpenter's AWS label where
// those exist, and that the resolved model carries the datasheet (or stated) TDP.
func TestFleet2026ResolvesFromNodeLabels(t *testing.T) {
	tests := []struct {
		model     string
		resource  string
		vendorKey string
		vendor    string // value of vendorKey
		gke       string // cloud.google.com/gke-accelerator value; "" = GKE offers none
		karpenter string // karpenter.k8s.aws/instance-gpu-name value; "" = AWS offers none
		maxWatts  float64
	}{
		{"B200", ResourceNVIDIAGPU, LabelNVIDIAGPUProduct, "NVIDIA-B200", "nvidia-b200", "b200", 1000},
		{"GB200", ResourceNVIDIAGPU, LabelNVIDIAGPUProduct, "NVIDIA-GB200", "nvidia-gb200", "gb200", 1200},
		{"B300", ResourceNVIDIAGPU, LabelNVIDIAGPUProduct, "NVIDIA-B300-SXM6-AC", "nvidia-b300", "b300", 1100},
		{"H100-NVL", ResourceNVIDIAGPU, LabelNVIDIAGPUProduct, "NVIDIA-H100-NVL", "", "", 400},
		{"H20", ResourceNVIDIAGPU, LabelNVIDIAGPUProduct, "NVIDIA-H20", "", "", 400},
		{"L40S", ResourceNVIDIAGPU, LabelNVIDIAGPUProduct, "NVIDIA-L40S", "", "l40s", 350},
		{"L40", ResourceNVIDIAGPU, LabelNVIDIAGPUProduct, "NVIDIA-L40", "", "", 300},
		{"RTX-PRO-6000", ResourceNVIDIAGPU, LabelNVIDIAGPUProduct, "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition", "nvidia-rtx-pro-6000", "", 600},
		{"H200", ResourceNVIDIAGPU, LabelNVIDIAGPUProduct, "NVIDIA-H200", "nvidia-h200-141gb", "h200", 700},
		{"H100", ResourceNVIDIAGPU, LabelNVIDIAGPUProduct, "NVIDIA-H100-80GB-HBM3", "nvidia-h100-80gb", "h100", 700},
		{"MI325X", ResourceAMDGPU, LabelAMDGPUProductName, "AMD_Instinct_MI325X_OAM", "", "", 1000},
		{"MI355X", ResourceAMDGPU, LabelAMDGPUProductName, "AMD_Instinct_MI355X_OAM", "", "", 1400},
		{"Trainium2", ResourceNeuron, LabelKarpenterAcceleratorName, "trainium2", "", "", 350},
		{"TPU-v5e", ResourceGoogleTPU, LabelGKETPUAccelerator, "tpu-v5-lite-podslice", "", "", 283},
		{"TPU-v5p", ResourceGoogleTPU, LabelGKETPUAccelerator, "tpu-v5p-slice", "", "", 283},
		{"TPU-v6e", ResourceGoogleTPU, LabelGKETPUAccelerator, "tpu-v6e-slice", "", "", 283},
	}
	for _, tt := range tests {
		labelSets := map[string]map[string]string{"vendor " + tt.vendorKey: {tt.vendorKey: tt.vendor}}
		if tt.gke != "" {
			labelSets["GKE"] = map[string]string{LabelGKEAccelerator: tt.gke}
		}
		if tt.karpenter != "" {
			labelSets["Karpenter"] = map[string]string{LabelKarpenterGPUName: tt.karpenter}
		}
		for by, labels := range labelSets {
			t.Run(tt.model+" by "+by, func(t *testing.T) {
				f, err := FactsFromNode(node("n", labels, nil, map[string]string{tt.resource: "4"}))
				if err != nil {
					t.Fatal(err)
				}
				want := NodeFacts{Name: "n", CapacityType: CapacityOnDemand, AcceleratorModel: tt.model, AcceleratorCount: 4}
				if diff := cmp.Diff(want, f); diff != "" {
					t.Errorf("FactsFromNode (-want +got):\n%s", diff)
				}
				d, err := Default().Device(f.AcceleratorModel)
				if err != nil {
					t.Fatal(err)
				}
				if d.MaxWatts != tt.maxWatts || d.Resource != tt.resource {
					t.Errorf("%s: max %g W on %s, want %g W on %s", tt.model, d.MaxWatts, d.Resource, tt.maxWatts, tt.resource)
				}
				// Models without a Boavizta curve idle at the mean normalised shape, about 11% of TDP.
				if r := d.IdleWatts / d.MaxWatts; r < 0.10 || r > 0.12 {
					t.Errorf("%s: idle %g W is %.3f of max, want about 0.11", tt.model, d.IdleWatts, r)
				}
			})
		}
	}
}

// TestFleet2026InstancePrices prices a node of each instance type added in instances_2026.csv (and the
// GCP g4 machine that now resolves to the RTX PRO 6000), and nodes of devices that only have a
// per-device price. Every expected figure is written out from the source rows, not computed by the
// catalog.
func TestFleet2026InstancePrices(t *testing.T) {
	// Host of a 192 vCPU / 2048 GiB node at the GCP N2/A2 rates: 192 x 0.031611 + 2048 x 0.004237.
	const bigHost = 6.069312 + 8.677376
	tests := []struct {
		name string
		n    NodeFacts
		want Price
	}{
		{"p5en.48xlarge on-demand (skypilot v8: Price 63.296)",
			NodeFacts{Name: "n", InstanceType: "p5en.48xlarge", Region: "us-east-1"},
			Price{63.296, "instance:aws:p5en.48xlarge"}},
		{"p5en.48xlarge spot (lowest of use1-az2 19.9071, use1-az6 19.1652)",
			NodeFacts{Name: "n", InstanceType: "p5en.48xlarge", CapacityType: CapacitySpot},
			Price{19.1652, "instance:aws:p5en.48xlarge:spot"}},
		{"p6-b200.48xlarge on-demand (Price 113.9328)",
			NodeFacts{Name: "n", InstanceType: "p6-b200.48xlarge"},
			Price{113.9328, "instance:aws:p6-b200.48xlarge"}},
		{"p6-b200.48xlarge spot (use1-az6 19.0919)",
			NodeFacts{Name: "n", InstanceType: "p6-b200.48xlarge", CapacityType: CapacitySpot},
			Price{19.0919, "instance:aws:p6-b200.48xlarge:spot"}},
		{"g6e.xlarge on-demand (Price 1.861)",
			NodeFacts{Name: "n", InstanceType: "g6e.xlarge"},
			Price{1.861, "instance:aws:g6e.xlarge"}},
		{"g6e.xlarge spot (lowest of 0.9302, 0.7483, 0.8966, 0.8837)",
			NodeFacts{Name: "n", InstanceType: "g6e.xlarge", CapacityType: CapacitySpot},
			Price{0.7483, "instance:aws:g6e.xlarge:spot"}},
		{"g6e.12xlarge on-demand in another region keeps the us-east-1 price (Price 10.49264)",
			NodeFacts{Name: "n", InstanceType: "g6e.12xlarge", Region: "us-west-2"},
			Price{10.49264, "instance:aws:g6e.12xlarge (us-east-1 list price)"}},
		{"g6e.12xlarge spot (lowest of 3.2906, 6.5969, 4.4468, 4.4182)",
			NodeFacts{Name: "n", InstanceType: "g6e.12xlarge", CapacityType: CapacitySpot},
			Price{3.2906, "instance:aws:g6e.12xlarge:spot"}},
		{"GCP g4-standard-48 (1 RTX PRO 6000) in us-central1, cyclenerd row",
			NodeFacts{Name: "n", InstanceType: "g4-standard-48", Region: "us-central1"},
			Price{4.49993, "instance:gcp:g4-standard-48:us-central1"}},
		{"GCP g4-standard-48 spot in us-central1, cyclenerd row",
			NodeFacts{Name: "n", InstanceType: "g4-standard-48", Region: "us-central1", CapacityType: CapacitySpot},
			Price{1.79982, "instance:gcp:g4-standard-48:us-central1:spot"}},
		{"trn2.48xlarge is in no table: 16 Trainium2 at half an H200 ((63.296 - host) / 8 / 2) + host",
			NodeFacts{Name: "n", InstanceType: "trn2.48xlarge", AcceleratorModel: "Trainium2", AcceleratorCount: 16, CPUMilli: 192000, MemoryMiB: 2048 * 1024},
			Price{16*((63.296-bigHost)/8/2) + bigHost, "device:Trainium2 x16 + host"}},
		{"TPU v5e node of 4 chips: 4 x 1.20 + host (112 vCPU, 192 GiB)",
			NodeFacts{Name: "n", AcceleratorModel: "tpu-v5-lite-podslice", AcceleratorCount: 4, CPUMilli: 112000, MemoryMiB: 192 * 1024},
			Price{4*1.20 + 112*0.031611 + 192*0.004237, "device:TPU-v5e x4 + host"}},
		{"TPU v6e node of 8 chips on spot: (8 x 2.70 + host) x 0.572",
			NodeFacts{Name: "n", AcceleratorModel: "TPU-v6e", AcceleratorCount: 8, CPUMilli: 180000, MemoryMiB: 1440 * 1024, CapacityType: CapacitySpot},
			Price{(8*2.70 + 180*0.031611 + 1440*0.004237) * 0.572, "device:TPU-v6e x8 + host:spot"}},
		{"B200 node without instance type: 8 x ((113.9328 - host) / 8) + host = the p6-b200 price",
			NodeFacts{Name: "n", AcceleratorModel: "B200", AcceleratorCount: 8, CPUMilli: 192000, MemoryMiB: 2048 * 1024},
			Price{113.9328, "device:B200 x8 + host"}},
	}
	c := Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Price(tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, approx); diff != "" {
				t.Errorf("Price (-want +got):\n%s", diff)
			}
		})
	}
	// The new instance types name their accelerators, so that a node before its device plugin reports
	// is still counted.
	for it, want := range map[string]struct {
		model string
		count int
	}{"p5en.48xlarge": {"H200", 8}, "p6-b200.48xlarge": {"B200", 8}, "g6e.12xlarge": {"L40S", 4}, "g4-standard-48": {"RTX-PRO-6000", 1}} {
		m, n, ok := c.InstanceAccelerator(it)
		if !ok || m != want.model || n != want.count {
			t.Errorf("InstanceAccelerator(%s) = %s x%d (%v), want %s x%d", it, m, n, ok, want.model, want.count)
		}
	}
	// Fractional g4 shapes keep no model.
	if m, _, ok := c.InstanceAccelerator("g4-standard-12"); ok {
		t.Errorf("InstanceAccelerator(g4-standard-12) = %s, want no model (a quarter GPU)", m)
	}
}

// TestAWSSpotNodeIsPricedAtProviderFigure reads a Karpenter spot node and prices it at the provider's
// spot figure, not at a mid-point of a range.
func TestAWSSpotNodeIsPricedAtProviderFigure(t *testing.T) {
	n := node("ip-10-0-7-1.ec2.internal", map[string]string{
		LabelInstanceType:     "p5.48xlarge",
		LabelRegion:           "us-east-1",
		LabelCapacityType:     "spot",
		LabelKarpenterGPUName: "h100",
	}, nil, map[string]string{"nvidia.com/gpu": "8", "cpu": "192", "memory": "2048Gi"})
	f, err := FactsFromNode(n)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Default().Price(f)
	if err != nil {
		t.Fatal(err)
	}
	// skypilot-catalog v8 p5.48xlarge us-east-1 SpotPrice: az1 55.04, az2 47.2054, az3 14.5820,
	// az4 55.04, az5 14.2460, az6 14.8686; the lowest is the figure.
	if diff := cmp.Diff(Price{14.246, "instance:aws:p5.48xlarge:spot"}, p, approx); diff != "" {
		t.Errorf("Price (-want +got):\n%s", diff)
	}
}

// TestFleet2026TablesRejectSilentOverrides feeds malformed rows to the loaders of the two files we wrote.
func TestFleet2026TablesRejectSilentOverrides(t *testing.T) {
	const instHeader = "provider,instance_type,region,accelerator_model,accelerator_count,vcpus,memory_gib,ondemand_usd_per_hour,spot_usd_per_hour,source\n"
	const spotHeader = "instance_type,region,spot_usd_per_hour,source\n"
	tests := []struct {
		name string
		file string
		csv  string
		want []string
	}{
		{"instance type already in the AWS table", "instances", instHeader + "aws,p4d.24xlarge,us-east-1,A100,8,96,1152,30,10,x\n",
			[]string{"line 2", "p4d.24xlarge is already in the AWS table"}},
		{"instance type and region already in the GCP table", "instances", instHeader + "gcp,a2-highgpu-1g,us-central1,A100,1,12,85,3,1,x\n",
			[]string{"line 2", "a2-highgpu-1g in us-central1 is already in the GCP table"}},
		{"unknown accelerator", "instances", instHeader + "aws,p9.48xlarge,us-east-1,R100,8,192,2048,100,10,x\n",
			[]string{"line 2", `accelerator_model "R100"`}},
		{"spot above on-demand", "instances", instHeader + "aws,p9.48xlarge,us-east-1,B200,8,192,2048,100,120,x\n",
			[]string{"line 2", `spot_usd_per_hour "120"`}},
		{"AWS row outside us-east-1", "instances", instHeader + "aws,p9.48xlarge,us-west-2,B200,8,192,2048,100,10,x\n",
			[]string{"line 2", `region "us-west-2"`}},
		{"no source", "instances", instHeader + "aws,p9.48xlarge,us-east-1,B200,8,192,2048,100,10,\n",
			[]string{"line 2", "source"}},
		{"spot for an instance type the AWS table lacks", "spot", spotHeader + "p9.48xlarge,us-east-1,1,x\n",
			[]string{"line 2", "p9.48xlarge is not in"}},
		{"spot listed twice", "spot", spotHeader + "p4d.24xlarge,us-east-1,6,x\np4d.24xlarge,us-east-1,7,x\n",
			[]string{"line 3", "already has a spot price on line 2"}},
		{"spot above on-demand", "spot", spotHeader + "p4d.24xlarge,us-east-1,99,x\n",
			[]string{"line 2", `spot_usd_per_hour "99"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default().cloneTables()
			tbl, err := parseCSV(tt.file+".csv", []byte(tt.csv))
			if err != nil {
				t.Fatal(err)
			}
			if tt.file == "spot" {
				err = c.addAWSSpot(tbl)
			} else {
				err = c.addInstances(tbl)
			}
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

	// A row without a spot price is priced on spot at on-demand x its device's spot discount.
	c := Default().cloneTables()
	tbl, err := parseCSV("instances.csv", []byte(instHeader+"aws,p9.48xlarge,us-east-1,B200,8,192,2048,100,,x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.addInstances(tbl); err != nil {
		t.Fatal(err)
	}
	p, err := c.Price(NodeFacts{Name: "n", InstanceType: "p9.48xlarge", CapacityType: CapacitySpot})
	if err != nil {
		t.Fatal(err)
	}
	want := Price{100 * 0.168, "instance:aws:p9.48xlarge:spot (no spot price; on-demand x B200 spot discount 0.168)"}
	if diff := cmp.Diff(want, p, approx); diff != "" {
		t.Errorf("Price (-want +got):\n%s", diff)
	}
}

// cloneTables returns a copy whose AWS and GCP instance tables can be changed without touching c.
func (c *Catalog) cloneTables() *Catalog {
	n := c.clone()
	n.aws = make(map[string]instancePrice, len(c.aws))
	for k, v := range c.aws {
		n.aws[k] = v
	}
	n.gcp = make(map[string]map[string]instancePrice, len(c.gcp))
	for k, regions := range c.gcp {
		n.gcp[k] = make(map[string]instancePrice, len(regions))
		for r, v := range regions {
			n.gcp[k][r] = v
		}
	}
	return n
}
