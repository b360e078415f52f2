package model

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestPeriodStart(t *testing.T) {
	tests := []struct {
		at     string
		period Period
		want   string
	}{
		{"2026-11-26T13:45:00Z", PeriodDay, "2026-11-26T00:00:00Z"},
		{"2026-11-26T13:45:00Z", PeriodWeek, "2026-11-23T00:00:00Z"}, // a Thursday; Monday the 23rd
		{"2026-11-23T00:00:00Z", PeriodWeek, "2026-11-23T00:00:00Z"}, // Monday itself
		{"2026-11-29T23:59:59Z", PeriodWeek, "2026-11-23T00:00:00Z"}, // Sunday
		{"2026-11-26T13:45:00Z", PeriodMonth, "2026-11-01T00:00:00Z"},
		{"2026-11-26T01:00:00+09:00", PeriodDay, "2026-11-25T00:00:00Z"}, // UTC, not local time
	}
	for _, tc := range tests {
		got, err := PeriodStart(at(tc.at), tc.period)
		if err != nil || !got.Equal(at(tc.want)) {
			t.Errorf("PeriodStart(%s, %s) = %v, %v; want %s", tc.at, tc.period, got, err, tc.want)
		}
	}
	if _, err := PeriodStart(at("2026-11-26T00:00:00Z"), "year"); err == nil {
		t.Error("PeriodStart(year): want an error")
	}
}

func TestLedgerAdvance(t *testing.T) {
	day := at("2026-11-26T00:00:00Z")
	tests := []struct {
		name     string
		ledger   Ledger
		now      string
		want     Ledger
		wantFrom string
	}{
		{"new ledger counts from the period start", Ledger{}, "2026-11-26T10:00:00Z",
			Ledger{PeriodStart: day, AccountedUntil: day}, "2026-11-26T00:00:00Z"},
		{"continues from where it stopped", Ledger{PeriodStart: day, AccountedUntil: at("2026-11-26T09:00:00Z"), Amount: 12.5}, "2026-11-26T10:00:00Z",
			Ledger{PeriodStart: day, AccountedUntil: at("2026-11-26T09:00:00Z"), Amount: 12.5}, "2026-11-26T09:00:00Z"},
		{"a new period starts over", Ledger{PeriodStart: day, AccountedUntil: at("2026-11-26T23:59:00Z"), Amount: 99}, "2026-11-27T00:01:00Z",
			Ledger{PeriodStart: at("2026-11-27T00:00:00Z"), AccountedUntil: at("2026-11-27T00:00:00Z")}, "2026-11-27T00:00:00Z"},
		{"a clock that went back counts nothing more", Ledger{PeriodStart: day, AccountedUntil: at("2026-11-26T11:00:00Z"), Amount: 3}, "2026-11-26T10:00:00Z",
			Ledger{PeriodStart: day, AccountedUntil: at("2026-11-26T11:00:00Z"), Amount: 3}, "2026-11-26T10:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, from, err := tc.ledger.Advance(at(tc.now), PeriodDay)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ledger (-want +got):\n%s", diff)
			}
			if !from.Equal(at(tc.wantFrom)) {
				t.Errorf("from = %v, want %s", from, tc.wantFrom)
			}
		})
	}
}

func TestHoursWithin(t *testing.T) {
	from, to := at("2026-11-26T10:00:00Z"), at("2026-11-26T12:00:00Z")
	tests := []struct {
		name string
		iv   Interval
		want float64
	}{
		{"running through the window", Interval{Start: at("2026-11-26T08:00:00Z")}, 2},
		{"started inside", Interval{Start: at("2026-11-26T11:30:00Z")}, 0.5},
		{"ended inside", Interval{Start: at("2026-11-26T08:00:00Z"), End: at("2026-11-26T10:15:00Z")}, 0.25},
		{"ended before", Interval{Start: at("2026-11-26T08:00:00Z"), End: at("2026-11-26T09:00:00Z")}, 0},
		{"starts after", Interval{Start: at("2026-11-26T13:00:00Z")}, 0},
	}
	for _, tc := range tests {
		if got := tc.iv.HoursWithin(from, to); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestThresholdsReached(t *testing.T) {
	tests := []struct {
		used, budget float64
		thresholds   []int32
		want         int32
	}{
		{10, 100, []int32{50, 80, 100}, 0},
		{50, 100, []int32{50, 80, 100}, 50},
		{85, 100, []int32{80, 50, 100}, 80},
		{120, 100, []int32{50, 80, 100}, 100},
		{5, 0, []int32{50}, 0},
	}
	for _, tc := range tests {
		if got := ThresholdsReached(tc.used, tc.budget, tc.thresholds); got != tc.want {
			t.Errorf("ThresholdsReached(%v, %v, %v) = %d, want %d", tc.used, tc.budget, tc.thresholds, got, tc.want)
		}
	}
}

func TestWorkloadPlacement(t *testing.T) {
	od := &Economics{PricePerHour: 8, HostIdleWatts: 100, HostMaxWatts: 200, Device: PowerCurve{{0, 50}, {1, 300}}}
	spot := &Economics{PricePerHour: 3, HostIdleWatts: 100, HostMaxWatts: 200, Device: PowerCurve{{0, 50}, {1, 300}}, Spot: true}
	big := &Economics{PricePerHour: 10, HostIdleWatts: 200, HostMaxWatts: 400, Device: PowerCurve{{0, 40}, {1, 400}}}
	gpu := Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: MilliPerGPU}
	twoGPU := Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 2, GPUMilli: MilliPerGPU}
	on := func(n Node, pods ...Pod) Node {
		for i := range pods {
			Assign(&pods[i], &n, Allocation{Device: BestFitDevice(&pods[i], &n)})
		}
		return n
	}
	all := func(int, int) bool { return true }
	tests := []struct {
		name    string
		nodes   []Node
		econ    []*Economics
		placed  []Placed
		allowed func(int, int) bool
		current float64
		best    float64
	}{
		{"alone on a dear node, an empty cheap one waits", []Node{on(node(2), gpu), node(2)}, []*Economics{od, spot},
			[]Placed{{Pod: gpu, Node: 0}}, all, 8, 3},
		{"not allowed to move", []Node{on(node(2), gpu), node(2)}, []*Economics{od, spot},
			[]Placed{{Pod: gpu, Node: 0}}, func(_, n int) bool { return n == 0 }, 8, 8},
		// Filling a 4-GPU node costs the cluster its price; an 8-GPU node half used would cost more.
		{"filling a node beats half of a bigger one", []Node{on(node(4), twoGPU, twoGPU), node(8)}, []*Economics{od, big},
			[]Placed{{Pod: twoGPU, Node: 0}, {Pod: twoGPU, Node: 0}}, all, 8, 8},
		{"sharing a node that runs anyway costs nothing more", []Node{on(node(2), gpu), on(node(2), gpu)}, []*Economics{od, spot},
			[]Placed{{Pod: gpu, Node: 0}}, all, 8, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := WorkloadPlacement(tc.placed, tc.nodes, tc.econ, tc.allowed)
			if math.Abs(got.Current.CostPerHour-tc.current) > 1e-9 || math.Abs(got.Best.CostPerHour-tc.best) > 1e-9 {
				t.Errorf("cost: current %v best %v, want %v %v", got.Current.CostPerHour, got.Best.CostPerHour, tc.current, tc.best)
			}
			if got.Best.PowerWatts > got.Current.PowerWatts+1e-9 {
				t.Errorf("best power %v above current %v", got.Best.PowerWatts, got.Current.PowerWatts)
			}
		})
	}
}
