package optimizer

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// fullWalk is the rule the candidate index keeps, written as a walk over every node of the list:
// running nodes with room for the pod, the first emptyPerShape empty nodes (no pods but their
// overhead) with room of each shape and overhead, among the pools the pod may go to; nil (every
// node) for node-specific pods, pods that failed before, pod-level resources, host ports, pods that
// may preempt, when no node it may go to certainly has room and when the catalog cannot read some
// node.
func fullWalk(pl *Plugin, pod *corev1.Pod, p *model.Pod, nodes []fwk.NodeInfo) sets.Set[string] {
	if nodeSpecific(pod) || failedBefore(pod) || pod.Spec.Resources != nil || hostPorts(pod) || pl.usage.mayPreempt(pod) {
		return nil
	}
	r := requestOf(pod)
	el := eligibilityOf(pod)
	out := sets.New[string]()
	empties := map[string]int{}
	anyFits := false
	for _, ni := range nodes {
		node := ni.Node()
		if node == nil {
			continue
		}
		f, fr := pl.nodes.Facts(node), freeOf(ni)
		if f.Err != nil {
			return nil
		}
		fits, full := room(&r, p, pl, ni, f, &fr)
		if full {
			continue
		}
		empty := fr.workload == 0 && len(f.Reservations) == 0
		if empty && !el.admits(node) {
			continue
		}
		if empty {
			key := strconv.Itoa(f.Shape)
			if fr.pods > 0 {
				key += "|" + overheadKey(ni, &fr)
			}
			if empties[key] >= emptyPerShape {
				continue
			}
			empties[key]++
		}
		anyFits = anyFits || fits && el.admits(node)
		out.Insert(node.Name)
	}
	if !anyFits || out.Len() == len(nodes) {
		return nil
	}
	return out
}

// world is a scheduler's cache and snapshot in miniature: NodeInfos changed in place (each change
// a new generation), and a new node list whenever a node is added or removed.
type world struct {
	t       *testing.T
	rng     *rand.Rand
	pl      *Plugin
	list    []fwk.NodeInfo
	infos   map[string]*framework.NodeInfo
	nodes   map[string]*corev1.Node
	pods    map[types.UID]*corev1.Pod // bound pods, latest object
	assumed map[types.UID]*corev1.Pod // reserved, not bound yet
	sets    int                       // checks where the full walk offered a subset of the nodes
	asked   int                       // shapes checked
	// fixedList: no node is added or deleted, so the index never reads a new list (which drops
	// every kept answer).
	fixedList bool
	next      int
}

func newWorld(t *testing.T, seed int64) *world {
	w := &world{t: t, rng: rand.New(rand.NewSource(seed)), pl: testPlugin(t), infos: map[string]*framework.NodeInfo{},
		nodes: map[string]*corev1.Node{}, pods: map[types.UID]*corev1.Pod{}, assumed: map[types.UID]*corev1.Pod{}}
	// Few kept answers in some worlds, so that answers are dropped and made again.
	w.pl.cands.maxAnswers = []int{0, 3, maxAnswers}[seed%3]
	for i := 0; i < 24; i++ {
		n := w.newNode()
		w.nodes[n.Name] = n
		ni := nodeInfo(n)
		w.infos[n.Name] = ni
		w.list = append(w.list, ni)
	}
	return w
}

// newNode is a T4 node of one of a few shapes: 1, 2 or 4 GPUs, spot or not, sometimes tainted.
func (w *world) newNode() *corev1.Node {
	w.next++
	n := t4Node("n"+strconv.Itoa(w.next), []int64{1, 2, 4}[w.rng.Intn(3)], w.rng.Intn(2) == 0, false)
	if w.rng.Intn(5) == 0 {
		n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "x", Effect: corev1.TaintEffectNoSchedule}}
	}
	return n
}

// relist makes a new node list, as the snapshot does when a node comes or goes.
func (w *world) relist(drop string, add *framework.NodeInfo) {
	var list []fwk.NodeInfo
	for _, ni := range w.list {
		if ni.Node().Name != drop {
			list = append(list, ni)
		}
	}
	if add != nil {
		list = append(list, add)
	}
	w.list = list
}

