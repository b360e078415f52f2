package cluster

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// Snapshot is the nodes' free capacity at one instant, for best-placement searches.
type Snapshot struct {
	Names []string
	Nodes []model.Node
	Econ  []*model.Economics
	Objs  []*corev1.Node
	Index map[string]int
	// Placed holds the pods the snapshot counts on its nodes, with the device a share was counted on.
	Placed map[types.UID]PlacedPod
	// catalogGen is the generation of the catalog when the build began.
	catalogGen uint64
}

// PlacedPod is where the snapshot counted a pod.
type PlacedPod struct {
	Node   int
	Device int
}

// SnapshotFor is Snapshot, rebuilt first if it does not count every given running pod yet: a
// workload must be judged in a state that includes it.
func (f *Fleet) SnapshotFor(ctx context.Context, pods []*corev1.Pod) (*Snapshot, error) {
	s, err := f.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range pods {
		if _, counted := s.Placed[p.UID]; !counted && Running(p) {
			if _, known := s.Index[p.Spec.NodeName]; known {
				// This workload is not in it yet: build one that has it, whoever else is building.
				fresh, err := f.build(ctx)
				if err != nil {
					return nil, err
				}
				f.snapMu.Lock()
				f.snap, f.snapAt, f.snapGen = fresh, f.clock.Now(), fresh.catalogGen
				f.snapMu.Unlock()
				return fresh, nil
			}
		}
	}
	return s, nil
}

// Snapshot returns the free capacity of every schedulable, ready node that the catalog can price,
// rebuilt when older than the maximum age (on every call with AlwaysRebuild). Callers must not
// modify it.
func (f *Fleet) Snapshot(ctx context.Context) (*Snapshot, error) {
	f.snapMu.Lock()
	now := f.clock.Now()
	_, gen := f.catalog.Current()
	// A snapshot priced with an older catalog is stale whatever its age: the user's prices changed.
	if f.snap != nil && f.maxAge != AlwaysRebuild && f.snapGen == gen && (f.fresh(f.snapAt, now) || f.building) {
		// Fresh, or being rebuilt by another reconcile: go on with the last one, don't wait.
		s := f.snap
		f.snapMu.Unlock()
		return s, nil
	}
	f.building = true
	f.snapMu.Unlock()
	s, err := f.build(ctx)
	f.snapMu.Lock()
	defer f.snapMu.Unlock()
	f.building = false
	if err != nil {
		return nil, err
	}
	f.snap, f.snapAt, f.snapGen = s, now, s.catalogGen
	return s, nil
}

// build makes a snapshot from the cache.
func (f *Fleet) build(ctx context.Context) (*Snapshot, error) {
	// The cache's objects are read, never modified, and not copied: a deep copy of every pod of
	// a large cluster at each rebuild is most of what the operator allocates. The snapshot keeps
	// the nodes, which is why callers must not modify it.
	nodes, err := f.nodesByName(ctx)
	if err != nil {
		return nil, err
	}
	var pods []*corev1.Pod
	if err := f.EachPod(ctx, "", func(p *corev1.Pod) { pods = append(pods, p) }); err != nil {
		return nil, err
	}
	_, gen := f.catalog.Current()
	s := &Snapshot{Index: make(map[string]int, len(nodes)), Placed: make(map[types.UID]PlacedPod, len(pods)), catalogGen: gen}
	for _, node := range nodes {
		if node.Spec.Unschedulable || !kube.NodeReady(node) {
			continue
		}
		e := f.Node(node)
		if e.Err != nil {
			continue
		}
		s.Index[node.Name] = len(s.Names)
		s.Names = append(s.Names, node.Name)
		s.Nodes = append(s.Nodes, e.Capacity)
		s.Econ = append(s.Econ, &e.Econ)
		s.Objs = append(s.Objs, node)
	}
	seen := make(map[types.UID]struct{}, len(pods))
	for _, pod := range pods {
		seen[pod.UID] = struct{}{}
	}
	// Requests of pods that are gone leave the cache with each rebuild.
	f.requests.Range(func(k, _ any) bool {
		if _, ok := seen[k.(types.UID)]; !ok {
			f.requests.Delete(k)
		}
		return true
	})
	// Each node's pods are counted as the scheduler counts them (kube.Occupy); a pod it cannot
	// count (an overcommitted node) is left out of Placed, and its node's figures as they are.
	onNode := make([][]*corev1.Pod, len(s.Nodes))
	for _, pod := range pods {
		if j, ok := s.Index[pod.Spec.NodeName]; ok {
			onNode[j] = append(onNode[j], pod)
		}
	}
	for j := range s.Nodes {
		slices.SortFunc(onNode[j], kube.CompareAdmission)
		uncounted := kube.Occupy(&s.Nodes[j], slices.Values(onNode[j]), kube.OccupyOptions{
			Request: f.request,
			Counted: func(pod *corev1.Pod, _ model.Pod, a model.Allocation) {
				s.Placed[pod.UID] = PlacedPod{Node: j, Device: a.Device}
			},
		})
		if uncounted > 0 {
			log.FromContext(ctx).V(1).Info("Pods left out of the snapshot: their node is overcommitted", "node", s.Names[j], "pods", uncounted)
		}
	}
	return s, nil
}

// Offers counts the accelerator devices the fleet's nodes offer, per extended resource.
func (f *Fleet) Offers(ctx context.Context) map[corev1.ResourceName]int64 {
	s, err := f.Snapshot(ctx)
	if err != nil {
		return nil
	}
	out := map[corev1.ResourceName]int64{}
	for _, n := range s.Objs {
		for _, r := range kube.AcceleratorResources {
			if q, ok := n.Status.Allocatable[corev1.ResourceName(r)]; ok && q.Value() > 0 {
				out[corev1.ResourceName(r)] += q.Value()
			}
		}
	}
	return out
}

// Cheapest is the least a pod can cost and draw anywhere in the fleet: the lowest attributed cost
// and the lowest attributed power over the nodes offering its accelerator resources and big enough
// to hold it when empty. ok is false when no node could ever hold it.
func (f *Fleet) Cheapest(ctx context.Context, pod *corev1.Pod) (t model.Totals, ok bool, err error) {
	s, err := f.Snapshot(ctx)
	if err != nil {
		return t, false, err
	}
	p := kube.PodRequest(pod)
	var resources []corev1.ResourceName
	for _, r := range kube.AcceleratorResources {
		for _, c := range pod.Spec.Containers {
			if q, has := c.Resources.Limits[corev1.ResourceName(r)]; has && !q.IsZero() {
				resources = append(resources, corev1.ResourceName(r))
				break
			}
		}
	}
	for i, obj := range s.Objs {
		offered := true
		for _, r := range resources {
			if q, has := obj.Status.Allocatable[r]; !has || q.IsZero() {
				offered = false
			}
		}
		empty := f.Node(obj).Capacity
		if !offered || !model.Fits(&p, &empty) {
			continue
		}
		c, w := model.AttributedCost(&p, &empty, s.Econ[i]), model.AttributedPower(&p, &empty, s.Econ[i])
		if !ok || c < t.CostPerHour {
			t.CostPerHour = c
		}
		if !ok || w < t.PowerWatts {
			t.PowerWatts = w
		}
		ok = true
	}
	return t, ok, nil
}
