package kcloud

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// nodeFacts are a node's catalog facts and economics, cached per node object, and its latest view.
type nodeFacts struct {
	facts catalog.NodeFacts
	econ  model.Economics
	shape int // nodes with the same shapeKey have the same shape
	// reservations are the rebalancer's reservations written on the node (kube.NodeReservations).
	reservations []kube.Reservation
	err          error
	view         atomic.Pointer[nodeView]
}

// factsCache is read by the scheduler's parallel Filter and Score workers: a sync.Map keeps reads
// free of lock contention. It is keyed by the node object, which the informer replaces whenever
// the node changes: hashing and comparing a pointer is cheaper than a name, for every node of
// every cycle.
type factsCache struct {
	cat *catalog.Catalog
	m   sync.Map // *corev1.Node -> *nodeFacts

	mu     sync.Mutex
	byName map[string]*corev1.Node // the object each node's facts were last worked out for
	shapes map[string]int          // shapeKey -> shape number, so that a cycle compares numbers, not keys
}

func (c *factsCache) get(node *corev1.Node) *nodeFacts {
	if v, ok := c.m.Load(node); ok {
		return v.(*nodeFacts)
	}
	c.mu.Lock()
	old := c.byName[node.Name]
	c.mu.Unlock()
	// Most node updates are heartbeats (status conditions): the facts of the previous object hold.
	var f *nodeFacts
	if old != nil && sameFacts(old, node) {
		if v, ok := c.m.Load(old); ok {
			f = v.(*nodeFacts)
		}
	}
	if f == nil {
		f = &nodeFacts{}
		f.facts, f.econ, f.err = kube.NodeEconomics(c.cat, node)
		if kube.HasReservations(node) {
			f.reservations = kube.NodeReservations(node)
		}
		key := shapeKey(node)
		c.mu.Lock()
		f.shape = c.shapeNumber(key)
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byName == nil {
		c.byName = map[string]*corev1.Node{}
	}
	// The node's previous object is dropped, so that the cache holds one entry per node.
	if old, ok := c.byName[node.Name]; ok && old != node {
		c.m.Delete(old)
	}
	c.byName[node.Name] = node
	c.m.Store(node, f)
	return f
}

// sameFacts reports whether two objects of a node have everything the facts are made of in common:
// labels, annotations (reservations), taints, schedulability, capacity.
func sameFacts(a, b *corev1.Node) bool {
	return a.Name == b.Name && maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations) &&
		a.Spec.Unschedulable == b.Spec.Unschedulable && slices.EqualFunc(a.Spec.Taints, b.Spec.Taints, func(x, y corev1.Taint) bool { return x.MatchTaint(&y) && x.Value == y.Value }) &&
		sameResources(a.Status.Allocatable, b.Status.Allocatable) && sameResources(a.Status.Capacity, b.Status.Capacity)
}

func sameResources(a, b corev1.ResourceList) bool {
	return maps.EqualFunc(a, b, func(x, y resource.Quantity) bool { return x.Cmp(y) == 0 })
}

func (c *factsCache) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byName[name]; ok {
		c.m.Delete(old)
		delete(c.byName, name)
	}
}

// shapeNumber numbers shape keys; c.mu is held.
func (c *factsCache) shapeNumber(key string) int {
	if c.shapes == nil {
		c.shapes = map[string]int{}
	}
	n, ok := c.shapes[key]
	if !ok {
		n = len(c.shapes)
		c.shapes[key] = n
	}
	return n
}

// reservation is a pod placed by this scheduler whose device choice the API may not show yet.
type reservation struct {
	node  string
	alloc model.Allocation
}

type inflight struct {
	mu sync.RWMutex
	m  map[types.UID]reservation
}

func (f *inflight) get(uid types.UID) (reservation, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.m[uid]
	return r, ok
}

func (f *inflight) set(uid types.UID, r reservation) {
	f.mu.Lock()
	f.m[uid] = r
	f.mu.Unlock()
}

func (f *inflight) delete(uid types.UID) {
	f.mu.Lock()
	delete(f.m, uid)
	f.mu.Unlock()
}