func (w *world) liveNodes() []string {
	out := make([]string, 0, len(w.list))
	for _, ni := range w.list {
		out = append(out, ni.Node().Name)
	}
	sort.Strings(out)
	return out
}

func (w *world) randomPod(name string) *corev1.Pod {
	switch w.rng.Intn(7) {
	case 0:
		return pod(name)
	case 1:
		return pod(name, withShare(strconv.Itoa(100*(1+w.rng.Intn(9)))), withDevice(strconv.Itoa(w.rng.Intn(4))))
	case 2:
		return pod(name, withShare(strconv.Itoa(100*(1+w.rng.Intn(9)))))
	default:
		return pod(name, withGPUs(catalog.ResourceNVIDIAGPU, []int64{1, 1, 2, 4}[w.rng.Intn(4)]))
	}
}

func (w *world) pick(m map[types.UID]*corev1.Pod) *corev1.Pod {
	if len(m) == 0 {
		return nil
	}
	uids := make([]string, 0, len(m))
	for uid := range m {
		uids = append(uids, string(uid))
	}
	sort.Strings(uids)
	return m[types.UID(uids[w.rng.Intn(len(uids))])]
}

// step does one random thing to the cache.
func (w *world) step() {
	logger := klog.Background()
	live := w.liveNodes()
	n := 13
	if w.fixedList {
		n = 11
	}
	switch op := w.rng.Intn(n); {
	case op < 3: // a pod bound by someone else
		w.next++
		p := w.randomPod("p" + strconv.Itoa(w.next))
		p.Spec.NodeName = live[w.rng.Intn(len(live))]
		w.pods[p.UID] = p
		w.infos[p.Spec.NodeName].AddPod(p)
	case op < 5: // Reserve: the scheduler assumes the pod
		w.next++
		p := w.randomPod("a" + strconv.Itoa(w.next))
		p.Spec.NodeName = live[w.rng.Intn(len(live))]
		w.assumed[p.UID] = p
		w.infos[p.Spec.NodeName].AddPod(p)
	case op < 6: // Unreserve: the scheduler forgets the pod
		if p := w.pick(w.assumed); p != nil {
			delete(w.assumed, p.UID)
			_ = w.infos[p.Spec.NodeName].RemovePod(logger, p)
		}
	case op < 7: // an assumed pod is bound: the cache swaps its copy for the informer's object
		if a := w.pick(w.assumed); a != nil {
			delete(w.assumed, a.UID)
			b := a.DeepCopy()
			w.pods[b.UID] = b
			ni := w.infos[b.Spec.NodeName]
			_ = ni.RemovePod(logger, a)
			ni.AddPod(b)
		}
	case op < 8: // a bound pod is updated (its status)
		if old := w.pick(w.pods); old != nil {
			p := old.DeepCopy()
			p.Status.Phase = corev1.PodRunning
			w.pods[p.UID] = p
			ni := w.infos[p.Spec.NodeName]
			_ = ni.RemovePod(logger, old)
			ni.AddPod(p)
		}
	case op < 10: // a bound pod is deleted
		if p := w.pick(w.pods); p != nil {
			delete(w.pods, p.UID)
			_ = w.infos[p.Spec.NodeName].RemovePod(logger, p)
		}
	case op < 11: // a node changes: a label (its shape) or its GPUs
		old := w.nodes[live[w.rng.Intn(len(live))]]
		n := old.DeepCopy()
		if w.rng.Intn(2) == 0 {
			n.Labels["zone"] = strconv.Itoa(w.rng.Intn(2))
		} else {
			n.Status.Allocatable[catalog.ResourceNVIDIAGPU] = *resource.NewQuantity(int64(1+w.rng.Intn(4)), resource.DecimalSI)
		}
		w.nodes[n.Name] = n
		w.infos[n.Name].SetNode(n)
	case op < 12: // a node is added
		n := w.newNode()
		w.nodes[n.Name] = n
		ni := nodeInfo(n)
		w.infos[n.Name] = ni
		w.relist("", ni)
	case len(live) > 1: // a node is deleted with its pods
		name := live[w.rng.Intn(len(live))]
		for uid, p := range w.pods {
			if p.Spec.NodeName == name {
				delete(w.pods, uid)
			}
		}
		for uid, p := range w.assumed {
			if p.Spec.NodeName == name {
				delete(w.assumed, uid)
			}
		}
		w.relist(name, nil)
	}
}

