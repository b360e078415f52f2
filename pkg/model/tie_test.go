package model

import "testing"

func TestTieRank(t *testing.T) {
	e := Economics{PricePerHour: 2, HostIdleWatts: 100, HostMaxWatts: 300, Device: PowerCurve{{0, 30}, {1, 70}}, CarbonIntensity: 400}
	share := Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: 300}
	on := func(device int) Node {
		n := NewNode("T4", 8000, 16384, 2)
		Assign(&share, &n, Allocation{Device: device})
		return n
	}
	a, b := on(0), on(1)
	base := TieRank(42, &a, &e)
	if got := TieRank(42, &b, &e); got != base {
		t.Errorf("the same share on the other device of an identical node: rank %d, want %d", got, base)
	}
	if a.DeviceFree[0] != 700 {
		t.Errorf("TieRank changed the node: devices %v", a.DeviceFree[:2])
	}
	more := on(0)
	Assign(&Pod{CPUMilli: 500, MemoryMiB: 512}, &more, Allocation{Device: -1})
	spot := e
	spot.Spot = true
	dearer := e
	dearer.PricePerHour = 2.5
	other := NewNode("A10G", 8000, 16384, 2)
	Assign(&share, &other, Allocation{Device: 0})
	for name, r := range map[string]uint64{
		"another seed":        TieRank(43, &a, &e),
		"one more pod":        TieRank(42, &more, &e),
		"spot":                TieRank(42, &a, &spot),
		"another price":       TieRank(42, &a, &dearer),
		"another accelerator": TieRank(42, &other, &e),
	} {
		if r == base {
			t.Errorf("%s: the same rank %d as the node it differs from", name, r)
		}
	}
}

func TestTied(t *testing.T) {
	best := ScoreUnits(87.5)
	if !Tied(ScoreUnits(87.5-1e-9), best) || Tied(ScoreUnits(87.5-3e-9), best) {
		t.Errorf("ties within one unit of 1e-9 of a point only")
	}
}

// Smaller nodes win ties first, then fuller ones; the hash decides only between nodes of one size
// and one free capacity.
func TestTieRankOrder(t *testing.T) {
	var e Economics
	whole := Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: 1000}
	small, big, fuller := NewNode("T4", 8000, 16384, 2), NewNode("T4", 8000, 16384, 4), NewNode("T4", 8000, 16384, 4)
	Assign(&whole, &fuller, Allocation{Device: -1})
	for seed := int64(0); seed < 20; seed++ {
		s, f, b := TieRank(seed, &small, &e), TieRank(seed, &fuller, &e), TieRank(seed, &big, &e)
		if s >= f || f >= b {
			t.Fatalf("seed %d: want 2 devices < 4 with one taken < 4 free", seed)
		}
	}
}
