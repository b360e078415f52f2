package nodeview

import (
	"maps"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
)

// readMostly maps node objects to their facts for readers on many goroutines, which look a node up
// on every node of every cycle, while writes come only when a node object changes. Reads go to an
// immutable map without a lock (a sync.Map's trie costs about three times a plain map's lookup,
// and most of it is cache misses over thousands of nodes). Each key's value sits in an entry that
// a write to a key already in the read map replaces in place; a new key goes to a locked copy of
// the map, which replaces the read map once lookups have missed the read map as many times as the
// copy has entries: a burst of new nodes copies the map a few times, not once per node.
type readMostly struct {
	read atomic.Pointer[map[*corev1.Node]*entry]

	mu     sync.Mutex
	dirty  map[*corev1.Node]*entry // read's live entries and every key added since; nil when read is current
	misses int
}

// entry holds a key's facts; nil once the key is deleted.
type entry struct{ f atomic.Pointer[Facts] }

// load returns the facts stored for the node object, nil when none are.
func (m *readMostly) load(n *corev1.Node) *Facts {
	if e := m.readEntry(n); e != nil {
		return e.f.Load()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// The copy may have been promoted since the read above.
	if e := m.readEntry(n); e != nil {
		return e.f.Load()
	}
	if m.dirty == nil {
		return nil
	}
	e := m.dirty[n]
	m.missed()
	if e == nil {
		return nil
	}
	return e.f.Load()
}

func (m *readMostly) readEntry(n *corev1.Node) *entry {
	if r := m.read.Load(); r != nil {
		return (*r)[n]
	}
	return nil
}

func (m *readMostly) store(n *corev1.Node, f *Facts) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.readEntry(n); e != nil {
		e.f.Store(f)
		if m.dirty != nil {
			m.dirty[n] = e // deleted since the last promotion: back in the copy
		}
		return
	}
	e := &entry{}
	e.f.Store(f)
	m.writable()[n] = e
}

func (m *readMostly) delete(n *corev1.Node) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.readEntry(n); e != nil {
		e.f.Store(nil)
	}
	delete(m.writable(), n)
	// Counted as a miss, so that a deleted key leaves the read map even if nothing new is looked
	// up after it.
	m.missed()
}

// writable is the map new keys go to, copied from the read map after a promotion; m.mu is held.
func (m *readMostly) writable() map[*corev1.Node]*entry {
	if m.dirty == nil {
		if r := m.read.Load(); r != nil {
			m.dirty = maps.Clone(*r)
		} else {
			m.dirty = map[*corev1.Node]*entry{}
		}
	}
	return m.dirty
}

// missed counts a lookup (or delete) the read map could not answer and promotes the copy once
// there were as many as it has entries; m.mu is held and m.dirty is not nil.
func (m *readMostly) missed() {
	if m.misses++; m.misses >= len(m.dirty) {
		d := m.dirty
		m.read.Store(&d)
		m.dirty, m.misses = nil, 0
	}
}

// len is the number of keys stored.
func (m *readMostly) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirty != nil {
		return len(m.dirty)
	}
	if r := m.read.Load(); r != nil {
		return len(*r)
	}
	return 0
}