// shapes are the requests the index is checked for: more kinds of CPU pods than some worlds keep
// answers for.
var shapes = []*corev1.Pod{
	pod("q-cpu"),
	pod("q-cpu-big", func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("44")
	}),
	pod("q-cpu-mid", func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("20")
	}),
	pod("q-mem", func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("100Gi")
	}),
	pod("q-gpu1", withGPUs(catalog.ResourceNVIDIAGPU, 1)),
	pod("q-gpu2", withGPUs(catalog.ResourceNVIDIAGPU, 2)),
	pod("q-gpu4", withGPUs(catalog.ResourceNVIDIAGPU, 4)),
	pod("q-gpu8", withGPUs(catalog.ResourceNVIDIAGPU, 8)),
	pod("q-share300", withShare("300")),
	pod("q-share900", withShare("900")),
	pod("q-amd", withGPUs(catalog.ResourceAMDGPU, 1)),
}

// check compares the index with the full walk for some shapes, in a random order: the later a
// shape in shapes, the more rarely it is asked for, so that some kept answers are many changes
// behind when next used, or dropped for it.
func (w *world) check(step int) {
	w.t.Helper()
	for _, k := range w.rng.Perm(len(shapes)) {
		if w.rng.Intn(1+3*k) != 0 {
			continue
		}
		w.checkShape(step, shapes[k])
	}
}

// checkShape compares the index with the full walk for one pod.
func (w *world) checkShape(step int, p *corev1.Pod) {
	w.t.Helper()
	w.asked++
	req := kube.PodRequest(p)
	want := fullWalk(w.pl, p, &req, w.list)
	got := w.pl.cands.candidates(w.pl, p, &req, w.list)
	if want != nil {
		w.sets++
	}
	if (want == nil) != (got == nil) || !want.Equal(got) {
		w.t.Fatalf("step %d, pod %s: index (-full walk +index):\n%s", step, p.Name, cmp.Diff(sets.List(want), sets.List(got)))
	}
}

// A kept answer is brought up to date with the changes logged since it was last used, however the
// log was cut meanwhile: one shape is asked for every few steps, another so rarely that the log
// outgrows the limit and is cut back to the first shape's last use.
func TestKeptAnswerCatchesUpAcrossLogTrims(t *testing.T) {
	often, rarely := shapes[4], shapes[1]
	for seed := int64(1); seed <= 30; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			w := newWorld(t, seed)
			w.pl.cands.maxAnswers, w.fixedList = maxAnswers, true
			trims := 0
			for i := 0; i < 3000; i++ {
				w.step()
				if i%150 == 0 {
					w.checkShape(i, rarely)
				}
				if w.rng.Intn(3) == 0 {
					before := w.pl.cands.changesBase
					w.checkShape(i, often)
					if w.pl.cands.changesBase != before {
						trims++
					}
				}
			}
			if trims == 0 {
				t.Error("the change log was never cut: the test would not see an answer behind a cut")
			}
		})
	}
}

// TestCandidateIndexMatchesFullWalk drives random changes to the snapshot (pods bound, reserved,
// unreserved, assumed then bound, updated, deleted; nodes relabelled, resized, added, deleted) and
// checks after random steps that the index gives the full walk's answer for every request shape.
func TestCandidateIndexMatchesFullWalk(t *testing.T) {
	for seed := int64(1); seed <= 60; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			w := newWorld(t, seed)
			checks := 0
			for i := 0; i < 1500; i++ {
				w.step()
				if w.rng.Intn(3) == 0 {
					w.check(i)
					checks++
				}
			}
			if 3*w.sets < w.asked {
				t.Errorf("only %d of %d shapes checked narrowed the nodes: the test would not see a wrong set", w.sets, w.asked)
			}
			t.Logf("%d checks of %d shapes (%d offered a subset of the nodes)", checks, w.asked, w.sets)
		})
	}
}

