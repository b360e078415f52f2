package kcloud

import (
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/model"
)

// candidateIndex answers PreFilter's question (which nodes are worth filtering: candidateNodes)
// without visiting every NodeInfo of every cycle. It keeps each node's free room, read from the
// scheduler's snapshot, and indexes the nodes by it: running nodes by accelerator resource and
// number of free devices, empty nodes by shape in list order. Between cycles it re-reads only the
// nodes that events name: pods bound, updated or deleted, nodes updated (informer handlers), pods
// reserved and unreserved by this plugin.
//
// The snapshot stays the truth: the index never takes a figure from an event, only the name of a
// node to read again from the snapshot. An event may reach this plugin before or after the
// scheduler's cache applies it, so a node stays "hinted" (read again whenever its NodeInfo's
// generation moves) until the snapshot shows what the event said: the pod with the event's very
// object, the node with the event's node object, or the pod gone from a node where it had been
// seen (or gone after a later pod event has been seen applied: both handlers get pod events in
// the same order). A changed node list (a node added or removed: the snapshot then builds a new
// list) is read in full. See docs/designs/scheduler.md, "Which nodes are considered".
type candidateIndex struct {
	out   sets.Set[string] // the answer, reused (see candidates)
	mu    sync.Mutex
	facts *factsCache
	// enabled: events reach the index (the plugin runs with informers, or a test drives it).
	// Without them the index could not know what changed, and PreFilter walks every node.
	enabled bool

	list  []fwk.NodeInfo // the snapshot's node list the index was read from (same backing array)
	slots []islot        // by position in list
	pos   map[string]int32
	// running nodes by group (mixed, none, then one per kube.AcceleratorResources) and number of
	// free devices of that resource (clamped to maxBucket); empty nodes by shape, in list order.
	running    [][][]int32
	nrunning   int
	empties    map[int][]int32
	unreadable int // nodes the catalog cannot read: PreFilter then offers every node

	hints     map[string]*nodeHints
	podNode   map[types.UID]string // where each bound pod the informer reported is
	seq       uint64               // pod informer events received
	confirmed uint64               // highest such event seen applied in the snapshot
}

const (
	groupMixed = 0
	groupNone  = 1
	maxBucket  = 64
)

// islot is one node of the list: its facts and free room at one generation of its NodeInfo, and
// where it is indexed.
type islot struct {
	ni     fwk.NodeInfo
	node   *corev1.Node
	facts  *nodeFacts
	free   free
	where  int8 // 0: not indexed, 1: running, 2: empty, 3: unreadable
	group  int8
	bucket int16
	at     int32 // index in its running bucket
	shape  int
}

// nodeHints are the events about one node whose effect the snapshot has not shown yet.
type nodeHints struct {
	pods     map[types.UID]*podHint
	node     *corev1.Node // the node object last reported
	nodeGone bool
	// checked: the NodeInfo generation the hints were last checked against, 0 when a hint came
	// since; the hints of a node that did not change need no new look at its pods.
	checked int64
}

// podHint is the last event about a pod on a node.
type podHint struct {
	want *corev1.Pod // the object the node should hold; nil: the pod should be gone
	seq  uint64      // informer order (0: from this plugin's Reserve or Unreserve)
	// landed: the pod has been on the node in the snapshot (or is known to have been), so that its
	// absence means it left rather than has not arrived yet.
	landed  bool
	present bool // scratch, during one check
}

func newCandidateIndex(facts *factsCache) *candidateIndex {
	return &candidateIndex{facts: facts, hints: map[string]*nodeHints{}, podNode: map[types.UID]string{}}
}

func (ix *candidateIndex) hintsFor(node string) *nodeHints {
	h := ix.hints[node]
	if h == nil {
		h = &nodeHints{pods: map[types.UID]*podHint{}}
		ix.hints[node] = h
	}
	return h
}

// podEvent records an informer event about a pod bound to a node (deleted: the pod is gone).
func (ix *candidateIndex) podEvent(pod *corev1.Pod, deleted bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !ix.enabled {
		return // nothing reads the hints
	}
	node, known := ix.podNode[pod.UID]
	if !known {
		node = pod.Spec.NodeName
	}
	if node == "" {
		return
	}
	ix.seq++
	h := ix.hintsFor(node)
	// With no pending hint, the pod's previous event (if any) has been seen applied.
	landed := known
	if prev := h.pods[pod.UID]; prev != nil {
		landed = prev.landed
	}
	if deleted {
		h.add(pod.UID, &podHint{seq: ix.seq, landed: landed})
		delete(ix.podNode, pod.UID)
		return
	}
	h.add(pod.UID, &podHint{want: pod, seq: ix.seq, landed: landed})
	ix.podNode[pod.UID] = node
}

