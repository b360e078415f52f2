package kcloud

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
)

// world is a scheduler's cache and snapshot in miniature, and the informer feeding both it and the
// candidate index. Every informer event goes into two queues in the same order: the cache applies
// it to the NodeInfos when it pops it from one (land), the plugin's handler hears of it when it
// pops it from the other (deliver); each side goes at its own pace. Reserve and Unreserve are the
// scheduler's own: the pod is assumed before Reserve and forgotten after Unreserve.
type world struct {
	t     *testing.T
	rng   *rand.Rand
	pl    *Plugin
	list  []fwk.NodeInfo                 // the snapshot's node list
	infos map[string]*framework.NodeInfo // every node's NodeInfo, listed or not yet
	// what the informer has said (ahead of both queues)
	nodes             map[string]*corev1.Node
	gone              sets.Set[string]
	pods              map[types.UID]*corev1.Pod // bound pods, latest object
	assumed           map[types.UID]*corev1.Pod // reserved, not bound yet
	cacheQ            []func()
	handlerQ          []func()
	landed, delivered int
	sets              int // checks where the full walk offered a subset of the nodes
	next              int
}

func newWorld(t *testing.T, seed int64) *world {
	pl := testPlugin(t)
	pl.cands.enabled = true
	w := &world{t: t, rng: rand.New(rand.NewSource(seed)), pl: pl, infos: map[string]*framework.NodeInfo{},
		nodes: map[string]*corev1.Node{}, gone: sets.New[string](), pods: map[types.UID]*corev1.Pod{}, assumed: map[types.UID]*corev1.Pod{}}
	for i := 0; i < 24; i++ {
		n := w.newNode()
		w.nodes[n.Name] = n
		ni := nodeInfo(n)
		w.infos[n.Name] = ni
		w.list = append(w.list, ni)
		pl.cands.nodeEvent(n, false)
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

// event queues an informer event: apply is the cache's side, hear the handler's.
func (w *world) event(apply, hear func()) {
	w.cacheQ = append(w.cacheQ, apply)
	w.handlerQ = append(w.handlerQ, hear)
}

func (w *world) land() {
	if w.landed < len(w.cacheQ) {
		w.cacheQ[w.landed]()
		w.landed++
	}
}

func (w *world) deliver() {
	if w.delivered < len(w.handlerQ) {
		w.handlerQ[w.delivered]()
		w.delivered++
	}
}

func (w *world) drain() {
	for w.landed < len(w.cacheQ) || w.delivered < len(w.handlerQ) {
		w.land()
		w.deliver()
	}
}

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
	var out []string
	for name := range w.nodes {
		if !w.gone.Has(name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (w *world) randomPod(name string) *corev1.Pod {
	switch w.rng.Intn(6) {
	case 0:
		return pod(name)
	case 1:
		return pod(name, withShare(strconv.Itoa(100*(1+w.rng.Intn(9)))), withDevice(strconv.Itoa(w.rng.Intn(4))))
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
	return m[types.UID(sets.List(sets.New(uids...))[w.rng.Intn(len(uids))])]
}

// step does one random thing.
func (w *world) step() {
	ix := w.pl.cands
	logger := klog.Background()
	live := w.liveNodes()
	switch op := w.rng.Intn(20); {
	case op < 4:
		w.land()
	case op < 8:
		w.deliver()
	case op < 10 && len(live) > 0: // a pod bound by someone else
		w.next++
		p := w.randomPod("p" + strconv.Itoa(w.next))
		p.Spec.NodeName = live[w.rng.Intn(len(live))]
		w.pods[p.UID] = p
		ni := w.infos[p.Spec.NodeName]
		w.event(func() { ni.AddPod(p) }, func() { ix.podEvent(p, false) })
	case op < 12 && len(live) > 0: // Reserve: the scheduler assumes the pod, then the plugin hears of it
		w.next++
		p := w.randomPod("a" + strconv.Itoa(w.next))
		p.Spec.NodeName = live[w.rng.Intn(len(live))]
		w.assumed[p.UID] = p
		w.infos[p.Spec.NodeName].AddPod(p)
		ix.reserved(p.Spec.NodeName, p)
	case op < 13: // Unreserve, then the scheduler forgets the pod
		if p := w.pick(w.assumed); p != nil {
			delete(w.assumed, p.UID)
			ix.unreserved(p.Spec.NodeName, p)
			_ = w.infos[p.Spec.NodeName].RemovePod(logger, p)
		}
	case op < 14: // an assumed pod is bound: the cache swaps its copy for the informer's object
		if a := w.pick(w.assumed); a != nil {
			delete(w.assumed, a.UID)
			b := a.DeepCopy()
			w.pods[b.UID] = b
			ni := w.infos[b.Spec.NodeName]
			w.event(func() { _ = ni.RemovePod(logger, a); ni.AddPod(b) }, func() { ix.podEvent(b, false) })
		}
	case op < 15: // a bound pod is updated (its status)
		if old := w.pick(w.pods); old != nil {
			p := old.DeepCopy()
			p.Status.Phase = corev1.PodRunning
			w.pods[p.UID] = p
			ni := w.infos[p.Spec.NodeName]
			w.event(func() { _ = ni.RemovePod(logger, old); ni.AddPod(p) }, func() { ix.podEvent(p, false) })
		}
	case op < 17: // a bound pod is deleted
		if p := w.pick(w.pods); p != nil {
			delete(w.pods, p.UID)
			ni := w.infos[p.Spec.NodeName]
			w.event(func() { _ = ni.RemovePod(logger, p) }, func() { ix.podEvent(p, true) })
		}
	case op < 18 && len(live) > 0: // a node changes: a label (its shape) or its GPUs
		old := w.nodes[live[w.rng.Intn(len(live))]]
		n := old.DeepCopy()
		if w.rng.Intn(2) == 0 {
			n.Labels["zone"] = strconv.Itoa(w.rng.Intn(2))
		} else {
			q := *resource.NewQuantity(int64(1+w.rng.Intn(4)), resource.DecimalSI)
			n.Status.Allocatable[catalog.ResourceNVIDIAGPU] = q
		}
		w.nodes[n.Name] = n
		ni := w.infos[n.Name]
		w.event(func() { ni.SetNode(n) }, func() { ix.nodeEvent(n, false) })
	case op < 19: // a node is added
		n := w.newNode()
		w.nodes[n.Name] = n
		ni := nodeInfo(n)
		w.infos[n.Name] = ni
		w.event(func() { w.relist("", ni) }, func() { ix.nodeEvent(n, false) })
	case len(live) > 1: // a node is deleted (its pods stay bound until deleted)
		n := w.nodes[live[w.rng.Intn(len(live))]]
		w.gone.Insert(n.Name)
		w.event(func() { w.relist(n.Name, nil) }, func() { ix.nodeEvent(n, true) })
	}
}

// shapes are the requests the index is checked for.
var shapes = []*corev1.Pod{
	pod("q-cpu"),
	pod("q-cpu-big", func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("44")
	}),
	pod("q-gpu1", withGPUs(catalog.ResourceNVIDIAGPU, 1)),
	pod("q-gpu2", withGPUs(catalog.ResourceNVIDIAGPU, 2)),
	pod("q-gpu4", withGPUs(catalog.ResourceNVIDIAGPU, 4)),
	pod("q-gpu8", withGPUs(catalog.ResourceNVIDIAGPU, 8)),
	pod("q-share300", withShare("300")),
	pod("q-share900", withShare("900")),
	pod("q-amd", withGPUs(catalog.ResourceAMDGPU, 1)),
}

// check compares the index with the full walk for every shape. The cache may be ahead of the
// handler only by what the handler has heard of: events the cache applied but the handler has
// not heard yet are delivered first (that window is the one the design leaves open).
func (w *world) check(step int) {
	w.t.Helper()
	for w.delivered < w.landed {
		w.deliver()
	}
	for _, p := range shapes {
		req := kube.PodRequest(p)
		want := w.pl.candidateNodes(p, &req, w.list)
		got := w.pl.cands.candidates(w.pl, p, &req, w.list)
		if want != nil {
			w.sets++
		}
		if (want == nil) != (got == nil) || !want.Equal(got) {
			w.t.Fatalf("step %d, pod %s: index (-full walk +index):\n%s", step, p.Name, cmp.Diff(sets.List(want), sets.List(got)))
		}
	}
}

func TestCandidateIndexMatchesFullWalk(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
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
			// Everything applied and heard, the pods of deleted nodes deleted too (as the pod
			// garbage collector does), and a last pod bound: the index keeps no hint.
			w.drain()
			for uid, p := range w.pods {
				if w.gone.Has(p.Spec.NodeName) {
					delete(w.pods, uid)
					w.pl.cands.podEvent(p, true)
				}
			}
			for uid, a := range w.assumed {
				delete(w.assumed, uid)
				w.pl.cands.unreserved(a.Spec.NodeName, a)
				_ = w.infos[a.Spec.NodeName].RemovePod(klog.Background(), a)
			}
			w.check(-1)
			last := pod("last")
			last.Spec.NodeName = w.liveNodes()[0]
			w.infos[last.Spec.NodeName].AddPod(last)
			w.pl.cands.podEvent(last, false)
			w.check(-1)
			w.check(-1)
			if n := len(w.pl.cands.hints); n != 0 {
				for name, h := range w.pl.cands.hints {
					_, listed := w.pl.cands.pos[name]
					for uid, ph := range h.pods {
						t.Logf("%s (listed %v, gone %v): node %v, pod %s want %v seq %d landed %v", name, listed, w.gone.Has(name), h.node != nil, uid, ph.want != nil, ph.seq, ph.landed)
					}
				}
				t.Errorf("%d nodes still hinted once the snapshot shows every event", n)
			}
			t.Logf("%d checks (%d pod shapes offered a subset of the nodes), %d events", checks, w.sets, len(w.cacheQ))
		})
	}
}

// The plugin's own path: PreFilter answers from the index once informers feed it, and sees a node
// fill up once it hears of the pod.
func TestPreFilterFromIndex(t *testing.T) {
	pl := testPlugin(t)
	pl.cands.enabled = true
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
	y2 := pod("y2", withGPUs(catalog.ResourceNVIDIAGPU, 3))
	y2.Spec.NodeName = "roomy"
	roomy.AddPod(y2)
	pl.cands.podEvent(y2, false)
	if diff := cmp.Diff([]string{"od-0", "od-1"}, names()); diff != "" {
		t.Errorf("after roomy filled up (-want +got):\n%s", diff)
	}
	if len(pl.cands.hints) != 0 {
		t.Errorf("hints left: %d", len(pl.cands.hints))
	}
}

// BenchmarkPreFilterCandidates1000 compares PreFilter over 1,000 four-GPU nodes with the full
// walk (what PreFilter did before the index) and with the index, in one run: with no node running,
// with 100 running (one GPU used), and with 900 running; between two cycles one pod is placed
// (Reserve) and the previous one removed (Unreserve), as when the scheduler is busy. Only PreFilter
// is timed.
func BenchmarkPreFilterCandidates1000(b *testing.B) {
	for _, running := range []int{0, 100, 900} {
		for _, mode := range []string{"fullwalk", "index"} {
			b.Run(fmt.Sprintf("running=%d/%s", running, mode), func(b *testing.B) {
				pl, infos, p := benchSetup()
				pl.cands.enabled = mode == "index"
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
				ctx, logger := context.Background(), klog.Background()
				pl.PreFilter(ctx, framework.NewCycleState(), p, infos)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					// the scheduler's cache at work, not timed
					b.StopTimer()
					q := churn[i%len(churn)]
					info := infos[(i%len(churn)*37)%len(infos)].(*framework.NodeInfo)
					info.AddPod(q)
					pl.cands.reserved(q.Spec.NodeName, q)
					if i > 0 {
						prev := churn[(i-1)%len(churn)]
						_ = infos[((i-1)%len(churn)*37)%len(infos)].(*framework.NodeInfo).RemovePod(logger, prev)
						pl.cands.unreserved(prev.Spec.NodeName, prev)
					}
					state := framework.NewCycleState()
					b.StartTimer()
					pl.PreFilter(ctx, state, p, infos)
				}
			})
		}
	}
}