// The plugin's own path: PreFilter answers from the index, sees a node fill up in the next cycle,
// and reads again only that node.
func TestPreFilterFromIndex(t *testing.T) {
	pl := testPlugin(t)
	roomy := nodeInfo(t4Node("roomy", 4, false, false), pod("y", withGPUs(catalog.ResourceNVIDIAGPU, 1)))
	infos := []fwk.NodeInfo{roomy}
	for i := 0; i < 3; i++ {
		infos = append(infos, nodeInfo(t4Node("od-"+strconv.Itoa(i), 4, false, false)))
	}
	p := pod("p", withGPUs(catalog.ResourceNVIDIAGPU, 1))
	names := func() []string {
		res, st := pl.PreFilter(context.Background(), framework.NewCycleState(), p, infos)
		if !st.IsSuccess() {
			t.Fatal(st)
		}
		if res == nil {
			return nil
		}
		return sets.List(res.NodeNames)
	}
	if diff := cmp.Diff([]string{"od-0", "od-1", "roomy"}, names()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	od0 := pl.cands.slots[1]
	y2 := pod("y2", withGPUs(catalog.ResourceNVIDIAGPU, 3))
	y2.Spec.NodeName = "roomy"
	roomy.AddPod(y2)
	if diff := cmp.Diff([]string{"od-0", "od-1"}, names()); diff != "" {
		t.Errorf("after roomy filled up (-want +got):\n%s", diff)
	}
	if pl.cands.slots[1] != od0 {
		t.Errorf("od-0 was read again though its NodeInfo did not change")
	}
	if len(pl.cands.answers) != 1 {
		t.Errorf("kept answers: %d, want the one shape asked for", len(pl.cands.answers))
	}
}

// BenchmarkPreFilterCandidates1000 compares PreFilter over 1,000 four-GPU nodes in three ways, in
// one run: the full walk (every node's room worked out again), the index answering each cycle from
// the running nodes (no kept answers) and the index with kept answers; with no node running, 100
// and 900; and for a GPU share, the full walk and the index. Between two cycles one pod is placed and the previous one removed, as when the
// scheduler is busy. Only PreFilter's node choice is timed.
func BenchmarkPreFilterCandidates1000(b *testing.B) {
	for _, running := range []int{0, 100, 900} {
		for _, mode := range []string{"fullwalk", "index-unkept", "index", "share-fullwalk", "share-index"} {
			b.Run(fmt.Sprintf("running=%d/%s", running, mode), func(b *testing.B) {
				pl, infos, p := benchSetup()
				if mode == "index-unkept" {
					pl.cands.maxAnswers = 0
				}
				if strings.HasPrefix(mode, "share-") {
					p = pod("s", withShare("300"))
				}
				for i := 0; i < running; i++ {
					ni := infos[i*len(infos)/running].(*framework.NodeInfo)
					q := pod("r"+strconv.Itoa(i), withGPUs(catalog.ResourceNVIDIAGPU, 1))
					q.Spec.NodeName = ni.Node().Name
					ni.AddPod(q)
				}
				churn := make([]*corev1.Pod, 64)
				for i := range churn {
					churn[i] = pod("c"+strconv.Itoa(i), withGPUs(catalog.ResourceNVIDIAGPU, 1))
					churn[i].Spec.NodeName = infos[(i*37)%len(infos)].Node().Name
				}
				logger := klog.Background()
				req := kube.PodRequest(p)
				choose := func() sets.Set[string] {
					if strings.HasSuffix(mode, "fullwalk") {
						return fullWalk(pl, p, &req, infos)
					}
					return pl.cands.candidates(pl, p, &req, infos)
				}
				choose()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					// the scheduler's cache at work, not timed
					b.StopTimer()
					q := churn[i%len(churn)]
					infos[(i%len(churn)*37)%len(infos)].(*framework.NodeInfo).AddPod(q)
					if i > 0 {
						prev := churn[(i-1)%len(churn)]
						_ = infos[((i-1)%len(churn)*37)%len(infos)].(*framework.NodeInfo).RemovePod(logger, prev)
					}
					b.StartTimer()
					choose()
				}
			})
		}
	}
}

