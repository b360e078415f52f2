package optimizer

import (
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/scheduler/nodeview"
)

// emptyPerShape is how many empty nodes of one shape stay candidates: identical empty nodes score
// the same, so the rest would only cost filtering time.
const emptyPerShape = 2

// maxAnswers bounds the request shapes whose answers are kept: each costs a room check for every
// node that changes, and a set of up to every node's name.
const maxAnswers = 64

// candidateIndex narrows the nodes kube-scheduler filters to those worth considering: running nodes
// with room for the pod, and the first few empty nodes with room of each distinct node shape (same
// labels but the hostname, taints, capacity), in list order. Nodes left out are only those the
// resource filters would reject, or empty nodes identical to ones kept. candidates returns nil (all
// nodes):
//   - for pods whose placement may depend on a particular node: host-pinned selectors or affinity,
//     inter-pod affinity, topology spread;
//   - when no node certainly has room, so that the FailedScheduling event says why for every node
//     and preemption sees every node;
//   - for a pod that failed to schedule before, for the same reasons (it had room somewhere but
//     another filter refused those nodes);
//   - when the catalog cannot read some node.
//
// The scheduler's snapshot is the only source: no event is listened to. Each node's slot keeps its
// facts and free room at one generation of its NodeInfo; a cycle compares every node's generation
// with its slot's (the cache gives every change to a node, its object or its pods, a new one) and
// reads again only the nodes that moved. A new node list (nodes added or removed: the snapshot then
// builds a new one) is read in full. On top of the slots, the answer for each recent request shape
// is kept and brought up to date for the nodes read again, so a cycle looks at hundreds of running
// nodes only for a shape it has not seen lately. See docs/designs/scheduler.md, "Which nodes are
// considered".
type candidateIndex struct {
	mu    sync.Mutex
	nodes *nodeview.Shared

	list  []fwk.NodeInfo // the snapshot's node list the index was read from (same backing array)
	gens  []int64        // each slot's NodeInfo generation, apart so that the per-cycle scan is compact
	slots []islot        // by position in list
	// running nodes by group (mixed, none, then one per kube.AcceleratorResources) and number of
	// free devices of that resource (clamped to maxBucket); empty nodes by shape, in list order.
	running    [][][]int32
	nrunning   int
	empties    map[emptyKey][]int32
	overheads  map[string]int32 // overheadKey -> number, 0 for none
	unreadable int              // nodes the catalog cannot read: PreFilter then offers every node

	answers    map[answerKey]*shapeAnswer
	maxAnswers int
	// changed logs the positions read again, in order; changes[k] is change number changesBase+k.
	// A kept answer is brought up to date for them when it is next used (shapeAnswer.seen), not
	// when they are read: at the start of a round hundreds of nodes change, and most of the kept
	// shapes are not asked for again before they change once more.
	changed     []int32
	changesBase uint64
	// catalog is the generation of the catalog the slots' facts were priced with: a new one (the
	// user's prices changed) reads every node again.
	catalog uint64
	uses    uint64
	unkept  *shapeAnswer // reused for requests that are not keyed (several resources, device models)
	// unannotated: positions of nodes with a share pod whose device is not written yet, whose view
	// (and so a share's room) can change without a new generation: a kept share answer is checked
	// again on them every cycle.
	unannotated map[int32]struct{}
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
	name   string // the node's, kept when a node object goes: the answers' sets are by name
	facts  *nodeview.Facts
	free   free
	where  int8 // 0: not indexed, 1: running, 2: empty, 3: unreadable
	group  int8
	bucket int16
	at     int32    // index in its running bucket
	empty  emptyKey // the list it is filed in when empty
}

// emptyKey files empty nodes (no pods but their overhead) with their twins: the same shape and the
// same overhead.
type emptyKey struct {
	shape    int
	overhead int32
}

func newCandidateIndex(nodes *nodeview.Shared) *candidateIndex {
	return &candidateIndex{nodes: nodes, maxAnswers: maxAnswers, overheads: map[string]int32{"": 0}}
}

