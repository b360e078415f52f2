package optimizer

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/scheduler/internal/schedtest"
	"kcloud.io/optimizer/pkg/scheduler/nodeview"
)

// usageWorld is a cluster's pods and nodes as the test records them, driven through limitUsage's
// event methods, and recounted from the record after every step.
type usageWorld struct {
	t      *testing.T
	rng    *rand.Rand
	u      *limitUsage
	nodes  map[string]*corev1.Node
	pods   map[types.UID]*corev1.Pod // every pod the cluster has, bound or not
	assume map[types.UID]string      // pods Reserve placed, whose binding is not seen yet
	cost   []*kcloudv1alpha1.CostPolicy
	power  []*kcloudv1alpha1.PowerPolicy
	wos    []*kcloudv1alpha1.WorkloadOptimizer
	serial int
}

func newUsageWorld(t *testing.T, seed int64) *usageWorld {
	w := &usageWorld{t: t, rng: rand.New(rand.NewSource(seed)), u: newLimitUsage(nodeview.New(catalog.Default())),
		nodes: map[string]*corev1.Node{}, pods: map[types.UID]*corev1.Pod{}, assume: map[types.UID]string{}}
	for i := range 6 {
		w.addNode(fmt.Sprintf("n%d", i))
	}
	capUSD, watts := 100.0, 1e5
	for i, team := range []string{"a", "b"} {
		sel := &metav1.LabelSelector{MatchLabels: map[string]string{"team": team}}
		// UID and generation as the API server sets them: a spec change moves the generation.
		w.cost = append(w.cost, &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "cap-" + team, UID: types.UID("uid-cap-" + team), Generation: 1},
			Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Selector: sel}, MaxCostPerHour: &capUSD, Enforcement: kcloudv1alpha1.EnforcementDeny}})
		w.power = append(w.power, &kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%d", i)},
			Spec: kcloudv1alpha1.PowerPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{fmt.Sprintf("ns%d", i)}}, MaxPowerWatts: &watts, Enforcement: kcloudv1alpha1.EnforcementDeny}})
	}
	for _, name := range []string{"train", "serve"} {
		for _, ns := range []string{"ns0", "ns1"} {
			w.wos = append(w.wos, &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec: kcloudv1alpha1.WorkloadOptimizerSpec{CostConstraints: &kcloudv1alpha1.CostConstraints{MaxCostPerHour: &capUSD},
					PowerConstraints: &kcloudv1alpha1.PowerConstraints{MaxPowerUsage: &watts}}})
		}
	}
	return w
}

// addNode adds a T4 node, spot or not, with or without a price of its own; one in five has no
// accelerator product the catalog knows, so it cannot be priced.
func (w *usageWorld) addNode(name string) {
	n := t4Node(name, int64(1+w.rng.Intn(4)), w.rng.Intn(2) == 0, false)
	switch w.rng.Intn(5) {
	case 0:
		n.Annotations = map[string]string{catalog.AnnotationPricePerHour: fmt.Sprintf("%.2f", 0.5+w.rng.Float64()*4)}
	case 1:
		n.Labels[catalog.LabelNVIDIAGPUProduct] = "Unknown-GPU-9000"
		delete(n.Labels, catalog.LabelInstanceType)
	}
	w.nodes[name] = n
	w.u.setNode(name, n)
}

func (w *usageWorld) newPod() *corev1.Pod {
	w.serial++
	opts := []func(*corev1.Pod){}
	switch w.rng.Intn(3) {
	case 0:
		opts = append(opts, withGPUs(catalog.ResourceNVIDIAGPU, int64(1+w.rng.Intn(2))))
	case 1:
		opts = append(opts, withShare(fmt.Sprint(100*(1+w.rng.Intn(9)))))
	}
	p := pod(fmt.Sprintf("p%d", w.serial), opts...)
	w.relabel(p)
	return p
}

// relabel gives a pod a random namespace, team and optimizer (or none).
func (w *usageWorld) relabel(p *corev1.Pod) {
	p.Namespace = fmt.Sprintf("ns%d", w.rng.Intn(3))
	p.Labels = map[string]string{"team": []string{"a", "b", "c"}[w.rng.Intn(3)]}
	if wo := []string{"", "train", "serve"}[w.rng.Intn(3)]; wo != "" {
		p.Labels[kube.LabelOptimizer] = wo
	}
}

func (w *usageWorld) anyPod(bound bool) *corev1.Pod {
	var uids []string
	for uid, p := range w.pods {
		if (p.Spec.NodeName != "") == bound {
			uids = append(uids, string(uid))
		}
	}
	if len(uids) == 0 {
		return nil
	}
	sort.Strings(uids)
	return w.pods[types.UID(uids[w.rng.Intn(len(uids))])]
}