// On a production cluster every node runs DaemonSet pods: nodes running nothing else are still
// empty twins, pruned to emptyPerShape; a pod whose selector points at a full pool, or one that may
// preempt a lower-priority pod, is offered every node, so that preemption sees them all.
func TestCandidatesOnNodesWithDaemons(t *testing.T) {
	pl := testPlugin(t)
	daemon := func(node, uid string) *corev1.Pod {
		p := pod("exporter-" + node)
		p.UID = types.UID("exporter-" + node)
		p.Spec.NodeName = node
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "node-exporter", UID: types.UID(uid), Controller: &yes}}
		return p
	}
	var infos []fwk.NodeInfo
	for i := range 5 {
		name := "od-" + strconv.Itoa(i)
		// od-2 runs another revision of the DaemonSet: not a twin of the others.
		uid := map[bool]string{true: "ds-b", false: "ds-a"}[i == 2]
		infos = append(infos, nodeInfo(t4Node(name, 4, false, false), daemon(name, uid)))
	}
	for i := range 2 {
		name := "pool-b-" + strconv.Itoa(i)
		n := t4Node(name, 4, false, false)
		n.Labels["pool"] = "b"
		busy := pod("busy-"+name, withGPUs(catalog.ResourceNVIDIAGPU, 4))
		busy.Spec.NodeName = name
		infos = append(infos, nodeInfo(n, daemon(name, "ds-a"), busy))
		pl.usage.setNode(name, n)
		pl.usage.setPod(busy)
	}
	candidates := func(p *corev1.Pod) []string {
		got := pl.cands.candidates(pl, p, new(kube.PodRequest(p)), infos)
		if got == nil {
			return nil
		}
		return sets.List(got)
	}
	if diff := cmp.Diff([]string{"od-0", "od-1", "od-2"}, candidates(pod("p", withGPUs(catalog.ResourceNVIDIAGPU, 1)))); diff != "" {
		t.Errorf("daemon-only nodes (-want +got):\n%s", diff)
	}
	toB := pod("to-b", withGPUs(catalog.ResourceNVIDIAGPU, 1))
	toB.Spec.NodeSelector = map[string]string{"pool": "b"}
	if got := candidates(toB); got != nil {
		t.Errorf("a pod whose pool is full was offered %v, want every node", got)
	}
	urgent := pod("urgent", withGPUs(catalog.ResourceNVIDIAGPU, 1))
	urgent.Spec.Priority = new(int32(1000))
	if got := candidates(urgent); got != nil {
		t.Errorf("a pod that may preempt the busy pods was offered %v, want every node", got)
	}
	never := corev1.PreemptNever
	urgent.Spec.PreemptionPolicy = &never
	if got := candidates(urgent); got == nil {
		t.Error("a pod that never preempts is narrowed as any other")
	}
}

// A static pod's mirror is controlled by its node, a different one on every node: the static pod
// is known by its name without the node's, so that empty nodes running the same static pods (RKE2
// runs kube-proxy so on every node) are still twins, pruned to emptyPerShape.
func TestCandidatesOnNodesWithStaticPods(t *testing.T) {
	pl := testPlugin(t)
	mirror := func(node string) *corev1.Pod {
		p := pod("kube-proxy-" + node)
		p.UID = types.UID("mirror-" + node)
		p.Spec.NodeName = node
		p.Annotations[corev1.MirrorPodAnnotationKey] = "a1b2"
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node, UID: types.UID("node-" + node), Controller: &yes}}
		return p
	}
	busy := pod("busy", withGPUs(catalog.ResourceNVIDIAGPU, 1))
	busy.Spec.NodeName = "running"
	infos := []fwk.NodeInfo{nodeInfo(t4Node("running", 4, false, false), mirror("running"), busy)}
	for i := range 4 {
		name := "od-" + strconv.Itoa(i)
		infos = append(infos, nodeInfo(t4Node(name, 4, false, false), mirror(name)))
	}
	p := pod("p", withGPUs(catalog.ResourceNVIDIAGPU, 1))
	got := pl.cands.candidates(pl, p, new(kube.PodRequest(p)), infos)
	if diff := cmp.Diff([]string{"od-0", "od-1", "running"}, sets.List(got)); diff != "" {
		t.Errorf("nodes running a static pod (-want +got):\n%s", diff)
	}
}

