package integration

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/internal/controller/rebalancer"
	"kcloud.io/optimizer/internal/operator"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// startRebalancer runs a manager with the rebalancer's caches and returns a rebalancer on it whose
// runs the test triggers with RunOnce.
func startRebalancer(t *testing.T, clk *clocktesting.FakeClock, o rebalancer.Options) *rebalancer.Rebalancer {
	t.Helper()
	ctrllog.SetLogger(testr.New(t))
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: operator.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := runManager(t, mgr)
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("caches not synced")
	}
	return &rebalancer.Rebalancer{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Catalog: catalog.Default(),
		Recorder: mgr.GetEventRecorder("rebalancer-test"), Clock: clk, Options: o,
		Fleet: cluster.New(mgr.GetClient(), cluster.Options{Catalog: catalog.Default(), Clock: clk, SnapshotMaxAge: cluster.AlwaysRebuild})}
}

// ownedPod creates a one-GPU pod of a ReplicaSet, bound to a node and Running.
func ownedPod(t *testing.T, rs *appsv1.ReplicaSet, name, node, optimizer string) *corev1.Pod {
	t.Helper()
	yes := true
	labels := map[string]string{"app": rs.Name, kube.LabelOptimizer: optimizer}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: rs.Namespace, Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "example.com/serve:1",
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")},
				Limits:   corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("1")}}}}}}
	if err := k8sClient.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	// Ready: the Eviction API lets unready pods go whatever the budget says.
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &metav1.Time{Time: time.Now()},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	if err := k8sClient.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func replicaSet(t *testing.T, ns, name string) *appsv1.ReplicaSet {
	t.Helper()
	zero := int32(0)
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: appsv1.ReplicaSetSpec{Replicas: &zero,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/serve:1"}}}}}}
	if err := k8sClient.Create(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	return rs
}

// setBudget writes the PDB status the disruption controller would (envtest runs none).
func setBudget(t *testing.T, pdb *policyv1.PodDisruptionBudget, allowed int32) {
	t.Helper()
	cur := &policyv1.PodDisruptionBudget{}
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(pdb), cur); err != nil {
		t.Fatal(err)
	}
	cur.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: cur.Generation, DisruptionsAllowed: allowed,
		CurrentHealthy: 1 + allowed, DesiredHealthy: 1, ExpectedPods: 2}
	if err := k8sClient.Status().Update(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
}

func reservationsOn(t *testing.T, name string) []kube.Reservation {
	t.Helper()
	n := &corev1.Node{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: name}, n); err != nil {
		t.Fatal(err)
	}
	return kube.NodeReservations(n)
}

func movesOf(rep rebalancer.Report) string {
	var out []string
	for _, m := range rep.Moves {
		out = append(out, fmt.Sprintf("%s %s->%s %s", m.Pod.Name, m.From, m.To, m.Outcome))
	}
	return strings.Join(out, "; ")
}