func (w *usageWorld) anyNode() string {
	names := make([]string, 0, len(w.nodes))
	for n := range w.nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names[w.rng.Intn(len(names))]
}

// step makes one random change to the cluster and tells the usage, as the informers, Reserve and
// Unreserve would; it returns what it did.
func (w *usageWorld) step() string {
	switch k := w.rng.Intn(12); k {
	case 0, 1: // a pod bound by another scheduler
		p := w.newPod()
		p.Spec.NodeName = w.anyNode()
		w.pods[p.UID] = p
		w.u.setPod(p)
		return "bound elsewhere " + p.Name
	case 2: // a pending pod appears, then Reserve
		p := w.newPod()
		w.pods[p.UID] = p
		w.u.setPod(p)
		node := w.anyNode()
		w.assume[p.UID] = node
		w.u.assume(p, node)
		return "reserved " + p.Name + " on " + node
	case 3: // the binding of a reserved pod is seen, or it is unreserved
		for uid, node := range w.assume {
			delete(w.assume, uid)
			p := w.pods[uid].DeepCopy()
			if w.rng.Intn(3) == 0 {
				w.u.forget(uid, node)
				return "unreserved " + p.Name
			}
			p.Spec.NodeName = node
			w.pods[uid] = p
			w.u.setPod(p)
			return "bound " + p.Name
		}
	case 4: // a pod deleted
		if p := w.anyPod(true); p != nil {
			delete(w.pods, p.UID)
			w.u.forget(p.UID, "")
			return "deleted " + p.Name
		}
	case 5: // a pod finishes
		if p := w.anyPod(true); p != nil {
			p = p.DeepCopy()
			p.Status.Phase = corev1.PodSucceeded
			w.pods[p.UID] = p
			w.u.setPod(p)
			return "finished " + p.Name
		}
	case 6: // a pod's labels change
		if p := w.anyPod(true); p != nil {
			p = p.DeepCopy()
			w.relabel(p)
			w.pods[p.UID] = p
			w.u.setPod(p)
			return "relabelled " + p.Name
		}
	case 7: // a node's price changes, or a heartbeat
		name := w.anyNode()
		n := w.nodes[name].DeepCopy()
		n.ResourceVersion += "1"
		if w.rng.Intn(2) == 0 {
			n.Annotations = map[string]string{catalog.AnnotationPricePerHour: fmt.Sprintf("%.2f", 0.5+w.rng.Float64()*4)}
		}
		w.nodes[name] = n
		w.u.setNode(name, n)
		return "updated node " + name
	case 8: // a node deleted, its pods left behind until garbage collection
		if len(w.nodes) > 2 {
			name := w.anyNode()
			delete(w.nodes, name)
			w.u.setNode(name, nil)
			return "deleted node " + name
		}
	case 9:
		name := fmt.Sprintf("n%d", 100+w.serial)
		w.serial++
		w.addNode(name)
		return "added node " + name
	case 10: // a policy changes its target
		i := w.rng.Intn(len(w.cost))
		cp := w.cost[i].DeepCopy()
		cp.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": []string{"a", "b", "c"}[w.rng.Intn(3)]}}
		cp.Generation++
		w.cost[i] = cp
		return "retargeted " + cp.Name
	case 11: // the operator writes a policy's status: same spec, same generation, a new object
		i := w.rng.Intn(len(w.cost))
		cp := w.cost[i].DeepCopy()
		cp.Status.CurrentSpend = float64(w.serial)
		w.cost[i] = cp
		return "status of " + cp.Name
	}
	return "nothing"
}

// recount is a limit's usage worked out from the test's record: every pod on a node that exists,
// not finished, bound or reserved, that shares the limit, at its attributed figure on its node
// (from the catalog directly, not the node view).
func (w *usageWorld) recount(l *kube.PodLimit) float64 {
	total := 0.0
	for uid, p := range w.pods {
		node := p.Spec.NodeName
		if node == "" {
			node = w.assume[uid]
		}
		n := w.nodes[node]
		if n == nil || p.Status.Phase == corev1.PodSucceeded || !l.Shares(p) {
			continue
		}
		facts, econ, err := kube.NodeEconomics(catalog.Default(), n)
		if err != nil {
			continue
		}
		req := kube.PodRequest(p)
		capacity := model.NewNode(facts.AcceleratorModel, n.Status.Allocatable.Cpu().MilliValue(), n.Status.Allocatable.Memory().Value()>>20, facts.AcceleratorCount)
		if l.Kind == model.LimitPowerWatts {
			total += model.AttributedPower(&req, &capacity, &econ)
		} else {
			total += model.AttributedCost(&req, &capacity, &econ)
		}
	}
	return total
}