// Empty nodes are twins only when their overhead is the same: the same DaemonSet at the same
// revision, the same host ports held. A pod that does not tolerate a pool's taint finds no room
// there, so when the only room is on such a pool every node is offered (and the event says why for
// each); a pod asking for a host port is offered every node, since the NodePorts filter checks it
// against each node's pods.
func TestCandidatesTellOverheadsApartAndHonourTaints(t *testing.T) {
	pl := testPlugin(t)
	daemon := func(node, revision string, hostPort int32) *corev1.Pod {
		p := pod("exporter-" + node)
		p.UID = types.UID("exporter-" + node)
		p.Spec.NodeName = node
		p.Labels = map[string]string{appsv1.ControllerRevisionHashLabelKey: revision}
		if hostPort > 0 {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: hostPort, HostPort: hostPort, Protocol: corev1.ProtocolTCP}}
		}
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "node-exporter", UID: "ds-a", Controller: &yes}}
		return p
	}
	var infos []fwk.NodeInfo
	for i, d := range []struct {
		revision string
		port     int32
	}{{"v1", 0}, {"v1", 0}, {"v2", 0}, {"v1", 9100}, {"v1", 0}} {
		name := "od-" + strconv.Itoa(i)
		infos = append(infos, nodeInfo(t4Node(name, 4, false, false), daemon(name, d.revision, d.port)))
	}
	candidates := func(p *corev1.Pod, nodes []fwk.NodeInfo) []string {
		got := pl.cands.candidates(pl, p, new(kube.PodRequest(p)), nodes)
		if got == nil {
			return nil
		}
		return sets.List(got)
	}
	// od-4 is od-0's and od-1's twin; od-2 (another revision) and od-3 (a host port) are not.
	if diff := cmp.Diff([]string{"od-0", "od-1", "od-2", "od-3"}, candidates(pod("p", withGPUs(catalog.ResourceNVIDIAGPU, 1)), infos)); diff != "" {
		t.Errorf("daemon-only nodes (-want +got):\n%s", diff)
	}
	ported := pod("ported", withGPUs(catalog.ResourceNVIDIAGPU, 1))
	ported.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 8080, Protocol: corev1.ProtocolTCP}}
	if got := candidates(ported, infos); got != nil {
		t.Errorf("a pod asking for a host port was offered %v, want every node", got)
	}

	// A full running node and a pool of empty nodes tainted for another team.
	busy := pod("busy", withGPUs(catalog.ResourceNVIDIAGPU, 4))
	busy.Spec.NodeName = "busy"
	tainted := []fwk.NodeInfo{nodeInfo(t4Node("busy", 4, false, false), busy)}
	for i := range 3 {
		n := t4Node("team-"+strconv.Itoa(i), 4, false, false)
		n.Spec.Taints = []corev1.Taint{{Key: "team", Value: "b", Effect: corev1.TaintEffectNoSchedule}}
		tainted = append(tainted, nodeInfo(n))
	}
	if got := candidates(pod("p", withGPUs(catalog.ResourceNVIDIAGPU, 1)), tainted); got != nil {
		t.Errorf("a pod whose only room is on a pool it does not tolerate was offered %v, want every node", got)
	}
	tolerant := pod("tolerant", withGPUs(catalog.ResourceNVIDIAGPU, 1))
	tolerant.Spec.Tolerations = []corev1.Toleration{{Key: "team", Operator: corev1.TolerationOpEqual, Value: "b", Effect: corev1.TaintEffectNoSchedule}}
	if diff := cmp.Diff([]string{"team-0", "team-1"}, candidates(tolerant, tainted)); diff != "" {
		t.Errorf("a pod tolerating the pool's taint (-want +got):\n%s", diff)
	}
}

