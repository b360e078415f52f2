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

func TestBestTotals(t *testing.T) {
	cheap := &Economics{PricePerHour: 4, HostIdleWatts: 100, HostMaxWatts: 200, Device: PowerCurve{{0, 50}, {1, 300}}}
	dear := &Economics{PricePerHour: 8, HostIdleWatts: 100, HostMaxWatts: 200, Device: PowerCurve{{0, 20}, {1, 150}}}
	gpu := Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: MilliPerGPU}
	fleet := func() []Node { return []Node{node(4), node(4), node(1)} }
	econ := []*Economics{dear, cheap, cheap}
	at := func(p Pod, n int) Placed {
		nodes := fleet()
		return Placed{Pod: p, Node: n, Current: Totals{AttributedCost(&p, &nodes[n], econ[n]), AttributedPower(&p, &nodes[n], econ[n])}}
	}
	all := func(int, int) bool { return true }
	tests := []struct {
		name    string
		placed  []Placed
		allowed func(int, int) bool
		want    Totals
	}{
		// The dear node draws less: its devices idle at 20 W against 50 W.
		{"already on the cheapest", []Placed{at(gpu, 1)}, all, Totals{CostPerHour: 1, PowerWatts: at(gpu, 0).Current.PowerWatts}},
		{"a cheaper node exists", []Placed{at(gpu, 0)}, all, Totals{CostPerHour: 1, PowerWatts: at(gpu, 0).Current.PowerWatts}},
		{"not allowed to move", []Placed{at(gpu, 0)}, func(_, n int) bool { return n == 0 }, at(gpu, 0).Current},
		// Five pods: four fit the cheap 4-GPU node, the fifth takes the 1-GPU node (price 4/1 = 4 > 8/4).
		{"moved pods take room", []Placed{at(gpu, 0), at(gpu, 0), at(gpu, 0), at(gpu, 0), at(gpu, 0)}, all,
			Totals{CostPerHour: 4*1 + 2, PowerWatts: 5 * at(gpu, 0).Current.PowerWatts}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := BestTotals(tc.placed, fleet(), econ, tc.allowed)
			if math.Abs(got.CostPerHour-tc.want.CostPerHour) > 1e-9 || math.Abs(got.PowerWatts-tc.want.PowerWatts) > 1e-9 {
				t.Errorf("BestTotals = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMeanTotals(t *testing.T) {
	cheap := &Economics{PricePerHour: 4}
	dear := &Economics{PricePerHour: 8}
	gpu := Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: MilliPerGPU}
	nodes := []Node{node(4), node(4), node(4, 0, 0, 0, 0)} // the third is full
	econ := []*Economics{dear, cheap, cheap}
	placed := []Placed{{Pod: gpu, Node: 0, Current: Totals{CostPerHour: 2}}}
	got := MeanTotals(placed, nodes, econ, func(int, int) bool { return true })
	if want := (2.0 + 1.0) / 2; math.Abs(got.CostPerHour-want) > 1e-9 {
		t.Errorf("mean cost = %v, want %v (its own node and the free cheap one; the full node does not count)", got.CostPerHour, want)
	}
}
