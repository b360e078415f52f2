package main

import (
	"slices"

	"kcloud.io/optimizer/pkg/model"
)

// placement is where one pod of the sequence went on one side: the index of its node in the fleet
// (-1 when it was placed nowhere) and the device of a GPU share (-1 when unknown: a scheduler that
// does not choose devices, or not a share).
type placement struct {
	node, device int
}

var nowhere = placement{node: -1, device: -1}

// fleet is what the comparison knows of the nodes, index-aligned: each node's empty capacity and
// its shape (nodes of one shape differ in nothing but their name, pkg/scheduler/nodeview's rule).
type fleet struct {
	empty  []model.Node
	shapes []int
}

// agreement is how one side's placements compare with the simulator's, pod by pod.
type agreement struct {
	pods     int
	same     int // on the simulator's node
	twin     int // on another node of the same shape and the same occupancy just before the pod
	nowhere  int // placed by neither
	oneSided int // placed by one side only
	// Placed on both sides, on nodes that differ by shape or, of one shape, by occupancy.
	otherShape, otherOccupancy int
	first                      []mismatch // the first mismatches, for the report
}

// mismatch is one pod that went elsewhere than the simulator put it.
type mismatch struct {
	pod       int
	want, got placement
	why       string
}

const keptMismatches = 5

// pct is the share of pods on the simulator's node, on an identical twin of it, or, as in the
// simulator, on no node.
func (a agreement) pct() float64 {
	if a.pods == 0 {
		return 100
	}
	return 100 * float64(a.same+a.twin+a.nowhere) / float64(a.pods)
}

// compare replays both sides' placements of the pods, each on its own copy of the empty fleet, and
// counts pod i as agreeing when got put it on want's node, or on a node of the same shape whose
// occupancy in got's replay just before pod i equals that of want's node in want's replay: the
// two are then the same choice, the way a scheduler breaking a tie between identical nodes makes it.
func compare(f fleet, pods []model.Pod, want, got []placement) agreement {
	a := agreement{pods: len(pods)}
	w, g := slices.Clone(f.empty), slices.Clone(f.empty)
	for i := range pods {
		wp, gp := want[i], got[i]
		why := ""
		switch {
		case wp.node < 0 && gp.node < 0:
			a.nowhere++
		case wp.node < 0 || gp.node < 0:
			a.oneSided++
			why = "placed by one side only"
		case wp.node == gp.node:
			a.same++
		case f.shapes[wp.node] != f.shapes[gp.node]:
			a.otherShape++
			why = "a node of another shape"
		case !sameOccupancy(&w[wp.node], &g[gp.node]):
			a.otherOccupancy++
			why = "a node of the same shape, otherwise occupied"
		default:
			a.twin++
		}
		if why != "" && len(a.first) < keptMismatches {
			a.first = append(a.first, mismatch{pod: i, want: wp, got: gp, why: why})
		}
		occupy(w, &pods[i], wp)
		occupy(g, &pods[i], gp)
	}
	return a
}

// occupy counts a placed pod on its node as kube.Occupy counts a node's pods: a share on its device
// when that has room, else on the best-fit device; a pod whose devices the node cannot hold (a
// share of a scheduler that knows no shares on a node without a device with room, whole devices on
// an overcommitted node) takes nothing but keeps the node awake.
func occupy(nodes []model.Node, p *model.Pod, pl placement) {
	if pl.node < 0 {
		return
	}
	n := &nodes[pl.node]
	a := model.Allocation{Device: -1}
	switch {
	case p.IsShare():
		a.Device = pl.device
		if a.Device < 0 || a.Device >= n.Devices || n.DeviceFree[a.Device] < p.GPUMilli {
			a.Device = model.BestFitDevice(p, n)
		}
		if a.Device < 0 {
			n.Pods++
			return
		}
	case p.GPUCount > 0 && n.WholeFreeDevices() < p.GPUCount:
		n.Pods++
		return
	}
	model.Assign(p, n, a)
}

// sameOccupancy reports whether two nodes hold the same: the same capacity, free CPU, memory and
// pods, and the same free milli-GPUs on their devices, in whatever order (devices are alike).
func sameOccupancy(a, b *model.Node) bool {
	if a.Model != b.Model || a.CPUMilli != b.CPUMilli || a.MemoryMiB != b.MemoryMiB || a.CPUFree != b.CPUFree ||
		a.MemoryFree != b.MemoryFree || a.Pods != b.Pods || a.AllocatedGPU != b.AllocatedGPU || a.Devices != b.Devices {
		return false
	}
	da, db := a.DeviceFree[:a.Devices:a.Devices], b.DeviceFree[:b.Devices:b.Devices]
	return slices.Equal(sorted(da), sorted(db))
}

func sorted(v []int64) []int64 {
	out := slices.Clone(v)
	slices.Sort(out)
	return out
}