// reserved records that the scheduler assumed the pod on the node: its cache already holds it.
func (ix *candidateIndex) reserved(node string, pod *corev1.Pod) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !ix.enabled {
		return // nothing reads the hints
	}
	ix.hintsFor(node).add(pod.UID, &podHint{want: pod, landed: true})
	ix.podNode[pod.UID] = node
}

// unreserved records that the scheduler is about to forget the assumed pod.
func (ix *candidateIndex) unreserved(node string, pod *corev1.Pod) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !ix.enabled {
		return // nothing reads the hints
	}
	ix.hintsFor(node).add(pod.UID, &podHint{landed: true})
	delete(ix.podNode, pod.UID)
}

func (h *nodeHints) add(uid types.UID, ph *podHint) {
	h.pods[uid] = ph
	h.checked = 0
}

// nodeEvent records an informer event about a node.
func (ix *candidateIndex) nodeEvent(node *corev1.Node, deleted bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !ix.enabled {
		return // nothing reads the hints
	}
	h := ix.hintsFor(node.Name)
	h.node, h.nodeGone, h.checked = node, deleted, 0
	if deleted {
		h.node = nil
	}
}

// candidates is candidateNodes over the index: the same set for the same snapshot.
func (ix *candidateIndex) candidates(pl *Plugin, pod *corev1.Pod, p *model.Pod, nodes []fwk.NodeInfo) sets.Set[string] {
	if nodeSpecific(pod) || failedBefore(pod) || pod.Spec.Resources != nil {
		return nil
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.sync(nodes)
	if ix.unreadable > 0 {
		return nil
	}
	r := requestOf(pod)
	// Sized for every running node and two empty ones per shape: growing a set of hundreds of
	// names step by step costs more than the rest of the call.
	// One set, refilled each cycle: cycles run one at a time, and the framework copies the set
	// into its own result (PreFilterResult.Merge) before the next. A set of hundreds of names
	// made anew each cycle was most of what PreFilter allocated.
	if ix.out == nil {
		ix.out = make(sets.Set[string], ix.nrunning+emptyPerShape*len(ix.empties))
	}
	out := ix.out
	clear(out)
	anyFits := false
	consider := func(i int32) bool {
		s := &ix.slots[i]
		fits, full := room(&r, p, pl, s.ni, s.facts, &s.free)
		if full {
			return false
		}
		anyFits = anyFits || fits
		out.Insert(s.node.Name)
		return true
	}
	// Running nodes: with one accelerator request, only nodes with that many devices free of
	// it, and nodes without it at all (room says "not certain" for those, and offers them).
	for g := range ix.running {
		from := 0
		if len(r.accelerators) == 1 && g == r.accelerators[0].resource+2 {
			from = int(min(r.accelerators[0].value, maxBucket))
		}
		for b := from; b < len(ix.running[g]); b++ {
			for _, i := range ix.running[g][b] {
				consider(i)
			}
		}
	}
	// Empty nodes: the first emptyPerShape of each shape with room, in list order. Empty nodes of
	// one shape have the same free room, so for a pod whose room depends on it alone, the first
	// full one says all are.
	for _, list := range ix.empties {
		n := 0
		for _, i := range list {
			if consider(i) {
				if n++; n == emptyPerShape {
					break
				}
			} else if !p.IsShare() {
				break
			}
		}
	}
	if !anyFits || out.Len() == len(nodes) {
		return nil
	}
	return out
}

// sync brings the index up to the snapshot: the whole list when it is not the one the index was
// read from, else the hinted nodes.
func (ix *candidateIndex) sync(nodes []fwk.NodeInfo) {
	if len(nodes) != len(ix.list) || len(nodes) > 0 && &nodes[0] != &ix.list[0] {
		ix.rebuild(nodes)
	}
	for name, h := range ix.hints {
		i, ok := ix.pos[name]
		if !ok {
			// Not in the snapshot (yet, or any more): when it comes, it comes with a new list,
			// read in full; the hints stay for what lands after that.
			h.nodeGone = false
			for uid, ph := range h.pods {
				if ph.want == nil && (ph.landed || ph.seq != 0 && ph.seq <= ix.confirmed) {
					delete(h.pods, uid)
				}
			}
		} else {
			ni := ix.list[i]
			if s := &ix.slots[i]; s.ni != ni || s.free.generation != ni.GetGeneration() || s.node != ni.Node() {
				ix.refresh(i)
			}
			ix.check(h, ni)
		}
		if len(h.pods) == 0 && h.node == nil && !h.nodeGone {
			delete(ix.hints, name)
		}
	}
}

// check drops the hints whose effect the node's snapshot shows.
func (ix *candidateIndex) check(h *nodeHints, ni fwk.NodeInfo) {
	g := ni.GetGeneration()
	if h.checked == g && !h.absenceOpen(ix.confirmed) {
		return
	}
	h.checked = g
	if h.node != nil && ni.Node() == h.node {
		h.node = nil
	}
	if len(h.pods) == 0 {
		return
	}
	for _, pi := range ni.GetPods() {
		pod := pi.GetPod()
		ph := h.pods[pod.UID]
		if ph == nil {
			continue
		}
		if ph.want == pod {
			delete(h.pods, pod.UID)
			ix.confirmed = max(ix.confirmed, ph.seq)
			continue
		}
		ph.present, ph.landed = true, true
	}
	for uid, ph := range h.pods {
		if !ph.present && ph.want == nil && (ph.landed || ph.seq != 0 && ph.seq <= ix.confirmed) {
			delete(h.pods, uid)
		}
		ph.present = false
	}
}

// absenceOpen reports whether a hint that a pod left waits only for a later pod event to be seen
// applied (confirmed moves without this node changing).
func (h *nodeHints) absenceOpen(confirmed uint64) bool {
	for _, ph := range h.pods {
		if ph.want == nil && !ph.landed && ph.seq != 0 && ph.seq <= confirmed {
			return true
		}
	}
	return false
}

// rebuild reads every node of a new list.
func (ix *candidateIndex) rebuild(nodes []fwk.NodeInfo) {
	old := ix.slots
	ix.list, ix.slots = nodes, make([]islot, len(nodes))
	ix.pos = make(map[string]int32, len(nodes))
	ix.running, ix.nrunning, ix.empties, ix.unreadable = nil, 0, map[int][]int32{}, 0
	for i, ni := range nodes {
		s := &ix.slots[i]
		node := ni.Node()
		if node == nil {
			continue
		}
		ix.pos[node.Name] = int32(i)
		if i < len(old) && old[i].node == node {
			s.node, s.facts = node, old[i].facts
			if old[i].ni == ni && old[i].free.generation == ni.GetGeneration() {
				s.ni, s.free = ni, old[i].free
			}
		}
		if s.ni == nil {
			ix.read(int32(i))
		}
		ix.add(int32(i))
	}
}

// refresh reads the node at position i again.
func (ix *candidateIndex) refresh(i int32) {
	ix.remove(i)
	ix.read(i)
	ix.add(i)
}

func (ix *candidateIndex) read(i int32) {
	s, ni := &ix.slots[i], ix.list[i]
	node := ni.Node()
	if node == nil {
		s.node, s.ni = nil, nil
		return
	}
	if s.node != node {
		s.node, s.facts = node, ix.facts.get(node)
	}
	s.ni, s.free = ni, freeOf(ni)
}

func (ix *candidateIndex) add(i int32) {
	s := &ix.slots[i]
	switch {
	case s.node == nil:
		s.where = 0
	case s.facts.err != nil:
		s.where = 3
		ix.unreadable++
	case s.free.pods == 0 && len(s.facts.reservations) == 0:
		// An empty node holding a rebalancing reservation is filed with the running ones, which
		// are always considered, as candidateNodes offers it (candidates.go).
		s.where, s.shape = 2, s.facts.shape
		l := ix.empties[s.shape]
		at := sort.Search(len(l), func(k int) bool { return l[k] >= i })
		l = append(l, 0)
		copy(l[at+1:], l[at:])
		l[at] = i
		ix.empties[s.shape] = l
	default:
		g, b := groupNone, 0
		switch {
		case s.free.mixed:
			g = groupMixed
		case s.free.accelerator >= 0:
			g, b = s.free.accelerator+2, int(max(0, min(s.free.acceleratorFree, maxBucket)))
		}
		for len(ix.running) <= g {
			ix.running = append(ix.running, nil)
		}
		for len(ix.running[g]) <= b {
			ix.running[g] = append(ix.running[g], nil)
		}
		s.where, s.group, s.bucket, s.at = 1, int8(g), int16(b), int32(len(ix.running[g][b]))
		ix.running[g][b] = append(ix.running[g][b], i)
		ix.nrunning++
	}
}

func (ix *candidateIndex) remove(i int32) {
	s := &ix.slots[i]
	switch s.where {
	case 1:
		l := ix.running[s.group][s.bucket]
		last := l[len(l)-1]
		l[s.at] = last
		ix.slots[last].at = s.at
		ix.running[s.group][s.bucket] = l[:len(l)-1]
		ix.nrunning--
	case 2:
		l := ix.empties[s.shape]
		at := sort.Search(len(l), func(k int) bool { return l[k] >= i })
		ix.empties[s.shape] = append(l[:at], l[at+1:]...)
		if len(ix.empties[s.shape]) == 0 {
			delete(ix.empties, s.shape)
		}
	case 3:
		ix.unreadable--
	}
	s.where = 0
}