// A share's kept answer follows the devices held in flight, which change a node's view without a
// new NodeInfo generation: on a node whose share pod has no device written yet, releasing its
// hold frees the device a larger share needs, and the node is offered again.
func TestKeptShareAnswerFollowsHeldDevices(t *testing.T) {
	pl := testPlugin(t)
	share := func(name, node, milli, device string) *corev1.Pod {
		p := pod(name, withShare(milli))
		p.UID, p.Spec.NodeName = types.UID(name), node
		if device != "" {
			p.Annotations[kube.AnnotationGPUIndex] = device
		}
		return p
	}
	// a: 600 written on device 0, 300 unwritten. Held on device 1, the 300 leaves 400 and 700
	// free: no room for 800. Released, it goes best-fit onto device 0 and device 1 is free.
	unwritten := share("unwritten", "a", "300", "")
	a := nodeInfo(t4Node("a", 2, false, false), share("written", "a", "600", "0"), unwritten)
	b := nodeInfo(t4Node("b", 2, false, false), share("other", "b", "100", "0"))
	whole := pod("whole", withGPUs(catalog.ResourceNVIDIAGPU, 1))
	whole.Spec.NodeName = "c"
	c := nodeInfo(t4Node("c", 1, false, false), whole) // full: never offered
	infos := []fwk.NodeInfo{a, b, c}
	p := pod("q", withShare("800"))
	req := kube.PodRequest(p)
	names := func() []string { return sets.List(pl.cands.candidates(pl, p, &req, infos)) }

	pl.nodes.Hold(unwritten.UID, "a", 1)
	if diff := cmp.Diff([]string{"b"}, names()); diff != "" {
		t.Errorf("with the share held on device 1 (-want +got):\n%s", diff)
	}
	if len(pl.cands.answers) != 1 {
		t.Fatalf("kept answers: %d, want the share's", len(pl.cands.answers))
	}
	pl.nodes.Release(unwritten.UID)
	if diff := cmp.Diff([]string{"a", "b"}, names()); diff != "" {
		t.Errorf("after the hold was released, same generations (-want +got):\n%s", diff)
	}
}

// BenchmarkRoundStart times the cycle after 400 of 1,000 nodes changed (the previous round's pods
// gone), with 32 request shapes' answers kept: as shipped, only the asked shape's answer catches up
// with the changes; the baseline ("eager", how the index worked before) brings every kept answer
// up to date at once, whose ratio it prints.
func BenchmarkRoundStart(b *testing.B) {
	var lazy float64
	for _, mode := range []string{"lazy", "eager"} {
		b.Run(mode, func(b *testing.B) {
			pl, infos, p := benchSetup()
			var shapePods []*corev1.Pod
			for k := range 32 {
				shapePods = append(shapePods, pod("s"+strconv.Itoa(k), withGPUs(catalog.ResourceNVIDIAGPU, 1), func(q *corev1.Pod) {
					q.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(100*(k+1)), resource.DecimalSI)
				}))
			}
			ask := func(q *corev1.Pod) {
				req := kube.PodRequest(q)
				pl.cands.candidates(pl, q, &req, infos)
			}
			logger := klog.Background()
			round := make([]*corev1.Pod, 400)
			for i := range round {
				round[i] = pod("r"+strconv.Itoa(i), withGPUs(catalog.ResourceNVIDIAGPU, 1))
				round[i].Spec.NodeName = infos[i].Node().Name
			}
			for i := 400; i < 900; i++ { // running through every round
				q := pod("x"+strconv.Itoa(i), withGPUs(catalog.ResourceNVIDIAGPU, 1))
				q.Spec.NodeName = infos[i].Node().Name
				infos[i].(*framework.NodeInfo).AddPod(q)
			}
			for _, q := range shapePods {
				ask(q)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for j, q := range round { // a round comes or goes on 400 nodes
					if i%2 == 0 {
						infos[j].(*framework.NodeInfo).AddPod(q)
					} else {
						_ = infos[j].(*framework.NodeInfo).RemovePod(logger, q)
					}
				}
				b.StartTimer()
				ask(p)
				if mode == "eager" {
					for _, ans := range pl.cands.answers {
						pl.cands.catchUp(pl, ans)
					}
				}
			}
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if mode == "lazy" {
				lazy = perOp
			} else if lazy > 0 {
				b.ReportMetric(perOp/lazy, "eager/lazy")
			}
		})
	}
}
