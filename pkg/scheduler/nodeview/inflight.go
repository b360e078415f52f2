package nodeview

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// held is a share this scheduler placed whose device the API may not show yet: Reserve records
// it, PreBind writes it on the pod, and the view counts it meanwhile.
type held struct {
	node   string
	device int
}

type inflight struct {
	mu sync.RWMutex
	m  map[types.UID]held
}

func (f *inflight) get(uid types.UID) (held, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	h, ok := f.m[uid]
	return h, ok
}

func (f *inflight) set(uid types.UID, h held) {
	f.mu.Lock()
	f.m[uid] = h
	f.mu.Unlock()
}

func (f *inflight) delete(uid types.UID) {
	f.mu.Lock()
	delete(f.m, uid)
	f.mu.Unlock()
}

// pendingDevice is kube.OccupyOptions.PendingDevice over the shares held in flight.
func (f *inflight) pendingDevice(pod *corev1.Pod) (int, bool) {
	h, ok := f.get(pod.UID)
	return h.device, ok
}

// Hold records the device chosen for a share pod on a node, until Release.
func (s *Shared) Hold(uid types.UID, node string, device int) {
	s.inflight.set(uid, held{node: node, device: device})
}

// Release forgets the share held for a pod (Unreserve, or the pod is gone).
func (s *Shared) Release(uid types.UID) { s.inflight.delete(uid) }

// Held returns the node and device held for a share pod.
func (s *Shared) Held(uid types.UID) (node string, device int, ok bool) {
	h, ok := s.inflight.get(uid)
	return h.node, h.device, ok
}
