package model

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	pricey = &Economics{PricePerHour: 3, HostIdleWatts: 100, HostMaxWatts: 200, Device: PowerCurve{{0, 50}, {1, 300}}}
	cheap  = &Economics{PricePerHour: 0.5, HostIdleWatts: 50, HostMaxWatts: 100, Device: PowerCurve{{0, 20}, {1, 70}}}
	// frugal costs like pricey but draws less.
	frugal  = &Economics{PricePerHour: 3, HostIdleWatts: 40, HostMaxWatts: 60, Device: PowerCurve{{0, 10}, {1, 40}}}
	gpuPod  = Pod{CPUMilli: 4000, MemoryMiB: 16384, GPUCount: 1, GPUMilli: MilliPerGPU}
	twoGPUs = Pod{CPUMilli: 4000, MemoryMiB: 16384, GPUCount: 2, GPUMilli: MilliPerGPU}
)

// cluster is a test fleet: node i has devices[i] GPUs and economics econ[i].
type cluster struct {
	nodes []Node
	econ  []*Economics
}

func newCluster(devices []int, econ ...*Economics) *cluster {
	c := &cluster{econ: econ}
	for _, d := range devices {
		c.nodes = append(c.nodes, NewNode("X", 16000, 65536, d))
	}
	return c
}

// place puts a pod on node j and returns it as a candidate of namespace ns.
func (c *cluster) place(p Pod, j int, ns string) RebalanceCandidate {
	a := Assign(&p, &c.nodes[j], Allocation{Device: BestFitDevice(&p, &c.nodes[j])})
	return RebalanceCandidate{Placed: Placed{Pod: p, Node: j, Device: a.Device}, Namespace: ns}
}