// check compares every shared limit's usage with the recount.
func (w *usageWorld) check(seed int64, step int, did string) {
	ps := kube.NewPolicies(w.cost, w.power)
	seen := map[string]bool{}
	for _, wo := range append(w.wos, nil) {
		for _, team := range []string{"a", "b", "c"} {
			probe := pod("probe")
			probe.Labels = map[string]string{"team": team}
			if wo != nil {
				probe.Namespace, probe.Labels[kube.LabelOptimizer] = wo.Namespace, wo.Name
			}
			for _, l := range ps.For(probe, wo).Limits {
				if l.Shares == nil || seen[l.ID] {
					continue
				}
				seen[l.ID] = true
				got, want := w.u.of(&l, "none"), w.recount(&l)
				if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
					w.t.Fatalf("seed %d step %d (%s): %s usage %.12g, recount %.12g", seed, step, did, l.ID, got, want)
				}
			}
		}
	}
	if len(seen) < 8 {
		w.t.Fatalf("only %d shared limits checked", len(seen))
	}
}

// The usage kept from events equals a full recount after every step, whatever the order of pod
// and node events, Reserve and Unreserve, price and policy changes.
func TestLimitUsageMatchesRecount(t *testing.T) {
	for seed := int64(1); seed <= 40; seed++ {
		w := newUsageWorld(t, seed)
		for step := range 300 {
			did := w.step()
			w.check(seed, step, did)
		}
	}
}

// A policy's pool is kept when the operator writes its status (a new object, the same
// generation) and made anew when its spec changes (the generation moves); a pool remade on every
// status write is a pass over every placed pod, once a minute per policy.
func TestPolicyPoolKeptAcrossStatusWrites(t *testing.T) {
	w := newUsageWorld(t, 1)
	probe := pod("probe")
	probe.Labels = map[string]string{"team": "a"}
	limitOf := func() kube.PodLimit {
		for _, l := range kube.NewPolicies(w.cost, w.power).For(probe, nil).Limits {
			if l.CostPolicy != nil && l.CostPolicy.Name == "cap-a" {
				return l
			}
		}
		t.Fatal("no limit of cap-a for a team-a pod")
		return kube.PodLimit{}
	}
	l := limitOf()
	first := w.u.pool(&l)
	status := w.cost[0].DeepCopy()
	status.Status.CurrentSpend = 12
	w.cost[0] = status
	l = limitOf()
	if w.u.pool(&l) != first {
		t.Errorf("pool made anew after a status write")
	}
	spec := w.cost[0].DeepCopy()
	spec.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}
	spec.Generation++
	w.cost[0] = spec
	probe.Labels["team"] = "b"
	l = limitOf()
	if w.u.pool(&l) == first {
		t.Errorf("pool kept after the spec changed (generation %d)", spec.Generation)
	}
}

