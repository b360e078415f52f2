// Package fleet prices and powers pods from the nodes they run on, for every controller of the
// operator: what a pod costs and draws now (catalog figures through pkg/model, measured power from
// telemetry when configured), when it ran, and a snapshot of the nodes' free capacity in which the
// best placement of a workload is searched.
package fleet

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"kcloud.io/optimizer/internal/telemetry"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// Power sources shown in status.
const (
	SourceCatalog = telemetry.SourceCatalog
	SourceMixed   = "mixed"
)

// Fleet is shared by the controllers; it is safe for concurrent use.
type Fleet struct {
	reader    client.Reader
	pods      Store // nil: list through reader
	nodeStore Store // nil: list through reader
	catalog   *catalog.Catalog
	telemetry telemetry.Source // nil: the catalog model only
	clock     clock.PassiveClock
	maxAge    time.Duration

	nodes    sync.Map // node name -> *NodeEntry
	requests sync.Map // pod UID -> podRequest

	mu      sync.Mutex // guards reading
	reading readings

	snapMu   sync.Mutex // guards the snapshot fields
	snap     *Snapshot
	snapAt   time.Time
	building bool
}

type readings struct {
	at  time.Time
	m   map[types.NamespacedName]telemetry.Reading
	err error
}

// Options configure a Fleet.
type Options struct {
	Catalog   *catalog.Catalog
	Telemetry telemetry.Source
	Clock     clock.PassiveClock
	// Pods and Nodes, when set, are the informers' stores, read without copying; otherwise the
	// fleet lists through the reader.
	Pods, Nodes Store
	// SnapshotMaxAge bounds how stale the free-capacity snapshot and telemetry readings may be.
	SnapshotMaxAge time.Duration
}

// New returns a Fleet reading nodes and pods through reader (the manager's cache).
func New(reader client.Reader, o Options) *Fleet {
	if o.Catalog == nil {
		o.Catalog = catalog.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.SnapshotMaxAge <= 0 {
		o.SnapshotMaxAge = 15 * time.Second
	}
	return &Fleet{reader: reader, pods: o.Pods, nodeStore: o.Nodes, catalog: o.Catalog, telemetry: o.Telemetry, clock: o.Clock,
		maxAge: o.SnapshotMaxAge}
}

// NodeEntry is a node's catalog facts and economics at one resource version.
type NodeEntry struct {
	ResourceVersion string
	Facts           catalog.NodeFacts
	Econ            model.Economics
	Capacity        model.Node // empty node: capacity only
	Err             error
}

// Node returns the economics of a node object, cached per resource version.
func (f *Fleet) Node(node *corev1.Node) *NodeEntry {
	if v, ok := f.nodes.Load(node.Name); ok {
		if e := v.(*NodeEntry); e.ResourceVersion == node.ResourceVersion {
			return e
		}
	}
	e := &NodeEntry{ResourceVersion: node.ResourceVersion}
	e.Facts, e.Econ, e.Err = kube.NodeEconomics(f.catalog, node)
	if e.Err == nil {
		e.Capacity = kube.NodeCapacity(node, e.Facts)
	}
	f.nodes.Store(node.Name, e)
	return e
}

// podRequest is a pod's request as the model sees it, at one resource version.
type podRequest struct {
	resourceVersion string
	pod             model.Pod
}

// request is kube.PodRequest cached per pod and resource version: summing a pod's containers
// allocates, and every snapshot and every policy's accounting reads every pod.
func (f *Fleet) request(pod *corev1.Pod) model.Pod {
	if v, ok := f.requests.Load(pod.UID); ok {
		if r := v.(podRequest); r.resourceVersion == pod.ResourceVersion {
			return r.pod
		}
	}
	p := kube.PodRequest(pod)
	f.requests.Store(pod.UID, podRequest{resourceVersion: pod.ResourceVersion, pod: p})
	return p
}

// Forget drops a deleted node from the cache.
func (f *Fleet) Forget(nodeName string) { f.nodes.Delete(nodeName) }

// Figures are what one running pod costs and draws.
type Figures struct {
	Node         string
	CostPerHour  float64 // USD/h: the pod's dominant share of its node's price
	PowerWatts   float64 // W: catalog model, or measured accelerator power plus the modelled host share
	PowerSource  string
	CarbonPerKWh float64 // gCO2/kWh of the node's grid
	Running      model.Interval
	Pod          model.Pod
}

// Running reports whether a pod runs on a node now: bound and in phase Running.
func Running(pod *corev1.Pod) bool {
	return pod.Spec.NodeName != "" && pod.Status.Phase == corev1.PodRunning
}

// Ran reports whether a pod has run on a node at all (running or finished after starting), so its
// time there is paid for.
func Ran(pod *corev1.Pod) bool {
	if pod.Spec.NodeName == "" || pod.Status.StartTime == nil {
		return false
	}
	switch pod.Status.Phase {
	case corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed:
		return true
	}
	return false
}

// RunInterval is when a pod ran: from its start to the last container's finish, or still running.
func RunInterval(pod *corev1.Pod) model.Interval {
	iv := model.Interval{Start: pod.CreationTimestamp.Time}
	if pod.Status.StartTime != nil {
		iv.Start = pod.Status.StartTime.Time
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		for _, cs := range pod.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.FinishedAt.After(iv.End) {
				iv.End = t.FinishedAt.Time
			}
		}
		if iv.End.IsZero() {
			iv.End = iv.Start // finished with no record of when: count nothing rather than forever
		}
	}
	return iv
}

// Readings returns telemetry readings per pod, refreshed at most once per snapshot age; nil without
// telemetry. A failed query is logged and the catalog model is used until the next refresh.
func (f *Fleet) Readings(ctx context.Context) map[types.NamespacedName]telemetry.Reading {
	if f.telemetry == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	if f.reading.m != nil || f.reading.err != nil {
		if now.Sub(f.reading.at) < f.maxAge {
			return f.reading.m
		}
	}
	m, err := f.telemetry.PodReadings(ctx)
	if err != nil {
		log.FromContext(ctx).Error(err, "Reading telemetry; using the catalog power model where it is missing")
	}
	f.reading = readings{at: now, m: m, err: err}
	return m
}

// PodFigures prices and powers a pod that has run on a node.
func (f *Fleet) PodFigures(ctx context.Context, pod *corev1.Pod, measured map[types.NamespacedName]telemetry.Reading) (Figures, error) {
	// Read-only: the cache's node is not copied (once per pod priced, thousands per second).
	node, err := f.node(ctx, pod.Spec.NodeName)
	if err != nil {
		return Figures{}, fmt.Errorf("pod %s/%s: reading its node %s: %w", pod.Namespace, pod.Name, pod.Spec.NodeName, err)
	}
	e := f.Node(node)
	if e.Err != nil {
		return Figures{}, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, e.Err)
	}
	p := f.request(pod)
	n := e.Capacity
	fig := Figures{
		Node:         node.Name,
		CostPerHour:  model.AttributedCost(&p, &n, &e.Econ),
		PowerWatts:   model.AttributedPower(&p, &n, &e.Econ),
		PowerSource:  SourceCatalog,
		CarbonPerKWh: e.Econ.CarbonIntensity,
		Running:      RunInterval(pod),
		Pod:          p,
	}
	if r, ok := measured[types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}]; ok && r.Watts > 0 {
		// Telemetry measures the accelerators; the host's share stays modelled.
		hostOnly := e.Econ
		hostOnly.Device = nil
		fig.PowerWatts = model.AttributedPower(&p, &n, &hostOnly) + r.Watts
		fig.PowerSource = r.Source
	}
	return fig, nil
}

// CombineSources names the power source of several pods: the common one, or mixed.
func CombineSources(sources []string) string {
	out := ""
	for _, s := range sources {
		switch {
		case out == "":
			out = s
		case out != s:
			return SourceMixed
		}
	}
	return out
}

// Snapshot is the nodes' free capacity at one instant, for best-placement searches.
type Snapshot struct {
	Names []string
	Nodes []model.Node
	Econ  []*model.Economics
	Objs  []*corev1.Node
	Index map[string]int
	// Placed holds the pods the snapshot counts on its nodes, with the device a share was counted on.
	Placed map[types.UID]PlacedPod
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
				f.snap, f.snapAt = fresh, f.clock.Now()
				f.snapMu.Unlock()
				return fresh, nil
			}
		}
	}
	return s, nil
}

// Snapshot returns the free capacity of every schedulable, ready node that the catalog can price,
// rebuilt when older than the maximum age. Callers must not modify it.
func (f *Fleet) Snapshot(ctx context.Context) (*Snapshot, error) {
	f.snapMu.Lock()
	now := f.clock.Now()
	if f.snap != nil && (now.Sub(f.snapAt) < f.maxAge || f.building) {
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
	f.snap, f.snapAt = s, now
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
	if err := f.eachPod(ctx, "", func(p *corev1.Pod) { pods = append(pods, p) }); err != nil {
		return nil, err
	}
	s := &Snapshot{Index: make(map[string]int, len(nodes)), Placed: make(map[types.UID]PlacedPod, len(pods))}
	for _, node := range nodes {
		if node.Spec.Unschedulable || !ready(node) {
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
	for _, pod := range pods {
		j, ok := s.Index[pod.Spec.NodeName]
		if !ok || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		p := f.request(pod)
		n := &s.Nodes[j]
		a := model.Allocation{Device: kube.DeviceIndex(pod)}
		if p.IsShare() && (a.Device < 0 || a.Device >= n.Devices || n.DeviceFree[a.Device] < p.GPUMilli) {
			a.Device = model.BestFitDevice(&p, n)
		}
		if p.IsShare() && a.Device < 0 {
			continue // an overcommitted share: leave the node's devices as they are
		}
		if p.GPUCount > 0 && !p.IsShare() && n.WholeFreeDevices() < p.GPUCount {
			continue
		}
		model.Assign(&p, n, a)
		s.Placed[pod.UID] = PlacedPod{Node: j, Device: a.Device}
	}
	return s, nil
}

func ready(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
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
