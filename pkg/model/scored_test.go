package model

import (
	"math"
	"testing"
)

func TestScoredPlacement(t *testing.T) {
	// Three 4-GPU nodes: a running one (another pod on it) at 3 USD/h, an empty spot node at
	// 1 USD/h and the on-demand node at 2 USD/h where the workload's one pod runs alone. No typical
	// pods: fragmentation is 0 everywhere, so cost, reserve and preferences decide.
	pod := Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: MilliPerGPU}
	other := Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: MilliPerGPU}
	running, spot, home := NewNode("A100", 32000, 65536, 4), NewNode("A100", 32000, 65536, 4), NewNode("A100", 32000, 65536, 4)
	Assign(&other, &running, Allocation{Device: -1})
	Assign(&pod, &home, Allocation{Device: -1})
	nodes := []Node{running, spot, home}
	econ := []*Economics{{PricePerHour: 3}, {PricePerHour: 1, Spot: true}, {PricePerHour: 2}}
	placed := []Placed{{Pod: pod, Node: 2, Device: -1}}
	all := func(int, int) bool { return true }
	notRunning := func(_, j int) bool { return j != 0 }
	w := Weights{Cost: 2, Fragmentation: 98, Reserve: 5, Spot: 5}

	tests := []struct {
		name    string
		allowed func(int, int) bool
		sc      Scoring
		want    float64 // USD/h
	}{
		// Marginal costs 0, 1 and 2: the running node scores 2*1 + 98*0.5 + 5 = 56 (of 105), the
		// spot node 2*0.5 + 49 + 5 = 55.
		{"the running node adds nothing", all, Scoring{Weights: w}, 0},
		// Preferring spot adds 5 to the spot node only: 60 against 56 (of 110).
		{"preferSpot takes the spot node", all, Scoring{Weights: w, Prefs: Preferences{Spot: true}}, 1},
		{"preferSpot with no spot weight changes nothing", all, Scoring{Weights: Weights{Cost: 2, Fragmentation: 98, Reserve: 5}, Prefs: Preferences{Spot: true}}, 0},
		// Without the running node the spot node is cheaper than going home.
		{"the running node ruled out", notRunning, Scoring{Weights: w}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ScoredPlacement(placed, nodes, econ, tt.allowed, tt.sc)
			if math.Abs(got.CostPerHour-tt.want) > 1e-9 || got.PowerWatts != 0 {
				t.Errorf("ScoredPlacement = %+v, want %v USD/h and 0 W", got, tt.want)
			}
		})
	}

	// Two pods of one workload: the first takes the spot node's marginal cost, the second joins it
	// there for nothing, as the scheduler would place a second replica on the node it just woke.
	two := []Placed{{Pod: pod, Node: 2, Device: -1}, {Pod: pod, Node: 2, Device: -1}}
	home2 := NewNode("A100", 32000, 65536, 4)
	Assign(&pod, &home2, Allocation{Device: -1})
	Assign(&pod, &home2, Allocation{Device: -1})
	got := ScoredPlacement(two, []Node{running, spot, home2}, econ, notRunning, Scoring{Weights: w})
	if math.Abs(got.CostPerHour-1) > 1e-9 {
		t.Errorf("two pods: %+v, want 1 USD/h", got)
	}
}

// TestScoredPlacementOffer: a cache of the untouched nodes' offers gives the same placement as
// working them out on each call.
func TestScoredPlacementOffer(t *testing.T) {
	pod := Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: 500}
	types := []PodType{{CPUMilli: 1000, GPUCount: 1, GPUMilli: 500, Popularity: 0.5}, {CPUMilli: 1000, GPUCount: 1, GPUMilli: 1000, Popularity: 0.5}}
	var nodes []Node
	var econ []*Economics
	for i := range 5 {
		n := NewNode("T4", 8000, 32768, 2)
		for range i % 3 {
			Assign(&pod, &n, Allocation{Device: BestFitDevice(&pod, &n)})
		}
		nodes = append(nodes, n)
		econ = append(econ, &Economics{PricePerHour: float64(1 + i), HostIdleWatts: 50, HostMaxWatts: 150, Spot: i%2 == 0})
	}
	placed := []Placed{{Pod: pod, Node: 1, Device: 0}, {Pod: pod, Node: 2, Device: 0}}
	all := func(int, int) bool { return true }
	sc := Scoring{Weights: DefaultWeights, Types: types, Prefs: Preferences{Spot: true}}
	want := ScoredPlacement(placed, nodes, econ, all, sc)
	calls := 0
	sc.Offer = func(j int, p *Pod) (Candidate, Allocation, bool) {
		calls++
		return OfferOf(p, &nodes[j], econ[j], types, Fragmentation(&nodes[j], types))
	}
	if got := ScoredPlacement(placed, nodes, econ, all, sc); got != want || calls == 0 {
		t.Errorf("with offers %+v (%d calls), without %+v", got, calls, want)
	}
}
