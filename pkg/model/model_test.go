package model

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func node(devices int, free ...int64) Node {
	n := NewNode("G2", 96000, 393216, devices)
	for i, f := range free {
		n.DeviceFree[i] = f
		n.AllocatedGPU += MilliPerGPU - f
		if f < MilliPerGPU {
			n.Pods = 1
		}
	}
	return n
}

func TestFits(t *testing.T) {
	tests := []struct {
		name string
		pod  Pod
		node Node
		want bool
	}{
		{"cpu-only pod on empty node", Pod{CPUMilli: 4000, MemoryMiB: 1024}, node(8), true},
		{"too much cpu", Pod{CPUMilli: 97000}, node(8), false},
		{"too much memory", Pod{CPUMilli: 1, MemoryMiB: 393217}, node(8), false},
		{"share fits a partly used device", Pod{GPUCount: 1, GPUMilli: 400}, node(2, 0, 500), true},
		{"share larger than any free part", Pod{GPUCount: 1, GPUMilli: 600}, node(2, 0, 500), false},
		{"whole device needs a fully free one", Pod{GPUCount: 1, GPUMilli: 1000}, node(2, 999, 999), false},
		{"two whole devices", Pod{GPUCount: 2, GPUMilli: 1000}, node(4, 0, 1000, 500, 1000), true},
		{"three whole devices, two free", Pod{GPUCount: 3, GPUMilli: 1000}, node(4, 0, 1000, 500, 1000), false},
		{"model allowed", Pod{GPUCount: 1, GPUMilli: 1000, Models: []string{"T4", "G2"}}, node(1), true},
		{"model refused", Pod{GPUCount: 1, GPUMilli: 1000, Models: []string{"T4"}}, node(1), false},
		{"gpu pod on cpu node", Pod{GPUCount: 1, GPUMilli: 100}, node(0), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Fits(&tc.pod, &tc.node); got != tc.want {
				t.Errorf("Fits = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAssignRelease(t *testing.T) {
	n := node(4)
	start := n
	share := Pod{CPUMilli: 6000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: 460}
	multi := Pod{CPUMilli: 12000, MemoryMiB: 2048, GPUCount: 2, GPUMilli: 1000}
	a1 := Assign(&share, &n, Allocation{Device: BestFitDevice(&share, &n)})
	a2 := Assign(&multi, &n, Allocation{Device: -1})
	if diff := cmp.Diff([]int{1, 2}, a2.Whole); diff != "" {
		t.Errorf("whole devices (-want +got):\n%s", diff)
	}
	if n.AllocatedGPU != 2460 || n.CPUFree != 78000 || n.Pods != 2 || n.DeviceFree[0] != 540 {
		t.Errorf("after assign: %+v", n)
	}
	Release(&multi, &n, a2)
	Release(&share, &n, a1)
	if diff := cmp.Diff(start, n); diff != "" {
		t.Errorf("release did not restore the node (-want +got):\n%s", diff)
	}
}

func TestBestFitDeviceAndCandidates(t *testing.T) {
	n := node(4, 1000, 300, 700, 700)
	p := Pod{GPUCount: 1, GPUMilli: 500}
	if got := BestFitDevice(&p, &n); got != 2 {
		t.Errorf("BestFitDevice = %d, want 2 (least room that fits, lowest index)", got)
	}
	if diff := cmp.Diff([]int{0, 2}, ShareCandidates(&p, &n, nil)); diff != "" {
		t.Errorf("ShareCandidates (-want +got):\n%s", diff)
	}
}

func TestFragmentation(t *testing.T) {
	types := []PodType{
		{CPUMilli: 4000, GPUCount: 1, GPUMilli: 500, Popularity: 0.5},
		{CPUMilli: 8000, GPUCount: 1, GPUMilli: 1000, Popularity: 0.25},
		{CPUMilli: 2000, Popularity: 0.25}, // CPU-only: sees every free GPU as fragmented
	}
	tests := []struct {
		name string
		node Node
		want float64
	}{
		// share type: device 1 (300 free) is unusable -> 300; whole type: partial devices 300+700;
		// CPU-only type: all 2000 free.
		{"partly used", node(3, 0, 300, 700), 0.5*300 + 0.25*1000 + 0.25*1000},
		{"empty node", node(2), 0.5*0 + 0.25*0 + 0.25*2000},
		{"full node", node(2, 0, 0), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Fragmentation(&tc.node, types); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("Fragmentation = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("too little cpu makes everything fragmented", func(t *testing.T) {
		n := node(2)
		n.CPUFree = 1000
		if got, want := Fragmentation(&n, types), 2000.0; got != want {
			t.Errorf("Fragmentation = %v, want %v", got, want)
		}
	})
}

func TestTypicalPodTypes(t *testing.T) {
	var pods []Pod
	add := func(n int, p Pod) {
		for i := 0; i < n; i++ {
			pods = append(pods, p)
		}
	}
	add(6, Pod{CPUMilli: 1000, GPUCount: 1, GPUMilli: 500, MemoryMiB: 1})
	add(2, Pod{CPUMilli: 1000, GPUCount: 1, GPUMilli: 500, MemoryMiB: 2}) // memory is not part of a type
	add(1, Pod{CPUMilli: 4000})
	add(1, Pod{CPUMilli: 2000})
	got := TypicalPodTypes(pods, 0.85)
	want := []PodType{
		{CPUMilli: 1000, GPUCount: 1, GPUMilli: 500, Popularity: 8.0 / 9},
		{CPUMilli: 4000, Popularity: 1.0 / 9}, // ties: larger CPU first
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TypicalPodTypes (-want +got):\n%s", diff)
	}
}

var testEconomics = Economics{
	PricePerHour: 10, HostIdleWatts: 100, HostMaxWatts: 300,
	Device:          PowerCurve{{Utilization: 0, Watts: 50}, {Utilization: 1, Watts: 250}},
	CarbonIntensity: 400,
}

func TestMarginalOf(t *testing.T) {
	p := Pod{CPUMilli: 48000, GPUCount: 1, GPUMilli: 500}
	asleep := node(2)
	awake := node(2)
	awake.Pods = 1
	tests := []struct {
		name string
		node Node
		want Marginal
	}{
		// waking: price, host idle + half the CPU load, both devices' idle + half of one device's range
		{"waking an empty node", asleep, Marginal{CostPerHour: 10, PowerWatts: 100 + 100 + 2*50 + 100, CarbonPerHour: 400 * 0.4}},
		{"a running node", awake, Marginal{CostPerHour: 0, PowerWatts: 100 + 100, CarbonPerHour: 400 * 0.2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := MarginalOf(&p, &tc.node, Allocation{Device: 0}, &testEconomics)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("MarginalOf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAttribution(t *testing.T) {
	n := node(2)
	p := Pod{CPUMilli: 24000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: 500}
	// dominant share: GPU 500/2000 = 0.25 (CPU 24000/96000 = 0.25 too)
	if got := AttributedCost(&p, &n, &testEconomics); got != 2.5 {
		t.Errorf("AttributedCost = %v, want 2.5", got)
	}
	// 0.25 of idle (100 + 2*50) + CPU load 200*0.25 + device load 250*0.5... = 50 + 50 + 100
	if got := AttributedPower(&p, &n, &testEconomics); got != 200 {
		t.Errorf("AttributedPower = %v, want 200", got)
	}
	// The same 200 W in parts: host idle 0.25*100, host load 200*0.25, devices' idle 0.25*2*50,
	// device load (150-50) at half of one device.
	want := PowerParts{HostIdle: 25, HostActive: 50, AcceleratorIdle: 25, AcceleratorActive: 100}
	if diff := cmp.Diff(want, AttributedPowerParts(&p, &n, &testEconomics)); diff != "" {
		t.Errorf("AttributedPowerParts (-want +got):\n%s", diff)
	}
}

func TestPowerCurve(t *testing.T) {
	c := PowerCurve{{Utilization: 0, Watts: 8}, {Utilization: 0.1, Watts: 22}, {Utilization: 0.5, Watts: 53}, {Utilization: 1, Watts: 71}}
	for _, tc := range []struct{ u, want float64 }{{-1, 8}, {0, 8}, {0.05, 15}, {0.5, 53}, {0.75, 62}, {1, 71}, {2, 71}, {math.NaN(), 8}} {
		if got := c.WattsAt(tc.u); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("WattsAt(%v) = %v, want %v", tc.u, got, tc.want)
		}
	}
}

func TestCheckLimits(t *testing.T) {
	tests := []struct {
		name    string
		limit   Limit
		cost    float64
		power   float64
		carbon  float64
		wantMsg string // empty: within limits
	}{
		{"cost cap holds", Limit{Source: "WorkloadOptimizer ai/x maxCostPerHour", Kind: LimitCostPerHour, Cap: 50, Used: 40}, 10, 0, 0, ""},
		{"cost cap broken", Limit{Source: "WorkloadOptimizer ai/x maxCostPerHour", Kind: LimitCostPerHour, Cap: 50, Used: 40}, 10.5, 0, 0,
			"WorkloadOptimizer ai/x maxCostPerHour: hourly cost cap 50.00 USD/h exceeded (40.00 in use + 10.50 for this pod)"},
		{"power cap broken", Limit{Source: "PowerPolicy dc", Kind: LimitPowerWatts, Cap: 2000, Used: 1800}, 0, 300, 0,
			"PowerPolicy dc: power cap 2000 W exceeded (1800 in use + 300 for this pod)"},
		{"budget covers an hour", Limit{Source: "CostPolicy team", Kind: LimitBudgetUSD, Cap: 3}, 3, 0, 0, ""},
		{"budget exhausted", Limit{Source: "CostPolicy team", Kind: LimitBudgetUSD, Cap: 2.99}, 3, 0, 0,
			"CostPolicy team: budget left 2.99 USD does not cover 1 h of the covered pods (0.00 USD/h running + 3.00 USD/h for this pod)"},
		// 10 USD left, 7 USD/h running: an hour of them and a 3 USD/h pod is exactly 10.
		{"budget covers an hour of the running pods and this one", Limit{Source: "CostPolicy team", Kind: LimitBudgetUSD, Cap: 10, Used: 7}, 3, 0, 0, ""},
		{"budget taken by the running pods", Limit{Source: "CostPolicy team", Kind: LimitBudgetUSD, Cap: 10, Used: 7.5}, 3, 0, 0,
			"CostPolicy team: budget left 10.00 USD does not cover 1 h of the covered pods (7.50 USD/h running + 3.00 USD/h for this pod)"},
		{"energy budget exhausted", Limit{Source: "PowerPolicy dc", Kind: LimitEnergyKWh, Cap: 0.2}, 0, 300, 0,
			"PowerPolicy dc: energy budget left 0.20 kWh does not cover 1 h of the covered pods (0 W running + 300 W for this pod)"},
		// 1 kWh left, 0.8 kW running: 300 W more would take 1.1 kWh in the hour.
		{"energy budget taken by the running pods", Limit{Source: "PowerPolicy dc", Kind: LimitEnergyKWh, Cap: 1, Used: 0.8}, 0, 300, 0,
			"PowerPolicy dc: energy budget left 1.00 kWh does not cover 1 h of the covered pods (800 W running + 300 W for this pod)"},
		{"energy budget covers the running pods and this one", Limit{Source: "PowerPolicy dc", Kind: LimitEnergyKWh, Cap: 1.1, Used: 0.8}, 0, 300, 0, ""},
		{"carbon limit", Limit{Source: "PowerPolicy green", Kind: LimitCarbonIntensity, Cap: 100}, 0, 0, 450,
			"PowerPolicy green: node carbon intensity 450 gCO2/kWh is above the limit 100"},
		{"a limit that cannot be evaluated holds nowhere, even for a free pod", Limit{Source: "CostPolicy team: spec.selector: bad", Kind: LimitInvalid}, 0, 0, 0,
			"CostPolicy team: spec.selector: bad"},
	}
	unknown := []struct {
		name    string
		limit   Limit
		econ    Economics
		wantMsg string
	}{
		{"a cost cap on a node with no price", Limit{Source: "WorkloadOptimizer ai/x maxCostPerHour", Kind: LimitCostPerHour, Cap: 50}, Economics{Unpriced: "model B999 not in the catalog"},
			"WorkloadOptimizer ai/x maxCostPerHour: the node has no price (model B999 not in the catalog), so its cost to this pod is unknown"},
		{"a budget on a node with no price", Limit{Source: "CostPolicy team", Kind: LimitBudgetUSD, Cap: 100}, Economics{Unpriced: "no price"},
			"CostPolicy team: the node has no price (no price), so its cost to this pod is unknown"},
		{"a power cap on a node with no price holds", Limit{Source: "PowerPolicy dc", Kind: LimitPowerWatts, Cap: 2000}, Economics{Unpriced: "no price"}, ""},
		{"a power cap on a node with no power figure", Limit{Source: "PowerPolicy dc", Kind: LimitPowerWatts, Cap: 2000}, Economics{Unpowered: "no TDP"},
			"PowerPolicy dc: the node's accelerators have no power figure (no TDP), so this pod's draw there is unknown"},
		{"an energy budget on a node with no power figure", Limit{Source: "PowerPolicy dc", Kind: LimitEnergyKWh, Cap: 5}, Economics{Unpowered: "no TDP"},
			"PowerPolicy dc: the node's accelerators have no power figure (no TDP), so this pod's draw there is unknown"},
		{"a cost cap on a node with no power figure holds", Limit{Source: "CostPolicy team", Kind: LimitCostPerHour, Cap: 50}, Economics{Unpowered: "no TDP"}, ""},
	}
	for _, tc := range unknown {
		t.Run(tc.name, func(t *testing.T) {
			v := CheckLimits([]Limit{tc.limit}, 0, 0, &tc.econ)
			switch {
			case tc.wantMsg == "" && v != nil:
				t.Errorf("unexpected violation: %v", v)
			case tc.wantMsg != "" && (v == nil || v.Error() != tc.wantMsg):
				t.Errorf("violation = %v, want %q", v, tc.wantMsg)
			}
		})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := CheckLimits([]Limit{tc.limit}, tc.cost, tc.power, &Economics{CarbonIntensity: tc.carbon})
			switch {
			case tc.wantMsg == "" && v != nil:
				t.Errorf("unexpected violation: %v", v)
			case tc.wantMsg != "" && (v == nil || v.Error() != tc.wantMsg):
				t.Errorf("violation = %v, want %q", v, tc.wantMsg)
			}
		})
	}
}

func TestCheckSpot(t *testing.T) {
	if v := CheckSpot(SpotRequired, "CostPolicy p", false); v == nil || !strings.Contains(v.Error(), "spot capacity required") {
		t.Errorf("require on on-demand: %v", v)
	}
	if v := CheckSpot(SpotAvoided, "CostPolicy p", true); v == nil || !strings.Contains(v.Error(), "spot capacity avoided") {
		t.Errorf("avoid on spot: %v", v)
	}
	if v := CheckSpot(SpotRequired, "CostPolicy p", true); v != nil {
		t.Errorf("require on spot: %v", v)
	}
}

func TestCombinedScores(t *testing.T) {
	cands := []Candidate{
		{Marginal: Marginal{CostPerHour: 10, PowerWatts: 500}, FragDelta: 0},             // wakes a node
		{Marginal: Marginal{CostPerHour: 0, PowerWatts: 100}, FragDelta: 0},              // running node
		{Marginal: Marginal{CostPerHour: 0, PowerWatts: 100}, FragDelta: -400},           // running and packs better
		{Marginal: Marginal{CostPerHour: 0, PowerWatts: 100}, FragDelta: 0, Spot: true},  // running spot node
		{Marginal: Marginal{CostPerHour: 0, PowerWatts: 100}, FragDelta: 0, Green: true}, // running green node
	}
	w := DefaultWeights
	got := CombinedScores(cands, Preferences{}, w, nil)
	if !(got[2] > got[1] && got[1] > got[0]) {
		t.Errorf("want less fragmentation > running node > waking a node, got %v", got)
	}
	for _, s := range got {
		if s < 0 || s > 100 {
			t.Errorf("score %v out of 0..100", s)
		}
	}
	spot := CombinedScores(cands, Preferences{Spot: true}, w, nil)
	if !(spot[3] > spot[1]) {
		t.Errorf("preferSpot: spot node should beat the same on-demand node, got %v", spot)
	}
	green := CombinedScores(cands, Preferences{Green: true}, w, nil)
	if !(green[4] > green[1]) {
		t.Errorf("preferGreen: green node should beat the same node, got %v", green)
	}
	reserve := CombinedScores([]Candidate{
		{Marginal: Marginal{CostPerHour: 0}, AcceleratorNodeForCPUPod: true}, // running GPU node
		{Marginal: Marginal{CostPerHour: 5}},                                 // waking a CPU node
	}, Preferences{}, w, nil)
	if !(reserve[1] > reserve[0]) {
		t.Errorf("a CPU pod should wake a CPU node rather than take a GPU node's CPU, got %v", reserve)
	}
	if got := CombinedScores(nil, Preferences{}, w, nil); len(got) != 0 {
		t.Errorf("no candidates: %v", got)
	}
}

// TestDefaultWeightsCostAgainstFragmentation pins what the default weights trade: a fragmentation
// point weighs 98/100 = 0.98, the whole spread of marginal cost 2, so the cheapest candidate beats
// the dearest when it packs up to 2 points worse (1.96 < 2), and loses at 3 (2.94 > 2).
func TestDefaultWeightsCostAgainstFragmentation(t *testing.T) {
	// FragmentationScore: delta 0 -> 50, -100 -> 52, -130 -> 53 (100/(1+e^(d/1000)), truncated).
	for _, tt := range []struct {
		packsBetter float64 // the dearer candidate's FragDelta
		points      float64
		cheaperWins bool
	}{
		{-100, 2, true},
		{-130, 3, false},
	} {
		if got := FragmentationScore(tt.packsBetter) - FragmentationScore(0); got != tt.points {
			t.Fatalf("FragmentationScore(%v) is %v points above unchanged, want %v", tt.packsBetter, got, tt.points)
		}
		got := CombinedScores([]Candidate{
			{Marginal: Marginal{CostPerHour: 10}, FragDelta: tt.packsBetter}, // wakes a node, packs better
			{Marginal: Marginal{CostPerHour: 0}, FragDelta: 0},               // running node
		}, Preferences{}, DefaultWeights, nil)
		if cheaperWins := got[1] > got[0]; cheaperWins != tt.cheaperWins {
			t.Errorf("%v points of fragmentation against the cost spread: scores %v, cheaper wins %v, want %v", tt.points, got, cheaperWins, tt.cheaperWins)
		}
	}
}

// A Scorer built from ranges gathered elsewhere scores as one that observed the candidates itself.
func TestNewScorerOver(t *testing.T) {
	cands := []Candidate{
		{Marginal: Marginal{CostPerHour: 10, PowerWatts: 500, CarbonPerHour: 0.2}},
		{Marginal: Marginal{CostPerHour: 0, PowerWatts: 100, CarbonPerHour: 0.05}, FragDelta: -400},
		{Marginal: Marginal{CostPerHour: 3, PowerWatts: 250, CarbonPerHour: 0.1}, Spot: true},
	}
	w := Weights{Cost: 2, Power: 1, Carbon: 1, Fragmentation: 90, Reserve: 5, Spot: 5}
	want := CombinedScores(cands, Preferences{Spot: true}, w, nil)
	var lo, hi [3]float64
	for k := range lo {
		lo[k], hi[k] = math.Inf(1), math.Inf(-1)
	}
	for i := range cands {
		for k, v := range Costs(&cands[i]) {
			lo[k], hi[k] = min(lo[k], v), max(hi[k], v)
		}
	}
	s := NewScorerOver(Preferences{Spot: true}, w, lo, hi)
	for i := range cands {
		if got := s.Score(&cands[i]); got != want[i] {
			t.Errorf("candidate %d: %v, want %v", i, got, want[i])
		}
	}
}

func TestFragmentationScore(t *testing.T) {
	for _, tc := range []struct{ delta, want float64 }{{0, 50}, {-1000, 73}, {1000, 26}, {-40, 50}, {-41, 51}} {
		if got := FragmentationScore(tc.delta); got != tc.want {
			t.Errorf("FragmentationScore(%v) = %v, want %v", tc.delta, got, tc.want)
		}
	}
}

func TestOptimizationScore(t *testing.T) {
	for _, tc := range []struct {
		name          string
		current, best Totals
		want          float64
	}{
		{"optimal", Totals{10, 1000}, Totals{10, 1000}, 1},
		{"twice the cost and power", Totals{20, 2000}, Totals{10, 1000}, 0.5},
		{"cost optimal, power double", Totals{10, 2000}, Totals{10, 1000}, 0.75},
		{"better than the best found", Totals{5, 500}, Totals{10, 1000}, 1},
		{"nothing running", Totals{}, Totals{}, 1},
	} {
		if got := OptimizationScore(tc.current, tc.best); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: OptimizationScore = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// benchmarkNode is an openb G2 node, half used, scored against the default trace's 35 typical types.
func benchmarkInputs() (Pod, Node, []PodType) {
	n := node(8, 0, 540, 1000, 1000, 200, 1000, 0, 1000)
	n.CPUFree = 40000
	var types []PodType
	for i := 0; i < 35; i++ {
		types = append(types, PodType{CPUMilli: int64(1000 * (i%8 + 1)), GPUCount: 1 + i%3/2, GPUMilli: []int64{250, 500, 1000}[i%3], Popularity: 1.0 / 35})
	}
	return Pod{CPUMilli: 6000, MemoryMiB: 12288, GPUCount: 1, GPUMilli: 460}, n, types
}

// BenchmarkFGDScoreOnePodOneNode is the FGD paper's score alone: the baseline of the next benchmark.
func BenchmarkFGDScoreOnePodOneNode(b *testing.B) {
	p, n, types := benchmarkInputs()
	before := Fragmentation(&n, types)
	var cands [MaxDevicesPerNode]int
	for i := 0; i < b.N; i++ {
		best := math.Inf(-1)
		for _, d := range ShareCandidates(&p, &n, cands[:0]) {
			after := n
			Assign(&p, &after, Allocation{Device: d})
			best = max(best, FragmentationScore(Fragmentation(&after, types)-before))
		}
	}
}

// BenchmarkKcloudScoreOnePodOneNode adds marginal cost, power and carbon and the combined score.
func BenchmarkKcloudScoreOnePodOneNode(b *testing.B) {
	p, n, types := benchmarkInputs()
	before := Fragmentation(&n, types)
	var cands [MaxDevicesPerNode]int
	one := make([]Candidate, 1)
	out := make([]float64, 0, 1)
	for i := 0; i < b.N; i++ {
		best, dev := math.Inf(1), -1
		for _, d := range ShareCandidates(&p, &n, cands[:0]) {
			after := n
			Assign(&p, &after, Allocation{Device: d})
			if f := Fragmentation(&after, types) - before; f < best {
				best, dev = f, d
			}
		}
		one[0] = Candidate{Marginal: MarginalOf(&p, &n, Allocation{Device: dev}, &testEconomics), FragDelta: best}
		out = CombinedScores(one, Preferences{}, DefaultWeights, out)
	}
}

// An unpriced node scores neutral on cost: halfway between the cheapest and the dearest priced
// candidate, so fragmentation decides; it widens no range.
func TestScoreUnpricedNeutral(t *testing.T) {
	w := Weights{Cost: 10, Fragmentation: 90}
	cands := []Candidate{
		{Marginal: Marginal{CostPerHour: 0}},                  // running priced node: cost term 1
		{Marginal: Marginal{CostPerHour: 8}},                  // waking a priced node: cost term 0
		{Marginal: Marginal{CostPerHour: 0}, Unpriced: true},  // unpriced: cost term 0.5
		{Marginal: Marginal{CostPerHour: 99}, Unpriced: true}, // its own figure is ignored
	}
	got := CombinedScores(cands, Preferences{}, w, nil)
	// fragmentation unchanged scores 50/100 of 90 = 45; cost 10 x (1, 0, 0.5, 0.5); total weight 100.
	want := []float64{45 + 10, 45, 45 + 5, 45 + 5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scores (-want +got):\n%s", diff)
	}
	unpowered := CombinedScores([]Candidate{{Marginal: Marginal{PowerWatts: 100}}, {Marginal: Marginal{PowerWatts: 1}, Unpowered: true}, {Marginal: Marginal{PowerWatts: 300}}},
		Preferences{}, Weights{Power: 10, Carbon: 10, Fragmentation: 80}, nil)
	// power: (1, 0.5, 0); carbon all 0: equal candidates score 1, the unpowered one neutral.
	if diff := cmp.Diff([]float64{40 + 10 + 10, 40 + 5 + 5, 40 + 0 + 10}, unpowered); diff != "" {
		t.Errorf("unpowered scores (-want +got):\n%s", diff)
	}
}

// AssignOverhead takes room as Assign does but leaves the node's count of workload pods alone, so a
// node that runs only its daemons stays inactive and costs and draws nothing.
func TestAssignOverhead(t *testing.T) {
	e := Economics{PricePerHour: 4, HostIdleWatts: 100, HostMaxWatts: 300}
	tests := []struct {
		name       string
		daemons    []Pod
		workloads  []Pod
		wantCPU    int64
		wantPods   int
		wantActive bool
		wantCost   float64
	}{
		{"daemons only", []Pod{{CPUMilli: 100, MemoryMiB: 128}, {CPUMilli: 300, MemoryMiB: 512}}, nil, 16000 - 400, 0, false, 0},
		{"daemons and a workload", []Pod{{CPUMilli: 400, MemoryMiB: 640}}, []Pod{{CPUMilli: 2000, MemoryMiB: 1024}}, 16000 - 2400, 1, true, 4},
		{"nothing", nil, nil, 16000, 0, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := NewNode("", 16000, 65536, 0)
			for i := range tc.daemons {
				AssignOverhead(&tc.daemons[i], &n, Allocation{Device: -1})
			}
			for i := range tc.workloads {
				Assign(&tc.workloads[i], &n, Allocation{Device: -1})
			}
			if n.CPUFree != tc.wantCPU || n.Pods != tc.wantPods || n.Active() != tc.wantActive || NodeCost(&n, &e) != tc.wantCost {
				t.Errorf("CPU free %d, pods %d, active %v, cost %g; want %d, %d, %v, %g", n.CPUFree, n.Pods, n.Active(), NodeCost(&n, &e), tc.wantCPU, tc.wantPods, tc.wantActive, tc.wantCost)
			}
		})
	}
}

func TestCompareRank(t *testing.T) {
	tests := []struct {
		a, b Rank
		want int
	}{
		{Rank{0, 10}, Rank{0, 90}, -1},
		{Rank{0, 90}, Rank{0, 10}, 1},
		{Rank{0, 50}, Rank{0, 50}, 0},
		{Rank{1000, 0}, Rank{0, 100}, 1}, // the PriorityClass decides first
		{Rank{-5, 100}, Rank{0, 0}, -1},
	}
	for _, tt := range tests {
		if got := CompareRank(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareRank(%+v, %+v) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestScaleDownShares(t *testing.T) {
	me := Rank{0, 50}
	low, high, same := Rank{0, 10}, Rank{0, 90}, Rank{0, 50}
	tests := []struct {
		name              string
		rivals            []Rival
		yielding, waiting float64
	}{
		{"none", nil, 0, 0},
		{"a placed lower-ranked rival yields", []Rival{{low, 4.5, true}}, 4.5, 0},
		{"a placed higher-ranked rival keeps its room", []Rival{{high, 4.5, true}}, 0, 0},
		{"a placed rival of the same rank keeps its room", []Rival{{same, 4.5, true}}, 0, 0},
		{"a pending higher-ranked rival waits for room", []Rival{{high, 2, false}}, 0, 2},
		{"a pending lower-ranked rival asks for nothing", []Rival{{low, 2, false}}, 0, 0},
		{"a pending rival of the same rank asks for nothing", []Rival{{same, 2, false}}, 0, 0},
		{"a higher PriorityClass outranks a higher optimizer priority", []Rival{{Rank{100, 0}, 3, false}, {Rank{-1, 100}, 1, true}}, 1, 3},
		{"all together", []Rival{{low, 1, true}, {low, 1.5, true}, {high, 2, false}, {high, 0.25, false}, {high, 8, true}, {low, 7, false}}, 2.5, 2.25},
	}
	for _, tt := range tests {
		y, w := ScaleDownShares(me, tt.rivals)
		if y != tt.yielding || w != tt.waiting {
			t.Errorf("%s: yielding %v waiting %v, want %v and %v", tt.name, y, w, tt.yielding, tt.waiting)
		}
	}
}
