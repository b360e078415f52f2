package optimizer

import (
	"math/bits"
	"sync/atomic"
	"unsafe"

	corev1 "k8s.io/api/core/v1"

	"kcloud.io/optimizer/pkg/model"
)

// handoff carries each feasible node's candidate from Filter to Score within one cycle, so that
// Score does not look the node's facts, view and placement up again: over thousands of nodes each
// of those lookups is a cache miss, and together they were most of Score. It is an open-addressing
// table keyed by the node object's address, in two pointer-free arrays (the garbage collector does
// not scan them), made for the cycle's nodes in PreFilter. Filter claims a key with a compare and
// swap, on the scheduler's parallel workers; Score reads only after the framework has waited for
// every Filter. A node the table has no room for near its slot is looked up the slow way.
type handoff struct {
	keys  []atomic.Uintptr // the node object's address; 0: free
	cands []model.Candidate
	shift uint // 64 - log2(len(keys))
}

// maxProbes bounds a lookup: at most half full, a key is almost always within a few slots of its
// first; a table filled past that (more nodes filtered than it was made for) answers "not here"
// rather than scan every slot.
const maxProbes = 16

// newHandoff makes a table for up to n nodes, at most half full.
func newHandoff(n int) *handoff {
	size := 1 << max(4, bits.Len(uint(2*n)))
	return &handoff{keys: make([]atomic.Uintptr, size), cands: make([]model.Candidate, size),
		shift: uint(64 - bits.TrailingZeros(uint(size)))}
}

// slot is the first slot to probe for a key (Fibonacci hashing of the address).
func (h *handoff) slot(key uintptr) int {
	return int((uint64(key) * 0x9e3779b97f4a7c15) >> h.shift)
}

func keyOf(node *corev1.Node) uintptr { return uintptr(unsafe.Pointer(node)) }

// put records the node's candidate, replacing one recorded before for the same node in this
// cycle; a nil table records nothing.
func (h *handoff) put(node *corev1.Node, c *model.Candidate) {
	if h == nil || node == nil {
		return
	}
	key, mask := keyOf(node), len(h.keys)-1
	for i, n := h.slot(key), 0; n < min(maxProbes, len(h.keys)); i, n = (i+1)&mask, n+1 {
		if k := h.keys[i].Load(); k == key || k == 0 && (h.keys[i].CompareAndSwap(0, key) || h.keys[i].Load() == key) {
			h.cands[i] = *c
			return
		}
	}
}

// get returns the candidate Filter recorded for the node, false when none was.
func (h *handoff) get(node *corev1.Node) (*model.Candidate, bool) {
	if h == nil || node == nil {
		return nil, false
	}
	key, mask := keyOf(node), len(h.keys)-1
	for i, n := h.slot(key), 0; n < min(maxProbes, len(h.keys)); i, n = (i+1)&mask, n+1 {
		switch h.keys[i].Load() {
		case key:
			return &h.cands[i], true
		case 0:
			return nil, false
		}
	}
	return nil, false
}
