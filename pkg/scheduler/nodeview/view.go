package nodeview

import (
	"fmt"
	"iter"
	"sync"

	corev1 "k8s.io/api/core/v1"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// View is a node's model state at one generation of its NodeInfo, with the placements last worked
// out on it: consecutive pods of one shape (a Deployment's replicas, a burst) then cost a short scan
// per node instead of a fragmentation computation. Only the last placementsKept shapes are kept: a
// view lives as long as its node does not change, and one entry per shape ever seen, on every
// idle node, grows without bound on a cluster of varied pods (a map's growth was most of a Filter).
type View struct {
	generation int64
	// unannotated: some share pod on the node has no device written yet, so its device comes
	// from the shares held in flight, which change without a new generation.
	unannotated bool
	// Node is the node's occupancy (kube.Occupy); read it, never change it: the view is shared.
	Node model.Node
	// requests are the requests of the pods counted, by pod object, which the node's next view
	// reuses for the pods it still has: a new generation usually brings one new pod object, and
	// summing a pod's containers (kube.PodRequest) allocates.
	requests []podRequest
	frag     float64
	types    []model.PodType
	mu       sync.Mutex
	// keys[i] is the shape placements[i] was worked out for, apart from them so that a lookup
	// reads a few cache lines, not every placement; the last hit is tried first.
	keys       [placementsKept]shape
	placements [placementsKept]Placement
	kept       int // entries in use
	last       int // the entry of the last hit
	next       int // the entry the next new shape overwrites
	// rank is model.TieRank of the node under rankSeed, once ranked.
	rank     uint64
	rankSeed int64
	ranked   bool
}

type podRequest struct {
	pod *corev1.Pod
	req model.Pod
}

// placementsKept is how many recent pod shapes a view keeps placements for.
const placementsKept = 8

// shape is what a placement depends on: the pod's request (pods with model constraints are not cached).
type shape struct {
	cpu, mem, milli int64
	count           int
}

// Placement is where on a node a pod goes and what it offers there.
type Placement struct {
	// Alloc is the device chosen for a share (-1 when none holds it; whole devices are the device
	// plugin's to pick).
	Alloc model.Allocation
	// Candidate is what the node offers the pod (model.NewCandidate); zero when Alloc found no device.
	Candidate model.Candidate
}

// View returns the node's view, rebuilt only when the NodeInfo's generation changed. Shares held
// in flight but not yet visible on their pods change no generation, so a node with any is always
// rebuilt. Whether it has any depends only on its pods, hence on the generation: it is found once
// per build, not on every call (a scan of every pod of every node, per cycle).
func (s *Shared) View(ni fwk.NodeInfo, f *Facts) *View {
	if v := f.view.Load(); v != nil && v.generation == ni.GetGeneration() && !v.unannotated {
		return v
	}
	types := s.Types()
	n, requests := s.occupancy(ni, f, f.view.Load())
	v := &View{generation: ni.GetGeneration(), unannotated: UnannotatedShare(ni), Node: n, requests: requests,
		frag: model.Fragmentation(&n, types), types: types}
	f.view.Store(v)
	return v
}

// occupancy is the model's view of a node: capacity from allocatable, and what its pods (bound,
// assumed, or holding a share in flight) hold, counted by kube.Occupy; with the requests read,
// those of the node's previous view (nil for none) taken again for the pod objects it had.
func (s *Shared) occupancy(ni fwk.NodeInfo, f *Facts, prev *View) (model.Node, []podRequest) {
	alloc := ni.GetAllocatable()
	n := model.NewNode(f.Facts.AcceleratorModel, alloc.GetMilliCPU(), alloc.GetMemory()>>20, f.Facts.AcceleratorCount)
	requests := make([]podRequest, 0, len(ni.GetPods()))
	request := func(pod *corev1.Pod) model.Pod {
		if prev != nil {
			for _, r := range prev.requests {
				if r.pod == pod {
					requests = append(requests, r)
					return r.req
				}
			}
		}
		r := podRequest{pod: pod, req: kube.PodRequest(pod)}
		requests = append(requests, r)
		return r.req
	}
	// A pod Occupy cannot count (overcommitted devices) still runs there: the node is awake.
	n.Pods += kube.Occupy(&n, podsOf(ni), kube.OccupyOptions{Request: request, PendingDevice: s.pending})
	return n, requests
}

func podsOf(ni fwk.NodeInfo) iter.Seq[*corev1.Pod] {
	return func(yield func(*corev1.Pod) bool) {
		for _, pi := range ni.GetPods() {
			if !yield(pi.GetPod()) {
				return
			}
		}
	}
}

// UnannotatedShare reports whether a share pod on the node has no device written yet: its device
// comes from the shares held in flight, so the node's view is worked out again on every call.
func UnannotatedShare(ni fwk.NodeInfo) bool {
	for _, pi := range ni.GetPods() {
		if p := pi.GetPod(); kube.IsShare(p) && kube.DeviceIndex(p) < 0 {
			return true
		}
	}
	return false
}

// Place returns where on the node a pod of this shape goes, with the fragmentation and the marginal
// cost, power and carbon it adds.
func (v *View) Place(p *model.Pod, e *model.Economics) Placement {
	key := shape{cpu: p.CPUMilli, mem: p.MemoryMiB, milli: p.GPUMilli, count: p.GPUCount}
	cacheable := len(p.Models) == 0
	if cacheable {
		v.mu.Lock()
		if v.kept > 0 && v.keys[v.last] == key {
			pl := v.placements[v.last]
			v.mu.Unlock()
			return pl
		}
		for i := range v.kept {
			if v.keys[i] == key {
				v.last = i
				pl := v.placements[i]
				v.mu.Unlock()
				return pl
			}
		}
		v.mu.Unlock()
	}
	a, d := model.PlaceShare(p, &v.Node, v.types, v.frag)
	pl := Placement{Alloc: a}
	if !p.IsShare() || a.Device >= 0 {
		pl.Candidate = model.NewCandidate(p, &v.Node, a, d, e)
	}
	if cacheable {
		v.mu.Lock()
		v.keys[v.next], v.placements[v.next], v.last = key, pl, v.next
		v.kept = max(v.kept, v.next+1)
		v.next = (v.next + 1) % placementsKept
		v.mu.Unlock()
	}
	return pl
}

// TieRank is the node's model.TieRank in this state: the node of lowest rank wins a tie.
func (v *View) TieRank(seed int64, e *model.Economics) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.ranked || v.rankSeed != seed {
		v.rank, v.rankSeed, v.ranked = model.TieRank(seed, &v.Node, e), seed, true
	}
	return v.rank
}

// ShareStatus refuses a node where no device has room for the pod's share; nil for a pod that asks
// for no share, or when one has. It is the one check of a share's room: the share plugin filters
// by it, and the score plugin, which can price only a placement that exists, checks it too.
func ShareStatus(p *model.Pod, v *View) *fwk.Status {
	if !p.IsShare() || model.Fits(p, &v.Node) {
		return nil
	}
	return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("no device with %d milli-GPU free", p.GPUMilli))
}