func TestPlanRebalance(t *testing.T) {
	base := RebalanceConfig{MinSavingUSDPerHour: 0.1}
	type move struct{ Pod, From, To int }
	type unit struct {
		From     int
		Moves    []move
		Deferred int
		Net      Totals
	}
	tests := []struct {
		name  string
		build func() (RebalanceInput, RebalanceConfig)
		want  []unit
	}{
		{
			name: "a pod alone on a pricey node moves to an empty cheap one: saves the price difference",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{1, 1}, pricey, cheap)
				p := c.place(gpuPod, 0, "a")
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{p}}, base
			},
			// 3 - 0.5 USD/h; draw: pricey 100+25 (CPU) + 300 = 425 W, cheap 50+12.5+70 = 132.5 W.
			want: []unit{{From: 0, Moves: []move{{0, 0, 1}}, Net: Totals{2.5, 292.5}}},
		},
		{
			name: "the disruption is charged: restart hours of the pod's cost and power",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{1, 1}, pricey, cheap)
				p := c.place(gpuPod, 0, "a")
				cfg := base
				cfg.RestartHours = 0.5 // half an hour of 3 USD/h and 425 W
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{p}}, cfg
			},
			want: []unit{{From: 0, Moves: []move{{0, 0, 1}}, Net: Totals{1, 80}}},
		},
		{
			name: "a disruption larger than the saving: no move",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{1, 1}, pricey, cheap)
				p := c.place(gpuPod, 0, "a")
				cfg := base
				cfg.RestartHours = 1
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{p}}, cfg
			},
		},
		{
			name: "a saving under the threshold: no move",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{1, 1}, pricey, cheap)
				p := c.place(gpuPod, 0, "a")
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{p}}, RebalanceConfig{MinSavingUSDPerHour: 2.6}
			},
		},
		{
			name: "a node that keeps another pod: draining saves no money, no move",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{2, 1}, pricey, cheap)
				c.place(gpuPod, 0, "other") // not a candidate
				p := c.place(gpuPod, 0, "a")
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{p}}, base
			},
		},
		{
			name: "two pods on one pricey node move together to a cheap node with room for both",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{2, 2}, pricey, cheap)
				a, b := c.place(gpuPod, 0, "a"), c.place(gpuPod, 0, "a")
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{a, b}}, base
			},
			// pricey: 100+50+600 = 750 W; cheap: 50+25+140 = 215 W.
			want: []unit{{From: 0, Moves: []move{{0, 0, 1}, {1, 0, 1}}, Net: Totals{2.5, 535}}},
		},
		{
			name: "two sources, one cheap node: the cheap node is booked once, by the larger saving",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{1, 1, 1}, frugal, pricey, cheap)
				a, b := c.place(gpuPod, 0, "a"), c.place(gpuPod, 1, "a")
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{a, b}}, base
			},
			// Both save 2.5 USD/h; the pricey node's pod saves more power (292.5 W, where the
			// frugal node's would draw 47.5 W more), so it takes the cheap node; the frugal
			// node's pod has nowhere cheaper left.
			want: []unit{{From: 1, Moves: []move{{1, 1, 2}}, Net: Totals{2.5, 292.5}}},
		},
		{
			name: "a pod not allowed on the cheap node stays",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{1, 1}, pricey, cheap)
				p := c.place(gpuPod, 0, "a")
				p.Allowed = func(node int) bool { return node != 1 }
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{p}}, base
			},
		},
		{
			name: "a pod that fits nowhere else stays",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{2, 1}, pricey, cheap)
				p := c.place(twoGPUs, 0, "a")
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{p}}, base
			},
		},
		{
			name: "a power cap the destination would break: the pod goes to the next best node",
			build: func() (RebalanceInput, RebalanceConfig) {
				mid := &Economics{PricePerHour: 1, HostIdleWatts: 40, HostMaxWatts: 60, Device: PowerCurve{{0, 10}, {1, 40}}}
				c := newCluster([]int{1, 4, 1}, pricey, cheap, mid)
				p := c.place(gpuPod, 0, "a")
				c.place(gpuPod, 1, "other") // wakes the 4-GPU cheap node: joining it costs nothing
				// On the 4-GPU cheap node the pod is charged a quarter of its 130 W idle, 12.5 W
				// of CPU and 50 W of device load = 95 W; on mid 40+10 + 5 + 30 = 85 W.
				p.Limits = []int{0}
				limits := []Limit{{Source: "WorkloadOptimizer a/w maxPowerUsage", Kind: LimitPowerWatts, Cap: 500, Used: 425 + 410}}
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{p}, Limits: limits}, base
			},
			// 410 W of the workload's other pods + 95 > 500: not the awake cheap node but mid,
			// woken at 1 USD/h: 2 USD/h and 425 - 85 W saved.
			want: []unit{{From: 0, Moves: []move{{0, 0, 2}}, Net: Totals{2, 340}}},
		},
		{
			name: "a cost cap that holds: the move is planned",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{1, 1}, pricey, cheap)
				p := c.place(gpuPod, 0, "a")
				p.Limits = []int{0}
				limits := []Limit{{Source: "WorkloadOptimizer a/w maxCostPerHour", Kind: LimitCostPerHour, Cap: 3.5, Used: 3}}
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{p}, Limits: limits}, base
			},
			want: []unit{{From: 0, Moves: []move{{0, 0, 1}}, Net: Totals{2.5, 292.5}}},
		},
		{
			name: "power only: a move that saves watts but not money",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{1, 1}, pricey, frugal)
				p := c.place(gpuPod, 0, "a")
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{p}}, RebalanceConfig{MinSavingWatts: 100}
			},
			// frugal: 40 + 5 + 40 = 85 W against 425 W.
			want: []unit{{From: 0, Moves: []move{{0, 0, 1}}, Net: Totals{0, 340}}},
		},
		{
			name: "both goals: a cheaper move that draws more is refused",
			build: func() (RebalanceInput, RebalanceConfig) {
				hungry := &Economics{PricePerHour: 1, HostIdleWatts: 300, HostMaxWatts: 400, Device: PowerCurve{{0, 100}, {1, 400}}}
				c := newCluster([]int{1, 1}, pricey, hungry)
				p := c.place(gpuPod, 0, "a")
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{p}}, RebalanceConfig{MinSavingUSDPerHour: 0.1, MinSavingWatts: 1}
			},
		},
		{
			name: "per-node cap: a drain of two pods evicts one now and defers the other",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{2, 2}, pricey, cheap)
				a, b := c.place(gpuPod, 0, "a"), c.place(gpuPod, 0, "a")
				cfg := base
				cfg.MaxPerNode = 1
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{a, b}}, cfg
			},
			want: []unit{{From: 0, Moves: []move{{0, 0, 1}}, Deferred: 1, Net: Totals{2.5, 535}}},
		},
		{
			name: "per-node cap: the less important pod moves first, whatever the candidate order",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{2, 2}, pricey, cheap)
				a, b := c.place(gpuPod, 0, "a"), c.place(gpuPod, 0, "a")
				a.Rank, b.Rank = Rank{Optimizer: 90}, Rank{Optimizer: 10}
				cfg := base
				cfg.MaxPerNode = 1
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{a, b}}, cfg
			},
			want: []unit{{From: 0, Moves: []move{{1, 0, 1}}, Deferred: 1, Net: Totals{2.5, 535}}},
		},
		{
			name: "per-node cap: a lower PriorityClass moves before a lower optimizer priority",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{2, 2}, pricey, cheap)
				a, b := c.place(gpuPod, 0, "a"), c.place(gpuPod, 0, "a")
				a.Rank, b.Rank = Rank{Class: 1000, Optimizer: 0}, Rank{Class: 0, Optimizer: 100}
				cfg := base
				cfg.MaxPerNode = 1
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{a, b}}, cfg
			},
			want: []unit{{From: 0, Moves: []move{{1, 0, 1}}, Deferred: 1, Net: Totals{2.5, 535}}},
		},
		{
			name: "per-namespace and total caps",
			build: func() (RebalanceInput, RebalanceConfig) {
				c := newCluster([]int{1, 1, 1, 1, 1, 1, 1, 1}, pricey, pricey, pricey, pricey, cheap, cheap, cheap, cheap)
				pods := []RebalanceCandidate{c.place(gpuPod, 0, "a"), c.place(gpuPod, 1, "a"), c.place(gpuPod, 2, "b"), c.place(gpuPod, 3, "c")}
				cfg := base
				cfg.MaxPerNamespace, cfg.MaxTotal = 1, 2
				return RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: pods}, cfg
			},
			// Equal savings go by source node: node 0 (namespace a), node 1 is capped out by
			// namespace a, node 2 (b), then the total cap of 2 stops the run.
			want: []unit{{From: 0, Moves: []move{{0, 0, 4}}, Net: Totals{2.5, 292.5}}, {From: 2, Moves: []move{{2, 2, 5}}, Net: Totals{2.5, 292.5}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, cfg := tc.build()
			plan := PlanRebalance(in, cfg)
			var got []unit
			for _, u := range plan.Units {
				g := unit{From: u.From, Deferred: u.Deferred, Net: Totals{round3(u.Net.CostPerHour), round3(u.Net.PowerWatts)}}
				for _, m := range u.Moves {
					g.Moves = append(g.Moves, move{m.Pod, m.From, m.To})
				}
				got = append(got, g)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanRebalanceShareDevice(t *testing.T) {
	c := newCluster([]int{1, 2}, pricey, cheap)
	share := Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: 400}
	p := c.place(share, 0, "a")
	c.place(Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: 500}, 1, "other")
	plan := PlanRebalance(RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{p}}, RebalanceConfig{MinSavingUSDPerHour: 0.1})
	if plan.Evictions() != 1 {
		t.Fatalf("plan %+v, want one move", plan)
	}
	if m := plan.Units[0].Moves[0]; m.To != 1 || m.Device != 0 {
		t.Errorf("move %+v, want to node 1 device 0 (500 milli free: the best fit)", m)
	}
}

func TestPlanRebalanceLeavesInputUnchanged(t *testing.T) {
	c := newCluster([]int{1, 1}, pricey, cheap)
	p := c.place(gpuPod, 0, "a")
	before := append([]Node(nil), c.nodes...)
	_ = PlanRebalance(RebalanceInput{Nodes: c.nodes, Econ: c.econ, Pods: []RebalanceCandidate{p}}, RebalanceConfig{MinSavingUSDPerHour: 0.1})
	if diff := cmp.Diff(before, c.nodes); diff != "" {
		t.Errorf("nodes changed (-before +after):\n%s", diff)
	}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
