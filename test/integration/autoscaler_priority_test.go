package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/internal/controller/autoscaler"
	"kcloud.io/optimizer/internal/telemetry"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
)

// TestScaleDownEnforcementByPriority: two autoscaled Deployments share a CostPolicy in scale-down
// enforcement whose cap holds 4 replicas. The priority-90 one asks for 3 while the priority-10 one
// runs 2: it gets its 3 (the lower-ranked pods' room counts as its own), and once its 2 new
// replicas wait unplaced, the priority-10 one is shrunk to the 1 that leaves them room.
func TestScaleDownEnforcementByPriority(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctrllog.SetLogger(testr.New(t))
	ns := "autoscale-priority"
	ensureNamespace(t, ns)
	nodes := []*corev1.Node{t4Node(t, "asp-t4-1", string(catalog.CapacityOnDemand)),
		t4Node(t, "asp-t4-2", string(catalog.CapacityOnDemand)), t4Node(t, "asp-t4-3", string(catalog.CapacityOnDemand))}
	price := nodePrice(t, nodes[0]) // one replica is a whole T4 node

	step := time.Minute
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	prom := &fakePrometheus{values: map[string]float64{}, ranges: map[string][]telemetry.Sample{}}
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: kubernetes.NewForConfigOrDie(cfg).EventsV1()})
	broadcaster.StartRecordingToSink(ctx.Done())
	defer broadcaster.Shutdown()
	r := &autoscaler.Reconciler{Client: k8sClient, Reader: k8sClient, Prometheus: prom, Recorder: broadcaster.NewRecorder(scheme, "kcloud-operator"),
		Fleet: cluster.New(k8sClient, cluster.Options{Clock: clk}), Clock: clk, Step: step, Season: 24 * step}
	if err := r.Queries.Parse(); err != nil {
		t.Fatal(err)
	}

	// A replicaSet stands for each Deployment's controller (no controller runs here): the pods the
	// test makes carry it as their controller, and the optimizer's priority as the pod webhook sets it.
	member := func(p *corev1.Pod, app string, priority int32) {
		t.Helper()
		p.Annotations = map[string]string{kube.AnnotationPriority: kube.PriorityAnnotation(priority)}
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app + "-rs",
			UID: types.UID(ns + "-" + app + "-rs"), Controller: ptr.To(true)}}
	}
	// adopt makes a placed pod (deployment's or runningPod's) a member.
	adopt := func(name, app string, priority int32) {
		t.Helper()
		p := &corev1.Pod{}
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, p); err != nil {
			t.Fatal(err)
		}
		member(p, app, priority)
		if err := k8sClient.Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	placedPod := func(name, app, node string, priority int32) {
		t.Helper()
		runningPod(t, ns, name, node, clk.Now().Add(-time.Hour), map[string]string{"app": app})
		adopt(name, app, priority)
	}
	pendingPod := func(name, app string, priority int32) {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "server", Image: "example.com/server:1",
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")},
					Limits:   corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("1")}}}}}}
		member(p, app, priority)
		if err := k8sClient.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	optimizer := func(name string, priority int32, demand float64) {
		t.Helper()
		wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: kcloudv1alpha1.WorkloadOptimizerSpec{
			WorkloadType: kcloudv1alpha1.WorkloadServing, Priority: ptr.To(priority),
			TargetRef: &kcloudv1alpha1.TargetReference{Kind: "Deployment", Name: name},
			AutoScaling: &kcloudv1alpha1.AutoScaling{MinReplicas: 1, MaxReplicas: 10,
				Metrics:             []kcloudv1alpha1.ScalingMetric{{Type: kcloudv1alpha1.MetricThroughput, Threshold: 100}},
				AutoScalingBehavior: kcloudv1alpha1.AutoScalingBehavior{Mode: kcloudv1alpha1.ScalingReactive, StabilizationWindowSeconds: ptr.To[int32](0)}}}}
		if err := k8sClient.Create(ctx, wo); err != nil {
			t.Fatal(err)
		}
		q, err := r.Queries.For(kcloudv1alpha1.ScalingMetric{Type: kcloudv1alpha1.MetricThroughput}, autoscaler.QueryArgs{Namespace: ns, Target: name})
		if err != nil {
			t.Fatal(err)
		}
		prom.set(q, demand)
	}
	evaluate := func(name string) *kcloudv1alpha1.AutoScalingStatus {
		t.Helper()
		if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}); err != nil {
			t.Fatalf("reconciling %s: %v", name, err)
		}
		wo := &kcloudv1alpha1.WorkloadOptimizer{}
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, wo); err != nil {
			t.Fatal(err)
		}
		if wo.Status.AutoScaling == nil {
			t.Fatalf("%s: no status.autoScaling", name)
		}
		return wo.Status.AutoScaling
	}

	// The policy's cap holds 4 replicas (plus a cent, so float sums stay inside); the CostPolicy
	// controller does not run here, so its status is the test's own count of the placed pods.
	cp := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "asp-team"},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}},
			MaxCostPerHour: ptr.To(4*price + 0.01), Enforcement: kcloudv1alpha1.EnforcementScaleDown}}
	if err := k8sClient.Create(ctx, cp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), cp) })
	setPolicyCost := func(placed int) {
		t.Helper()
		cp.Status.CurrentCostPerHour = float64(placed) * price
		if err := k8sClient.Status().Update(ctx, cp); err != nil {
			t.Fatal(err)
		}
	}

	// low (priority 10) runs 2 replicas for 200 requests/s; high (priority 90) runs 1.
	deployment(t, ns, "low", 2, nodes[0].Name)
	placedPod("low-1", "low", nodes[1].Name, 10)
	adopt("low-0", "low", 10)
	deployment(t, ns, "high", 1, nodes[2].Name)
	adopt("high-0", "high", 90)
	setPolicyCost(3)
	optimizer("low", 10, 200)
	optimizer("high", 90, 300)

	if s := evaluate("low"); s.DesiredReplicas != 2 || s.Limit != "" {
		t.Fatalf("low before high asks for more: desired %d, limit %q; want 2, unlimited (%q)", s.DesiredReplicas, s.Limit, s.Reason)
	}
	// high asks for 3. Without priority its room would be 4 - 2 (low's) = 2 replicas; low's pods
	// rank below, so they count as room: 4 - 0.
	if s := evaluate("high"); s.DesiredReplicas != 3 || s.Limit != "" || replicasOf(t, ns, "high") != 3 {
		t.Fatalf("high: desired %d, limit %q, deployment %d; want 3, unlimited (%q)", s.DesiredReplicas, s.Limit, replicasOf(t, ns, "high"), s.Reason)
	}
	// Its 2 new replicas wait: scale-down enforcement refuses them while the cap is full.
	pendingPod("high-1", "high", 90)
	pendingPod("high-2", "high", 90)
	clk.Step(step)
	// low's room: 4 - (high's placed 1 + its 2 waiting, priced as its placed one) = 1 replica.
	s := evaluate("low")
	if s.DesiredReplicas != 1 || s.Limit != "maxCostPerHour" || replicasOf(t, ns, "low") != 1 {
		t.Fatalf("low with high's replicas waiting: desired %d, limit %q, deployment %d; want 1 by maxCostPerHour (%q)", s.DesiredReplicas, s.Limit, replicasOf(t, ns, "low"), s.Reason)
	}
	if c := meta.FindStatusCondition(s.Conditions, kcloudv1alpha1.ConditionScalingLimited); c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(s.Reason, "allows 1 replicas") {
		t.Errorf("low: ScalingLimited %+v, reason %q", c, s.Reason)
	}
	// high keeps its 3 meanwhile: low's placed pods are still its room, its own waiting ones its own.
	if s := evaluate("high"); s.DesiredReplicas != 3 {
		t.Errorf("high after low shrank: desired %d, want 3 (%q)", s.DesiredReplicas, s.Reason)
	}
}