// nodeState is the model's view of a node: capacity from allocatable, what its pods (bound, assumed
// or reserved by this scheduler) hold, and which device each share sits on.
func (pl *Plugin) nodeState(ni fwk.NodeInfo, f *nodeFacts) model.Node {
	alloc, req := ni.GetAllocatable(), ni.GetRequested()
	n := model.NewNode(f.facts.AcceleratorModel, alloc.GetMilliCPU(), alloc.GetMemory()>>20, f.facts.AcceleratorCount)
	n.CPUFree = alloc.GetMilliCPU() - req.GetMilliCPU()
	n.MemoryFree = (alloc.GetMemory() - req.GetMemory()) >> 20
	whole := 0
	for _, pi := range ni.GetPods() {
		pod := pi.GetPod()
		n.Pods++
		p := kube.PodRequest(pod)
		switch {
		case p.GPUCount == 0:
		case p.IsShare():
			dev := kube.DeviceIndex(pod)
			if r, ok := pl.inflight.get(pod.UID); ok && dev < 0 {
				dev = r.alloc.Device
			}
			if dev >= 0 && dev < n.Devices {
				n.DeviceFree[dev] -= p.GPUMilli
				n.AllocatedGPU += p.GPUMilli
			}
		default:
			whole += p.GPUCount
		}
	}
	// Whole devices are the device plugin's to pick; count them against devices without shares.
	for i := 0; i < n.Devices && whole > 0; i++ {
		if n.DeviceFree[i] == model.MilliPerGPU {
			n.DeviceFree[i] = 0
			n.AllocatedGPU += model.MilliPerGPU
			whole--
		}
	}
	return n
}

// nodeView is a node's model state at one generation of its NodeInfo, with the placements already
// worked out for pods of each shape: consecutive pods of one shape (a Deployment's replicas, a
// burst) then cost a map lookup per node instead of a fragmentation computation.
type nodeView struct {
	generation int64
	// unannotated: some share pod on the node has no device written yet, so its device comes
	// from this scheduler's reservations, which change without a new generation.
	unannotated bool
	node        model.Node
	frag        float64
	mu          sync.Mutex
	placements  map[shape]placement
}

// shape is what a placement depends on: the pod's request (pods with model constraints are not cached).
type shape struct {
	cpu, mem, milli int64
	count           int
}

type placement struct {
	alloc    model.Allocation
	delta    float64
	marginal model.Marginal
}

// view returns the node's state, rebuilt only when the NodeInfo's generation changed. Shares reserved
// by this scheduler but not yet visible on their pods change no generation, so a node with any is
// always rebuilt. Whether it has any depends only on its pods, hence on the generation: it is
// found once per build, not on every call (a scan of every pod of every node, per cycle).
func (pl *Plugin) view(ni fwk.NodeInfo, f *nodeFacts) *nodeView {
	if v := f.view.Load(); v != nil && v.generation == ni.GetGeneration() && !v.unannotated {
		return v
	}
	n := pl.nodeState(ni, f)
	v := &nodeView{generation: ni.GetGeneration(), unannotated: hasUnannotatedShare(ni), node: n,
		frag: model.Fragmentation(&n, pl.types), placements: map[shape]placement{}}
	f.view.Store(v)
	return v
}

func hasUnannotatedShare(ni fwk.NodeInfo) bool {
	for _, pi := range ni.GetPods() {
		if p := pi.GetPod(); isShare(p) && kube.DeviceIndex(p) < 0 {
			return true
		}
	}
	return false
}

// isShare is kube.ShareMilli(pod) > 0 without parsing (and allocating an error for) the missing
// annotation of every pod that asks for no share.
func isShare(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[kube.AnnotationGPUMilli]
	return ok && kube.ShareMilli(pod) > 0
}

// place returns where on the node a pod of this shape goes, the fragmentation and the marginal
// cost, power and carbon it adds.
func (v *nodeView) place(p model.Pod, types []model.PodType, e *model.Economics) placement {
	key := shape{cpu: p.CPUMilli, mem: p.MemoryMiB, milli: p.GPUMilli, count: p.GPUCount}
	v.mu.Lock()
	pl, ok := v.placements[key]
	v.mu.Unlock()
	if ok && len(p.Models) == 0 {
		return pl
	}
	a, d := model.PlaceShare(&p, &v.node, types, v.frag)
	pl = placement{alloc: a, delta: d, marginal: model.MarginalOf(&p, &v.node, a, e)}
	v.mu.Lock()
	v.placements[key] = pl
	v.mu.Unlock()
	return pl
}
