package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"kcloud.io/optimizer/pkg/model"
)

// Nodes 0 and 1 are identical 2-GPU nodes (shape 0); node 2 has the same capacity but another shape
// (another price, say); node 3 has no GPU.
func testFleet() fleet {
	gpu := model.NewNode("T4", 8000, 16384, 2)
	return fleet{empty: []model.Node{gpu, gpu, gpu, model.NewNode("", 8000, 16384, 0)}, shapes: []int{0, 0, 1, 2}}
}

var (
	share = model.Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: 500}
	whole = model.Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: 1000}
	cpu   = model.Pod{CPUMilli: 1000, MemoryMiB: 1024}
)

func at(node, device int) placement { return placement{node: node, device: device} }

func TestCompare(t *testing.T) {
	tests := []struct {
		name      string
		pods      []model.Pod
		want, got []placement
		agree     agreement // first is checked only for its length
		mismatch  int
	}{{
		name: "the same nodes",
		pods: []model.Pod{share, whole, cpu},
		want: []placement{at(0, 1), at(2, -1), at(3, -1)},
		got:  []placement{at(0, 1), at(2, -1), at(3, -1)},
		// A share's device does not matter for the node.
		agree: agreement{pods: 3, same: 3},
	}, {
		name: "a tie between identical empty nodes, then packing on each side's choice",
		pods: []model.Pod{share, share, whole},
		want: []placement{at(0, 0), at(0, 0), at(0, -1)},
		// Device 1 of node 1 holds what device 0 of node 0 holds: devices are alike.
		got:   []placement{at(1, 1), at(1, 1), at(1, -1)},
		agree: agreement{pods: 3, twin: 3},
	}, {
		name: "the same shape, but the scheduler's node is empty where the simulator's is not",
		pods: []model.Pod{whole, whole},
		want: []placement{at(0, -1), at(0, -1)},
		got:  []placement{at(0, -1), at(1, -1)},
		// Pod 1: node 1 is empty in the scheduler's record, node 0 holds pod 0 in the simulator's.
		agree:    agreement{pods: 2, same: 1, otherOccupancy: 1},
		mismatch: 1,
	}, {
		name: "identical nodes in swapped roles",
		pods: []model.Pod{whole, share, share},
		want: []placement{at(0, -1), at(1, 0), at(1, 0)},
		got:  []placement{at(1, -1), at(0, 0), at(0, 1)},
		// Pod 1 goes to the node each side left empty, pod 2 beside it.
		agree: agreement{pods: 3, twin: 3},
	}, {
		name: "the scheduler packs where the simulator spread",
		pods: []model.Pod{whole, whole},
		want: []placement{at(0, -1), at(1, -1)},
		got:  []placement{at(0, -1), at(0, -1)},
		// Pod 1: node 1 is empty in the simulator's record, node 0 holds pod 0 in the scheduler's.
		agree:    agreement{pods: 2, same: 1, otherOccupancy: 1},
		mismatch: 1,
	}, {
		name:     "another shape",
		pods:     []model.Pod{whole, cpu},
		want:     []placement{at(0, -1), at(3, -1)},
		got:      []placement{at(2, -1), at(0, -1)},
		agree:    agreement{pods: 2, otherShape: 2},
		mismatch: 2,
	}, {
		name:     "placed nowhere on one side or both",
		pods:     []model.Pod{whole, whole, whole},
		want:     []placement{nowhere, nowhere, at(0, -1)},
		got:      []placement{nowhere, at(0, -1), nowhere},
		agree:    agreement{pods: 3, nowhere: 1, oneSided: 2},
		mismatch: 2,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compare(testFleet(), tt.pods, tt.want, tt.got)
			if len(got.first) != tt.mismatch {
				t.Errorf("%d mismatches kept, want %d: %+v", len(got.first), tt.mismatch, got.first)
			}
			got.first = nil
			if diff := cmp.Diff(tt.agree, got, cmp.AllowUnexported(agreement{})); diff != "" {
				t.Errorf("agreement (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAgreementPct(t *testing.T) {
	a := agreement{pods: 8, same: 4, twin: 2, nowhere: 1, otherShape: 1}
	if got := a.pct(); got != 87.5 {
		t.Errorf("pct = %v, want 87.5", got)
	}
}

func TestSameOccupancy(t *testing.T) {
	a, b := model.NewNode("T4", 8000, 16384, 2), model.NewNode("T4", 8000, 16384, 2)
	model.Assign(&share, &a, model.Allocation{Device: 0})
	model.Assign(&share, &b, model.Allocation{Device: 1})
	if !sameOccupancy(&a, &b) {
		t.Error("a share on device 0 or on device 1 of identical nodes: want the same occupancy")
	}
	model.Assign(&cpu, &b, model.Allocation{Device: -1})
	if sameOccupancy(&a, &b) {
		t.Error("one more CPU pod on one node: want different occupancies")
	}
}

// A share on a node with no device that holds it (a scheduler that knows no shares put it there)
// takes nothing, as kube.Occupy counts it, but keeps the node awake.
func TestOccupyUncountedShare(t *testing.T) {
	nodes := testFleet().empty
	occupy(nodes, &share, at(3, -1))
	want := model.NewNode("", 8000, 16384, 0)
	want.Pods = 1
	if diff := cmp.Diff(want, nodes[3]); diff != "" {
		t.Errorf("node (-want +got):\n%s", diff)
	}
	occupy(nodes, &share, at(0, 5)) // a device the node does not have: the best-fit one
	if nodes[0].DeviceFree[0] != 500 || nodes[0].AllocatedGPU != 500 {
		t.Errorf("share on node 0: devices %v, allocated %d; want 500 on device 0", nodes[0].DeviceFree[:2], nodes[0].AllocatedGPU)
	}
}