// A pod refused by its optimizer's cost cap fits once preemption takes away a lower-priority pod of
// the same optimizer (RemovePod), and is refused again with a nominated pod of it added (AddPod);
// the usage comes from the informers, as in the scheduler.
func TestPreemptionFreesRoomUnderCap(t *testing.T) {
	ctx := context.Background()
	node := t4Node("od", 4, false, false)
	// One T4 of a g4dn.12xlarge at 3.912 USD/h is a quarter of its price (the pods' CPU and memory
	// shares are smaller): 0.978 USD/h. Two such pods are 1.956, over a 1.5 cap.
	capUSD := 1.5
	wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "train"},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{CostConstraints: &kcloudv1alpha1.CostConstraints{MaxCostPerHour: &capUSD}}}
	member := func(name string, priority int32) *corev1.Pod {
		p := pod(name, withGPUs(catalog.ResourceNVIDIAGPU, 1))
		p.Labels[kube.LabelOptimizer] = "train"
		p.Spec.Priority = &priority
		return p
	}
	victim := member("victim", 0)
	victim.Spec.NodeName = "od"
	cs := fake.NewClientset(node, victim)
	store := storeOf(t, map[schema.GroupVersionResource][]any{gvrOptimizers: {wo}})
	var built *Plugin
	withStore := schedtest.Plugin{Name: Name, Points: scorePlugin.Points, New: func(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
		p, err := New(ctx, obj, h)
		if err == nil {
			built = p.(*Plugin)
			built.policies = store
		}
		return p, err
	}}
	fw := schedtest.NewFramework(t, cs, []*corev1.Node{node}, []*corev1.Pod{victim}, withStore)
	fw.SharedInformerFactory().Start(ctx.Done())
	fw.SharedInformerFactory().WaitForCacheSync(ctx.Done())
	// Handlers see the informers' objects after the caches sync.
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		built.usage.mu.Lock()
		defer built.usage.mu.Unlock()
		return len(built.usage.pods) == 1 && built.usage.nodeObj["od"] != nil, nil
	}); err != nil {
		t.Fatal("the usage never saw the victim on its node:", err)
	}

	preemptor := member("preemptor", 100)
	state := framework.NewCycleState()
	if _, st, _ := fw.RunPreFilterPlugins(ctx, state, preemptor); !st.IsSuccess() {
		t.Fatal(st)
	}
	ni, _ := fw.SnapshotSharedLister().NodeInfos().Get("od")
	st := fw.RunFilterPlugins(ctx, state, preemptor, ni)
	if st.IsSuccess() || st.Code() != fwk.Unschedulable || !strings.Contains(st.Message(), "WorkloadOptimizer ns/train maxCostPerHour") {
		t.Fatalf("with the victim placed: %v, want Unschedulable by the cap (resolvable by preemption)", st)
	}
	// Preemption works on copies of the state and the node.
	trial, trialNode := state.Clone(), ni.Snapshot()
	victimInfo, _ := framework.NewPodInfo(victim)
	if st := fw.RunPreFilterExtensionRemovePod(ctx, trial, preemptor, victimInfo, trialNode); !st.IsSuccess() {
		t.Fatal(st)
	}
	if err := trialNode.RemovePod(klog.Background(), victim); err != nil {
		t.Fatal(err)
	}
	if st := fw.RunFilterPlugins(ctx, trial, preemptor, trialNode); !st.IsSuccess() {
		t.Errorf("with the victim removed: %v, want it to fit", st)
	}
	if st := fw.RunFilterPlugins(ctx, state, preemptor, ni); st.IsSuccess() {
		t.Error("the cycle's own state changed with the trial's")
	}
	if st := fw.RunPreFilterExtensionAddPod(ctx, trial, preemptor, victimInfo, trialNode); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := fw.RunFilterPlugins(ctx, trial, preemptor, trialNode); st.IsSuccess() {
		t.Error("with the victim added back through AddPod, the cap should refuse again")
	}
}

// Pods charged as the informers deliver them keep their charges until the catalog changes; then
// every pod is charged again at the new prices. The figures are the node's GCP list price and the
// price the ConfigMap sets (the pod takes the node's only GPU, so it is charged the whole node).
func TestUsageFollowsTheCatalog(t *testing.T) {
	store := catalog.NewStore(nil)
	u := newLimitUsage(nodeview.New(store))
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{catalog.LabelInstanceType: "a2-highgpu-1g"}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("12"), corev1.ResourceMemory: resource.MustParse("85Gi"), catalog.ResourceNVIDIAGPU: resource.MustParse("1"),
		}},
	}
	u.setNode("n1", node)
	p := pod("train", withGPUs(catalog.ResourceNVIDIAGPU, 1))
	p.Labels = map[string]string{"team": "a"}
	p.Spec.NodeName = "n1"
	u.setPod(p)
	capUSD := 100.0
	policy := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "cap", UID: "uid-cap", Generation: 1},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}},
			MaxCostPerHour: &capUSD, Enforcement: kcloudv1alpha1.EnforcementDeny}}
	probe := pod("probe")
	probe.Labels = map[string]string{"team": "a"}
	limits := kube.NewPolicies([]*kcloudv1alpha1.CostPolicy{policy}, nil).For(probe, nil).Limits
	if len(limits) != 1 || limits[0].Shares == nil {
		t.Fatalf("limits %+v, want the policy's one shared cap", limits)
	}
	if got := u.of(&limits[0], "none"); math.Abs(got-3.673385) > 1e-9 {
		t.Fatalf("usage %g $/h, want the list price 3.673385", got)
	}
	if _, err := store.Update(&corev1.ConfigMap{Data: map[string]string{catalog.ConfigMapKeyPrices: "a2-highgpu-1g,,,2.5\n"}}); err != nil {
		t.Fatal(err)
	}
	if got := u.of(&limits[0], "none"); math.Abs(got-2.5) > 1e-9 {
		t.Errorf("usage after the ConfigMap %g $/h, want its 2.5", got)
	}
}
