package kcloud

import (
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
)

// nodeFacts are a node's catalog facts and economics, cached per node resource version.
type nodeFacts struct {
	resourceVersion string
	facts           catalog.NodeFacts
	econ            model.Economics
	err             error
}

type factsCache struct {
	cat *catalog.Catalog
	mu  sync.RWMutex
	m   map[string]*nodeFacts
}

func (c *factsCache) get(node *corev1.Node) *nodeFacts {
	c.mu.RLock()
	f, ok := c.m[node.Name]
	c.mu.RUnlock()
	if ok && f.resourceVersion == node.ResourceVersion {
		return f
	}
	f = &nodeFacts{resourceVersion: node.ResourceVersion}
	f.facts, f.err = catalog.FactsFromNode(node)
	if f.err == nil {
		f.econ, f.err = c.cat.Economics(f.facts)
	}
	if f.err != nil {
		f.err = fmt.Errorf("node %s: %w", node.Name, f.err)
	}
	c.mu.Lock()
	c.m[node.Name] = f
	c.mu.Unlock()
	return f
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
		p := podRequest(pod)
		switch {
		case p.GPUCount == 0:
		case p.IsShare():
			dev := deviceIndex(pod)
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