// candidates returns the nodes worth filtering for the pod (see candidateIndex), nil for all.
func (ix *candidateIndex) candidates(pl *Plugin, pod *corev1.Pod, p *model.Pod, nodes []fwk.NodeInfo) sets.Set[string] {
	if nodeSpecific(pod) || failedBefore(pod) || pod.Spec.Resources != nil || hostPorts(pod) {
		return nil // pod-level resources: leave the arithmetic to NodeResourcesFit
	}
	if pl.usage.mayPreempt(pod) {
		return nil // should it find no room, preemption must see every node
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.sync(pl, nodes)
	if ix.unreadable > 0 {
		return nil
	}
	r := requestOf(pod)
	ans := ix.answerFor(pl, &r, p)
	if p.IsShare() {
		for i := range ix.unannotated {
			ans.recheck(pl, ix, i)
		}
	}
	// The previous cycle's empty nodes leave the answer (unless one has since become a running
	// member); which empty nodes come first with room is decided anew.
	for _, i := range ans.extras {
		if ans.member[i] == 0 {
			delete(ans.names, ix.slots[i].name)
		}
	}
	ans.extras = ans.extras[:0]
	el := eligibilityOf(pod)
	anyFits := ix.anyMemberAdmits(ans, &el)
	for _, list := range ix.empties {
		// Twins share labels and taints: a pool the pod may not go to is left to the filters'
		// verdict on its running nodes, and counts for no room.
		if !el.admits(ix.slots[list[0]].node) {
			continue
		}
		n := 0
		for _, i := range list {
			s := &ix.slots[i]
			fits, full := room(&ans.r, &ans.p, pl, s.ni, s.facts, &s.free)
			if full {
				if !p.IsShare() {
					break // empty nodes of one shape have the same free room
				}
				continue
			}
			anyFits = anyFits || fits
			ans.names.Insert(s.name)
			ans.extras = append(ans.extras, i)
			if n++; n == emptyPerShape {
				break
			}
		}
	}
	// The framework copies the set (PreFilterResult.Merge) before the next cycle changes it.
	if !anyFits || ans.names.Len() == len(nodes) {
		return nil
	}
	return ans.names
}

// anyMemberAdmits reports whether a running member that certainly has room is one the pod may go
// to.
func (ix *candidateIndex) anyMemberAdmits(ans *shapeAnswer, el *eligibility) bool {
	if ans.fits == 0 {
		return false
	}
	for i, m := range ans.member {
		if m == 2 && el.admits(ix.slots[i].node) {
			return true
		}
	}
	return false
}

// sync brings the slots up to the snapshot: the whole list when it is not the one the index was
// read from, else the nodes whose NodeInfo generation moved.
func (ix *candidateIndex) sync(pl *Plugin, nodes []fwk.NodeInfo) {
	if _, gen := ix.nodes.Catalog(); gen != ix.catalog {
		ix.catalog, ix.slots = gen, nil // no slot is kept by rebuild
		ix.rebuild(nodes)
		return
	}
	if len(nodes) != len(ix.list) || len(nodes) > 0 && &nodes[0] != &ix.list[0] {
		ix.rebuild(nodes)
		return
	}
	for i, ni := range nodes {
		if ix.gens[i] != ni.GetGeneration() {
			ix.refresh(int32(i))
		}
	}
	ix.trimChanges()
}

// rebuild reads every node of a new list. Answers go: they are kept by position.
func (ix *candidateIndex) rebuild(nodes []fwk.NodeInfo) {
	old := ix.slots
	ix.list, ix.slots, ix.gens = nodes, make([]islot, len(nodes)), make([]int64, len(nodes))
	ix.running, ix.nrunning, ix.empties, ix.unreadable = nil, 0, map[emptyKey][]int32{}, 0
	ix.answers, ix.unkept, ix.unannotated = nil, nil, map[int32]struct{}{}
	ix.changesBase, ix.changed = ix.changes(), ix.changed[:0]
	for i, ni := range nodes {
		s := &ix.slots[i]
		// Most nodes keep their position and object when one is added at the end.
		if i < len(old) && old[i].ni == ni && old[i].node == ni.Node() && old[i].free.generation == ni.GetGeneration() {
			*s = old[i]
			ix.gens[i] = s.free.generation
		} else {
			ix.read(int32(i))
		}
		ix.add(int32(i))
	}
}

// refresh reads the node at position i again and logs the change for the kept answers.
func (ix *candidateIndex) refresh(i int32) {
	ix.remove(i)
	ix.read(i)
	ix.add(i)
	ix.changed = append(ix.changed, i)
}

// changes is the number of the next change.
func (ix *candidateIndex) changes() uint64 { return ix.changesBase + uint64(len(ix.changed)) }

// catchUp brings a kept answer up to date with the changes logged since it was last used.
func (ix *candidateIndex) catchUp(pl *Plugin, ans *shapeAnswer) {
	for _, i := range ix.changed[ans.seen-ix.changesBase:] {
		ans.recheck(pl, ix, i)
	}
	ans.seen = ix.changes()
}

// trimChanges keeps the change log short: an answer further behind than a pass over the running
// nodes would cost is dropped (made again when next asked for), and changes every kept answer has
// seen go.
func (ix *candidateIndex) trimChanges() {
	limit := max(64, ix.nrunning)
	if len(ix.changed) <= limit {
		return
	}
	now := ix.changes()
	oldest := now
	for k, ans := range ix.answers {
		if now-ans.seen > uint64(limit) {
			delete(ix.answers, k)
			continue
		}
		oldest = min(oldest, ans.seen)
	}
	ix.changed = append(ix.changed[:0], ix.changed[oldest-ix.changesBase:]...)
	ix.changesBase = oldest
}

func (ix *candidateIndex) read(i int32) {
	s, ni := &ix.slots[i], ix.list[i]
	ix.gens[i] = ni.GetGeneration()
	node := ni.Node()
	if node == nil {
		s.node, s.ni, s.facts = nil, nil, nil
		s.free = free{generation: ix.gens[i]}
		return
	}
	if s.node != node {
		s.node, s.name, s.facts = node, node.Name, ix.nodes.Facts(node)
	}
	s.ni, s.free = ni, freeOf(ni)
}

func (ix *candidateIndex) add(i int32) {
	s := &ix.slots[i]
	if s.ni != nil && nodeview.UnannotatedShare(s.ni) {
		ix.unannotated[i] = struct{}{}
	}
	switch {
	case s.node == nil:
		s.where = 0
	case s.facts.Err != nil:
		s.where = 3
		ix.unreadable++
	case s.free.workload == 0 && len(s.facts.Reservations) == 0:
		// A node holding a rebalancing reservation is filed with the running ones, which are
		// always considered: the pod it is held for must be able to land there, and others must
		// hear why it is refused.
		s.where, s.empty = 2, emptyKey{shape: s.facts.Shape, overhead: ix.overheadNumber(s)}
		l := ix.empties[s.empty]
		at := sort.Search(len(l), func(k int) bool { return l[k] >= i })
		l = append(l, 0)
		copy(l[at+1:], l[at:])
		l[at] = i
		ix.empties[s.empty] = l
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

// overheadNumber numbers an empty node's overhead (overheadKey); 0 for a node with no pods at all.
func (ix *candidateIndex) overheadNumber(s *islot) int32 {
	if s.free.pods == 0 {
		return 0
	}
	key := overheadKey(s.ni, &s.free)
	n, ok := ix.overheads[key]
	if !ok {
		n = int32(len(ix.overheads))
		ix.overheads[key] = n
	}
	return n
}

func (ix *candidateIndex) remove(i int32) {
	s := &ix.slots[i]
	delete(ix.unannotated, i)
	switch s.where {
	case 1:
		l := ix.running[s.group][s.bucket]
		last := l[len(l)-1]
		l[s.at] = last
		ix.slots[last].at = s.at
		ix.running[s.group][s.bucket] = l[:len(l)-1]
		ix.nrunning--
	case 2:
		l := ix.empties[s.empty]
		at := sort.Search(len(l), func(k int) bool { return l[k] >= i })
		ix.empties[s.empty] = append(l[:at], l[at+1:]...)
		if len(ix.empties[s.empty]) == 0 {
			delete(ix.empties, s.empty)
		}
	case 3:
		ix.unreadable--
	}
	s.where = 0
}

// answerKey is a request shape: everything room reads of a pod; for a share, what model.Fits
// reads of it too.
type answerKey struct {
	cpuMilli, memory int64
	resource         int
	value            int64
	share            shareKey // zero but for a share
}

// shareKey is what model.Fits reads of a share.
type shareKey struct {
	cpuMilli, memoryMiB, milli int64
	count                      int
}

// shapeAnswer is the answer for one request shape: running members (running nodes with room) and
// extras (the empty nodes picked for the last cycle).
type shapeAnswer struct {
	r      request
	p      model.Pod
	names  sets.Set[string]
	member []int8 // by position: 0 not a member, 1 a member that may fit, 2 one that certainly fits
	fits   int    // members that certainly fit
	extras []int32
	used   uint64
	seen   uint64 // the change number the answer is up to date with
}

// answerFor returns the kept answer of the request's shape, made from the running nodes when there
// is none. A request for several accelerator resources or for device models is rare: those are
// answered anew every cycle. A share's room depends on the devices held in flight too, which the
// caller checks again on the nodes where they can change without a new generation.
func (ix *candidateIndex) answerFor(pl *Plugin, r *request, p *model.Pod) *shapeAnswer {
	key, keyed := answerKeyOf(r, p)
	keyed = keyed && ix.maxAnswers > 0
	ix.uses++
	if keyed {
		if ans := ix.answers[key]; ans != nil {
			ans.used = ix.uses
			ix.catchUp(pl, ans)
			return ans
		}
	}
	var ans *shapeAnswer
	if !keyed && ix.unkept != nil {
		ans = ix.unkept
		clear(ans.names)
		clear(ans.member)
		ans.r, ans.p, ans.fits, ans.extras = *r, *p, 0, ans.extras[:0]
	} else {
		ans = &shapeAnswer{r: *r, p: *p, names: make(sets.Set[string], ix.nrunning+emptyPerShape*len(ix.empties)),
			member: make([]int8, len(ix.slots))}
	}
	ans.used, ans.seen = ix.uses, ix.changes()
	// With one accelerator request, only nodes with that many devices free of it can be members,
	// and nodes without it at all (room says "not certain" for those, and offers them).
	for g := range ix.running {
		from := 0
		if len(r.accelerators) == 1 && g == r.accelerators[0].resource+2 {
			from = int(min(r.accelerators[0].value, maxBucket))
		}
		for b := from; b < len(ix.running[g]); b++ {
			for _, i := range ix.running[g][b] {
				ans.recheck(pl, ix, i)
			}
		}
	}
	if !keyed {
		ix.unkept = ans
		return ans
	}
	if ix.answers == nil {
		ix.answers = map[answerKey]*shapeAnswer{}
	}
	if len(ix.answers) >= ix.maxAnswers {
		var oldest answerKey
		var at uint64
		for k, a := range ix.answers {
			if at == 0 || a.used < at {
				oldest, at = k, a.used
			}
		}
		delete(ix.answers, oldest)
	}
	ix.answers[key] = ans
	return ans
}

// recheck brings the answer's membership up to date for the node at position i.
func (ans *shapeAnswer) recheck(pl *Plugin, ix *candidateIndex, i int32) {
	s := &ix.slots[i]
	was := ans.member[i]
	now := int8(0)
	if s.where == 1 {
		if fits, full := room(&ans.r, &ans.p, pl, s.ni, s.facts, &s.free); !full {
			now = 1
			if fits {
				now = 2
			}
		}
	}
	if was == now {
		return
	}
	ans.member[i] = now
	if was == 2 {
		ans.fits--
	}
	if now == 2 {
		ans.fits++
	}
	switch {
	case now == 0:
		delete(ans.names, s.name)
	case was == 0:
		ans.names.Insert(s.name)
	}
}

// answerKeyOf keys a request by what room reads of it; requests of several accelerator resources
// and requests restricted to device models are not keyed.
func answerKeyOf(r *request, p *model.Pod) (answerKey, bool) {
	if len(r.accelerators) > 1 || len(p.Models) > 0 {
		return answerKey{}, false
	}
	k := answerKey{cpuMilli: r.cpuMilli, memory: r.memory, resource: -1}
	if p.IsShare() {
		k.share = shareKey{cpuMilli: p.CPUMilli, memoryMiB: p.MemoryMiB, milli: p.GPUMilli, count: p.GPUCount}
	}
	if len(r.accelerators) == 1 {
		k.resource, k.value = r.accelerators[0].resource, r.accelerators[0].value
	}
	return k, true
}
