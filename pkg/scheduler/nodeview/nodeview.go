// Package nodeview is the node view the kcloud-scheduler plugins share within one scheduling
// profile: each node's catalog facts and economics (cached per node object), its model.Node
// occupancy at each generation of its NodeInfo (built by kube.Occupy) with the placements worked out
// on it, and the GPU shares held in flight, which KcloudGPUShare's Reserve records and every view
// counts until the device is written on the pod. The framework builds each plugin separately, so
// the plugins of a profile find their view through its framework handle (For).
package nodeview

import (
	"fmt"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/traces"
)

// Shared is one profile's node view.
type Shared struct {
	cache    Cache
	inflight inflight
	pending  func(*corev1.Pod) (int, bool) // inflight.pendingDevice, bound once

	types       atomic.Pointer[[]model.PodType]
	defaultOnce sync.Once
}

// New returns an empty node view pricing nodes with the catalog cat provides; For is how plugins
// get theirs.
func New(cat catalog.Provider) *Shared {
	s := &Shared{cache: Cache{cat: cat}, inflight: inflight{m: map[types.UID]held{}}}
	s.pending = s.inflight.pendingDevice
	return s
}

// profiles holds each framework's view. A framework lives as long as the scheduler, so views are
// never dropped.
var profiles struct {
	mu sync.Mutex
	m  map[fwk.Handle]*Shared
}

// For returns the node view of the profile whose framework handle is h, made on the first call
// (then kept in step with node and pod deletions through h's informers); without a handle (unit
// tests), a view of its own.
func For(h fwk.Handle, cat catalog.Provider) (*Shared, error) {
	if h == nil {
		return New(cat), nil
	}
	profiles.mu.Lock()
	defer profiles.mu.Unlock()
	if s, ok := profiles.m[h]; ok {
		return s, nil
	}
	s := New(cat)
	if inf := h.SharedInformerFactory(); inf != nil {
		if err := s.watch(inf.Core().V1().Pods().Informer(), inf.Core().V1().Nodes().Informer()); err != nil {
			return nil, err
		}
	}
	if profiles.m == nil {
		profiles.m = map[fwk.Handle]*Shared{}
	}
	profiles.m[h] = s
	return s, nil
}

// watch keeps what the view holds per pod and node in step with the cluster: a deleted pod no
// longer holds its device, and a deleted node's facts and view go with it.
func (s *Shared) watch(pods, nodes cache.SharedIndexInformer) error {
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if pod, ok := deleted(obj).(*corev1.Pod); ok {
				s.Release(pod.UID)
			}
		},
	}); err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	if _, err := nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if node, ok := deleted(obj).(*corev1.Node); ok {
				s.cache.Forget(node.Name)
			}
		},
	}); err != nil {
		return fmt.Errorf("watching nodes: %w", err)
	}
	return nil
}

func deleted(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

// Catalog is the catalog the view prices nodes with, and its generation.
func (s *Shared) Catalog() (*catalog.Catalog, uint64) { return s.cache.cat.Current() }

// Facts returns a node's cached facts (see Cache.Get).
func (s *Shared) Facts(node *corev1.Node) *Facts { return s.cache.Get(node) }

// TypicalTypes are the typical pods of a trace (a file or an embedded trace), against which GPU
// fragmentation is measured.
func TypicalTypes(trace string) ([]model.PodType, error) {
	pods, err := traces.ReadPods(trace)
	if err != nil {
		return nil, fmt.Errorf("reading target workload %s: %w", trace, err)
	}
	out := make([]model.Pod, len(pods))
	for i, t := range pods {
		out[i] = model.Pod{CPUMilli: t.CPUMilli, MemoryMiB: t.MemoryMiB, GPUCount: t.NumGPU, GPUMilli: t.GPUMilli, Models: t.Models}
	}
	return model.TypicalPodTypes(out, 0.95), nil
}

// SetTypes sets the target workload's typical pods, which the score plugin reads from its
// targetWorkload; call it while plugins are built, before any scheduling cycle, since views
// built before keep the types they were built with.
func (s *Shared) SetTypes(types []model.PodType) { s.types.Store(&types) }

// Types are the typical pods fragmentation is measured against: those set by SetTypes, else (a
// profile without the score plugin) the default target workload's.
func (s *Shared) Types() []model.PodType {
	if t := s.types.Load(); t != nil {
		return *t
	}
	s.defaultOnce.Do(func() {
		types, err := TypicalTypes(traces.OpenbDefaultPods)
		if err != nil {
			// The embedded trace always reads; without it fragmentation counts no pod type.
			klog.Background().Error(err, "Reading the default target workload")
		}
		s.types.CompareAndSwap(nil, &types)
	})
	return *s.types.Load()
}