// TestRebalancer: two serving pods of a ReplicaSet on on-demand T4 nodes, a training pod on a third,
// and three cheaper spot T4 nodes. A dry run plans both serving pods and evicts nothing; caps cut
// the plan; a PodDisruptionBudget that allows nothing turns every eviction into a 429 (blocked,
// reservation released); one that allows one lets exactly one through, with room reserved on its
// destination, which the next run does not book again; the replacement landing releases the
// reservation, as does expiry; the training pod never moves, nor a workload that opts out.
func TestRebalancer(t *testing.T) {
	ctx := context.Background()
	ns := "rebalance"
	ensureNamespace(t, ns)
	clk := clocktesting.NewFakeClock(time.Now())
	var od, spot []*corev1.Node
	for i := range 3 {
		od = append(od, t4Node(t, fmt.Sprintf("rb-od-%d", i), "on-demand"))
		spot = append(spot, t4Node(t, fmt.Sprintf("rb-spot-%d", i), "spot"))
	}
	web, train := replicaSet(t, ns, "web"), replicaSet(t, ns, "train")
	web0, web1 := ownedPod(t, web, "web-0", od[0].Name, "web"), ownedPod(t, web, "web-1", od[1].Name, "web")
	train0 := ownedPod(t, train, "train-0", od[2].Name, "train")
	for _, wo := range []*kcloudv1alpha1.WorkloadOptimizer{
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadServing}},
		{ObjectMeta: metav1.ObjectMeta{Name: "train", Namespace: ns}, Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadTraining}},
	} {
		if err := k8sClient.Create(ctx, wo); err != nil {
			t.Fatal(err)
		}
	}
	one := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	if err := k8sClient.Create(ctx, pdb); err != nil {
		t.Fatal(err)
	}
	saving := nodePrice(t, od[0]) - nodePrice(t, spot[0])
	if saving <= 0.1 {
		t.Fatalf("catalog: on-demand T4 %.4f, spot %.4f: want a saving above the threshold", nodePrice(t, od[0]), nodePrice(t, spot[0]))
	}

	rb := startRebalancer(t, clk, rebalancer.Options{DryRun: true, MinSavingUSDPerHour: 0.1, RestartTime: 5 * time.Minute,
		MaxPerNode: 1, MaxPerNamespace: 2, MaxTotal: 10, ReservationTTL: time.Minute})
	run := func(what string) rebalancer.Report {
		t.Helper()
		rep, err := rb.RunOnce(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %s (deferred %d, released %d, skipped %v)", what, movesOf(rep), rep.Deferred, rep.Released, rep.Skipped)
		return rep
	}
	// The cache must hold the pods before the first run.
	waitFor(t, "the cache", func() error {
		list := &corev1.PodList{}
		if err := rb.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(list.Items) != 3 {
			return fmt.Errorf("%d pods in the cache", len(list.Items))
		}
		return nil
	})

	// Dry run: both serving pods, to two different spot nodes, each saving the price difference.
	rep := run("dry run")
	if rep.Count(kcloudv1alpha1.MovePlanned) != 2 || len(rep.Moves) != 2 || rep.Moves[0].To == rep.Moves[1].To {
		t.Fatalf("dry run planned %s; want web-0 and web-1 to two spot nodes", movesOf(rep))
	}
	for _, m := range rep.Moves {
		if !strings.HasPrefix(m.To, "rb-spot-") || m.Pod.Name == "train-0" || math.Abs(m.Saving.CostPerHour-saving) > 1e-9 {
			t.Errorf("move %+v; want to a spot node saving %.6f USD/h", m, saving)
		}
	}
	if rep.Skipped[`a training pod without kcloud.io/safe-to-evict: "true"`] != 1 {
		t.Errorf("skipped %v: want the training pod", rep.Skipped)
	}
	for _, n := range append(append([]*corev1.Node{}, od...), spot...) {
		if rs := reservationsOn(t, n.Name); len(rs) > 0 {
			t.Errorf("dry run reserved %v on %s", rs, n.Name)
		}
	}
	for _, p := range []*corev1.Pod{web0, web1, train0} {
		cur := &corev1.Pod{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil || cur.DeletionTimestamp != nil {
			t.Errorf("dry run touched pod %s: %v %v", p.Name, err, cur.DeletionTimestamp)
		}
	}
	waitFor(t, "dry-run status and events", func() error {
		wo := &kcloudv1alpha1.WorkloadOptimizer{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, wo); err != nil {
			return err
		}
		s := wo.Status.Rebalancing
		if s == nil || !s.DryRun || s.Planned != 2 || s.Evicted != 0 || math.Abs(s.PlannedSavingsPerHour-round4(2*saving)) > 1e-9 || len(s.Moves) != 2 {
			return fmt.Errorf("status.rebalancing %+v", s)
		}
		if !strings.Contains(eventReasons(t, ns, "web"), kcloudv1alpha1.ReasonRebalancePlanned) ||
			!strings.Contains(eventReasons(t, ns, "web-0"), kcloudv1alpha1.ReasonRebalancePlanned) {
			return fmt.Errorf("no %s events on the optimizer and the pod", kcloudv1alpha1.ReasonRebalancePlanned)
		}
		return nil
	})

	// Caps: one in total, then one per namespace.
	rb.MaxTotal = 1
	if rep := run("total cap 1"); len(rep.Moves) != 1 {
		t.Errorf("total cap 1: %s", movesOf(rep))
	}
	rb.MaxTotal, rb.MaxPerNamespace = 10, 1
	if rep := run("namespace cap 1"); len(rep.Moves) != 1 {
		t.Errorf("namespace cap 1: %s", movesOf(rep))
	}
	rb.MaxPerNamespace = 2

	// A budget that allows no disruption: every eviction is refused with 429 and nothing moves.
	rb.DryRun = false
	setBudget(t, pdb, 0)
	rep = run("PDB allows 0")
	if rep.Count(kcloudv1alpha1.MoveBlocked) != 2 || len(rep.Moves) != 2 {
		t.Fatalf("PDB allowing nothing: %s; want both blocked", movesOf(rep))
	}
	for _, n := range spot {
		if rs := reservationsOn(t, n.Name); len(rs) > 0 {
			t.Errorf("a blocked move left its reservation on %s: %v", n.Name, rs)
		}
	}
	for _, p := range []*corev1.Pod{web0, web1} {
		cur := &corev1.Pod{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil || cur.DeletionTimestamp != nil {
			t.Errorf("pod %s evicted despite the PDB: %v %v", p.Name, err, cur.DeletionTimestamp)
		}
	}

	// A budget that allows one: exactly one eviction goes through (the API then counts it against
	// the budget), with room reserved on its destination; the other is refused.
	setBudget(t, pdb, 1)
	rep = run("PDB allows 1")
	if rep.Count(kcloudv1alpha1.MoveEvicted) != 1 || rep.Count(kcloudv1alpha1.MoveBlocked) != 1 {
		t.Fatalf("PDB allowing one: %s; want one evicted and one blocked", movesOf(rep))
	}
	evicted := rep.Moves[0]
	if evicted.Outcome != kcloudv1alpha1.MoveEvicted {
		evicted = rep.Moves[1]
	}
	gone := &corev1.Pod{}
	if err := k8sClient.Get(ctx, evicted.Pod, gone); err != nil || gone.DeletionTimestamp == nil {
		t.Fatalf("evicted pod %s: %v, deletionTimestamp %v", evicted.Pod, err, gone.DeletionTimestamp)
	}
	rs := reservationsOn(t, evicted.To)
	if len(rs) != 1 || rs[0].Key != kube.ReservationAnnotationPrefix+string(gone.UID) || rs[0].Workload() != ns+"/web" ||
		rs[0].GPUCount != 1 || math.Abs(rs[0].SavingsPerHour-saving) > 1e-9 {
		t.Fatalf("reservations on %s: %+v", evicted.To, rs)
	}
	waitFor(t, "eviction events with the saving", func() error {
		want := fmt.Sprintf("saves %.4f USD/h", saving)
		list := &corev1.EventList{}
		if err := k8sClient.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		onPod, onWO := false, false
		for _, e := range list.Items {
			if e.Reason != kcloudv1alpha1.ReasonRebalanced || !strings.Contains(e.Message, want) || !strings.Contains(e.Message, evicted.To) {
				continue
			}
			onPod = onPod || e.InvolvedObject.Name == evicted.Pod.Name
			onWO = onWO || e.InvolvedObject.Name == "web"
		}
		if !onPod || !onWO {
			return fmt.Errorf("Rebalanced events naming %q and %s: on the pod %v, on the optimizer %v", want, evicted.To, onPod, onWO)
		}
		return nil
	})

	// The next run sees the evicted pod leaving and the room reserved: the other pod is planned
	// to another spot node (and refused again: the budget is spent).
	waitFor(t, "the cache to see the eviction", func() error {
		p := &corev1.Pod{}
		if err := rb.Client.Get(ctx, evicted.Pod, p); err != nil {
			return err
		}
		if p.DeletionTimestamp == nil {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	rep = run("after the eviction")
	if len(rep.Moves) != 1 || rep.Moves[0].Pod == evicted.Pod || rep.Moves[0].To == evicted.To || rep.Moves[0].Outcome != kcloudv1alpha1.MoveBlocked {
		t.Errorf("after the eviction: %s; want only the other pod, to another node than %s, blocked", movesOf(rep), evicted.To)
	}

	// The replacement lands on the reserved node: the reservation is released.
	ownedPod(t, web, "web-2", evicted.To, "web")
	waitFor(t, "the cache to see the replacement", func() error {
		return rb.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-2"}, &corev1.Pod{})
	})
	rep = run("replacement landed")
	if rep.Released != 1 || len(reservationsOn(t, evicted.To)) != 0 {
		t.Errorf("replacement landed: released %d, reservations left %v", rep.Released, reservationsOn(t, evicted.To))
	}

	// A reservation nobody uses expires.
	stale := kube.NewReservation(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: ns, UID: types.UID("stale")}}, "web",
		model.Pod{CPUMilli: 1000}, clk.Now(), clk.Now().Add(time.Minute))
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, stale.Key, stale.Value())
	if err := k8sClient.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: spot[2].Name}}, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the cache to see the reservation", func() error {
		n := &corev1.Node{}
		if err := rb.Client.Get(ctx, client.ObjectKey{Name: spot[2].Name}, n); err != nil {
			return err
		}
		if !kube.HasReservations(n) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	clk.Step(2 * time.Minute)
	rb.DryRun = true
	rep = run("after expiry")
	if rep.Released != 1 || len(reservationsOn(t, spot[2].Name)) != 0 {
		t.Errorf("expiry: released %d, left %v", rep.Released, reservationsOn(t, spot[2].Name))
	}

	// A workload that opts out is left alone.
	wo := &kcloudv1alpha1.WorkloadOptimizer{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, wo); err != nil {
		t.Fatal(err)
	}
	wo.Spec.Rebalancing = &kcloudv1alpha1.RebalancingPolicy{Mode: kcloudv1alpha1.RebalancingDisabled}
	if err := k8sClient.Update(ctx, wo); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the cache to see the opt-out", func() error {
		got := &kcloudv1alpha1.WorkloadOptimizer{}
		if err := rb.Client.Get(ctx, client.ObjectKeyFromObject(wo), got); err != nil {
			return err
		}
		if got.Spec.Rebalancing == nil {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if rep := run("opted out"); len(rep.Moves) != 0 {
		t.Errorf("opted out: %s", movesOf(rep))
	}
	// The training pod was never touched.
	cur := &corev1.Pod{}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(train0), cur); err != nil || cur.DeletionTimestamp != nil {
		t.Errorf("training pod: %v %v", err, cur.DeletionTimestamp)
	}
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }
