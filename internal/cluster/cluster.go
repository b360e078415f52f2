// Package cluster is the cluster state the operator's controllers read, shared by all of them: the
// nodes and pods of the informers' caches (read without copies), each node's economics (cached per
// resource version), what a pod costs and draws on its node (catalog figures through pkg/model,
// measured power from telemetry when configured), when it ran, and a snapshot of the nodes' free
// capacity in which the best placement of a workload is searched.
package cluster

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kcloud.io/optimizer/internal/telemetry"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// Fleet is the cluster's nodes and pods as the operator's controllers read them, priced and powered;
// it is shared by the controllers and safe for concurrent use.
type Fleet struct {
	reader    client.Reader
	pods      Store // nil: list through reader
	nodeStore Store // nil: list through reader
	catalog   catalog.Provider
	telemetry telemetry.Source // nil: the catalog model only
	clock     clock.PassiveClock
	maxAge    time.Duration
	// staleAfter is how old a reading may be and still be used (Options.TelemetryStaleAfter).
	staleAfter time.Duration

	nodes    sync.Map // node name -> *NodeEntry
	requests sync.Map // pod UID -> podRequest

	mu      sync.Mutex // guards reading
	reading readings

	snapMu   sync.Mutex // guards the snapshot fields
	snap     *Snapshot
	snapAt   time.Time
	snapGen  uint64 // the catalog generation snap was priced with
	building bool
}

type readings struct {
	at    time.Time
	m     map[types.NamespacedName]telemetry.Reading // fresh enough to use
	stale map[types.NamespacedName]time.Time         // too old: when each pod was last measured
	err   error
}

// Options configure a Fleet.
type Options struct {
	// Catalog prices and powers the nodes: a fixed catalog, or the operator's watched one, whose
	// new generations price every node again (default: catalog.Default()).
	Catalog   catalog.Provider
	Telemetry telemetry.Source
	Clock     clock.PassiveClock
	// Pods and Nodes, when set, are the informers' stores, read without copying; otherwise the
	// fleet lists through the reader.
	Pods, Nodes Store
	// SnapshotMaxAge bounds how stale the free-capacity snapshot and telemetry readings may be:
	// zero means the default (15 seconds), AlwaysRebuild (any negative value) that every call
	// rebuilds the snapshot and reads telemetry again, whatever the clock says.
	SnapshotMaxAge time.Duration
	// TelemetryStaleAfter is how old a pod's reading may be (telemetry.Reading.At) and still be used;
	// an older one gives way to the catalog model and is reported as stale (default
	// DefaultTelemetryStaleAfter).
	TelemetryStaleAfter time.Duration
}

// DefaultTelemetryStaleAfter is Options.TelemetryStaleAfter's default: a few refreshes, so that one
// missed scrape or a Prometheus restart does not flip a pod between measured and modelled.
const DefaultTelemetryStaleAfter = 3 * time.Minute

// AlwaysRebuild is the SnapshotMaxAge of a fleet whose every Snapshot is rebuilt from the cache,
// as a rebalancing plan needs: it does not rely on the clock advancing (a fake clock may not).
const AlwaysRebuild time.Duration = -1

// New returns a Fleet reading nodes and pods through reader (the manager's cache).
func New(reader client.Reader, o Options) *Fleet {
	if o.Catalog == nil {
		o.Catalog = catalog.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	switch {
	case o.SnapshotMaxAge == 0:
		o.SnapshotMaxAge = 15 * time.Second
	case o.SnapshotMaxAge < 0:
		o.SnapshotMaxAge = AlwaysRebuild
	}
	if o.TelemetryStaleAfter <= 0 {
		o.TelemetryStaleAfter = DefaultTelemetryStaleAfter
	}
	return &Fleet{reader: reader, pods: o.Pods, nodeStore: o.Nodes, catalog: o.Catalog, telemetry: o.Telemetry, clock: o.Clock,
		maxAge: o.SnapshotMaxAge, staleAfter: o.TelemetryStaleAfter}
}

// fresh reports whether what was read at at may still be used at now; never with AlwaysRebuild.
func (f *Fleet) fresh(at, now time.Time) bool {
	return f.maxAge >= 0 && now.Sub(at) < f.maxAge
}

// NodeEntry is a node's catalog facts and economics at one resource version and catalog
// generation.
type NodeEntry struct {
	ResourceVersion string
	CatalogGen      uint64
	Facts           catalog.NodeFacts
	Econ            model.Economics
	Capacity        model.Node // empty node: capacity only
	Err             error
}

// Node returns the economics of a node object, cached per resource version and catalog generation.
func (f *Fleet) Node(node *corev1.Node) *NodeEntry {
	cat, gen := f.catalog.Current()
	if v, ok := f.nodes.Load(node.Name); ok {
		if e := v.(*NodeEntry); e.ResourceVersion == node.ResourceVersion && e.CatalogGen == gen {
			return e
		}
	}
	e := &NodeEntry{ResourceVersion: node.ResourceVersion, CatalogGen: gen}
	e.Facts, e.Econ, e.Err = kube.NodeEconomics(cat, node)
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

// Catalog is the catalog the fleet prices with now, and its generation.
func (f *Fleet) Catalog() (*catalog.Catalog, uint64) { return f.catalog.Current() }

// Forget drops a deleted node from the cache.
func (f *Fleet) Forget(nodeName string) { f.nodes.Delete(nodeName) }
