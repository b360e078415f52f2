package integration

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/internal/controller/autoscaler"
	"kcloud.io/optimizer/internal/telemetry"
	"kcloud.io/optimizer/pkg/catalog"
)

// fakePrometheus answers the autoscaler's queries from maps: the apiserver is real, Prometheus is
// not (test/e2e runs the autoscaler against a real one).
type fakePrometheus struct {
	mu     sync.Mutex
	values map[string]float64
	ranges map[string][]telemetry.Sample
}

func (f *fakePrometheus) set(q string, v float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[q] = v
}

func (f *fakePrometheus) QueryAt(_ context.Context, q string, _ time.Time) (float64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.values[q]
	if !ok {
		return 0, fmt.Errorf("no value for %s", q)
	}
	return v, nil
}

func (f *fakePrometheus) QueryRange(_ context.Context, q string, start, end time.Time, _ time.Duration) ([]telemetry.Sample, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []telemetry.Sample
	for _, s := range f.ranges[q] {
		if !s.At.Before(start) && !s.At.After(end) {
			out = append(out, s)
		}
	}
	return out, nil
}

// deployment creates a Deployment (no controller runs here: its pods are the test's) and one
// running pod of it on node.
func deployment(t *testing.T, ns, name string, replicas int32, node string) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "server", Image: "example.com/server:1", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")},
				Limits:   corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("1")}}}}}}}}
	if err := k8sClient.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	runningPod(t, ns, name+"-0", node, time.Now().Add(-time.Hour), labels)
}

func replicasOf(t *testing.T, ns, name string) int32 {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, d); err != nil {
		t.Fatal(err)
	}
	return *d.Spec.Replicas
}

// TestAutoscaler drives the autoscaler's Reconcile step by step with a fake clock against a real
// apiserver: scale-up through the scale subresource, a scale-down held by the stabilization window
// then applied, the cost cap, a missing target, the Predictive mode's history seeded from
// Prometheus, events for each, and the WorkloadOptimizer controller's status left alone.
func TestAutoscaler(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctrllog.SetLogger(testr.New(t))
	ns := "autoscale"
	ensureNamespace(t, ns)
	node := t4Node(t, "as-t4", string(catalog.CapacityOnDemand))
	price := nodePrice(t, node) // one replica (a whole T4) has the node to itself

	step := time.Minute
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	prom := &fakePrometheus{values: map[string]float64{}, ranges: map[string][]telemetry.Sample{}}
	cs := kubernetes.NewForConfigOrDie(cfg)
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	broadcaster.StartRecordingToSink(ctx.Done())
	defer broadcaster.Shutdown()
	r := &autoscaler.Reconciler{Client: k8sClient, Reader: k8sClient, Prometheus: prom,
		Fleet:    cluster.New(k8sClient, cluster.Options{Clock: clk}),
		Recorder: broadcaster.NewRecorder(scheme, "kcloud-operator"), Clock: clk, Step: step, Season: 24 * step}
	if err := r.Queries.Parse(); err != nil {
		t.Fatal(err)
	}
	query := func(target string) string {
		q, err := r.Queries.For(kcloudv1alpha1.ScalingMetric{Type: kcloudv1alpha1.MetricThroughput}, autoscaler.QueryArgs{Namespace: ns, Target: target})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	reconcileWO := func(name string) *kcloudv1alpha1.AutoScalingStatus {
		t.Helper()
		res, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
		if err != nil {
			t.Fatalf("reconciling %s: %v", name, err)
		}
		if res.RequeueAfter <= 0 || res.RequeueAfter > step+time.Second {
			t.Errorf("requeue after %s, want within a step", res.RequeueAfter)
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
	optimizer := func(name, target string, mode kcloudv1alpha1.ScalingMode, maxCost *float64) {
		t.Helper()
		wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: kcloudv1alpha1.WorkloadOptimizerSpec{
			WorkloadType: kcloudv1alpha1.WorkloadServing,
			TargetRef:    &kcloudv1alpha1.TargetReference{Kind: "Deployment", Name: target},
			AutoScaling: &kcloudv1alpha1.AutoScaling{MinReplicas: 1, MaxReplicas: 10,
				Metrics: []kcloudv1alpha1.ScalingMetric{{Type: kcloudv1alpha1.MetricThroughput, Threshold: 100}},
				AutoScalingBehavior: kcloudv1alpha1.AutoScalingBehavior{Mode: mode,
					StabilizationWindowSeconds: ptr.To[int32](180), LeadSeconds: ptr.To[int32](60)}}}}
		if maxCost != nil {
			wo.Spec.CostConstraints = &kcloudv1alpha1.CostConstraints{MaxCostPerHour: maxCost}
		}
		if err := k8sClient.Create(ctx, wo); err != nil {
			t.Fatal(err)
		}
	}
	condition := func(s *kcloudv1alpha1.AutoScalingStatus, typ string) metav1.Condition {
		t.Helper()
		c := meta.FindStatusCondition(s.Conditions, typ)
		if c == nil {
			t.Fatalf("no %s condition in %+v", typ, s.Conditions)
		}
		return *c
	}

	// Scale-up, reactive: 350 requests/s at 100 per replica.
	deployment(t, ns, "web", 1, node.Name)
	optimizer("web", "web", kcloudv1alpha1.ScalingReactive, nil)
	// The WorkloadOptimizer controller's fields must survive the autoscaler's merge patches.
	wo := &kcloudv1alpha1.WorkloadOptimizer{}
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, wo); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(wo.DeepCopy())
	wo.Status.Phase, wo.Status.CurrentCost = kcloudv1alpha1.PhaseOptimizing, 1.25
	if err := k8sClient.Status().Patch(ctx, wo, patch); err != nil {
		t.Fatal(err)
	}
	prom.set(query("web"), 350)
	s := reconcileWO("web")
	if got := replicasOf(t, ns, "web"); got != 4 || s.CurrentReplicas != 1 || s.DesiredReplicas != 4 {
		t.Fatalf("scale-up: deployment %d replicas, status %d -> %d; want 1 -> 4 (reason %q)", got, s.CurrentReplicas, s.DesiredReplicas, s.Reason)
	}
	if s.Metric != kcloudv1alpha1.MetricThroughput || s.Demand != 350 || s.LastScaleTime == nil || !strings.Contains(s.Reason, "reactive: throughput demand 350") {
		t.Errorf("scale-up status: %+v", s)
	}
	if c := condition(s, kcloudv1alpha1.ConditionAbleToScale); c.Status != metav1.ConditionTrue {
		t.Errorf("AbleToScale: %+v", c)
	}
	if len(s.Metrics) != 1 || s.Metrics[0].Current == nil || *s.Metrics[0].Current != 350 {
		t.Errorf("metric readings: %+v", s.Metrics)
	}
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, wo); err != nil {
		t.Fatal(err)
	}
	if wo.Status.Phase != kcloudv1alpha1.PhaseOptimizing || wo.Status.CurrentCost != 1.25 {
		t.Errorf("the autoscaler's patch changed the rest of the status: phase %q currentCost %v", wo.Status.Phase, wo.Status.CurrentCost)
	}

	// Stabilized scale-down: demand drops to 150 (2 replicas); within the 3-minute window the
	// recommendation of 4 holds, after it the count goes down.
	prom.set(query("web"), 150)
	for i := 1; i <= 2; i++ {
		clk.Step(step)
		s = reconcileWO("web")
		if got := replicasOf(t, ns, "web"); got != 4 || s.DesiredReplicas != 4 || s.Recommendation != 2 ||
			!strings.Contains(s.Reason, "scale-down held at 4") {
			t.Fatalf("minute %d of the window: deployment %d, desired %d, recommendation %d, reason %q; want 4 held", i, got, s.DesiredReplicas, s.Recommendation, s.Reason)
		}
	}
	clk.Step(step)
	s = reconcileWO("web")
	if got := replicasOf(t, ns, "web"); got != 2 || s.CurrentReplicas != 4 || s.DesiredReplicas != 2 {
		t.Fatalf("after the window: deployment %d, status %d -> %d; want 4 -> 2 (%q)", got, s.CurrentReplicas, s.DesiredReplicas, s.Reason)
	}

	// The cost cap: 2.5 replicas' worth of USD/h allows 2 although 1,000 requests/s ask for 10.
	deployment(t, ns, "capped", 1, t4Node(t, "as-t4-capped", string(catalog.CapacityOnDemand)).Name)
	optimizer("capped", "capped", kcloudv1alpha1.ScalingReactive, ptr.To(2.5*price))
	prom.set(query("capped"), 1000)
	s = reconcileWO("capped")
	if got := replicasOf(t, ns, "capped"); got != 2 || s.DesiredReplicas != 2 || s.Recommendation != 10 || s.Limit != "maxCostPerHour" {
		t.Fatalf("cost cap: deployment %d, desired %d, recommendation %d, limit %q; want 2 of 10 by maxCostPerHour (%q)", got, s.DesiredReplicas, s.Recommendation, s.Limit, s.Reason)
	}
	if c := condition(s, kcloudv1alpha1.ConditionScalingLimited); c.Status != metav1.ConditionTrue || c.Reason != "MaxCostPerHour" {
		t.Errorf("ScalingLimited: %+v", c)
	}
	if float64(s.DesiredReplicas)*price > 2.5*price {
		t.Errorf("%d replicas at %.3f USD/h exceed the cap", s.DesiredReplicas, price)
	}

	// A missing target.
	optimizer("orphan", "no-such-deployment", kcloudv1alpha1.ScalingReactive, nil)
	s = reconcileWO("orphan")
	if c := condition(s, kcloudv1alpha1.ConditionAbleToScale); c.Status != metav1.ConditionFalse || c.Reason != kcloudv1alpha1.ReasonTargetNotFound ||
		!strings.Contains(c.Message, "Deployment autoscale/no-such-deployment not found") {
		t.Errorf("missing target: %+v", c)
	}

	// Predictive: the history is seeded from Prometheus (two seasons of a daily-like cycle peaking at
	// 400 requests/s), so the first decision already forecasts with Holt-Winters and sizes for the
	// coming rise while the observation is still low.
	deployment(t, ns, "predicted", 1, t4Node(t, "as-t4-predicted", string(catalog.CapacityOnDemand)).Name)
	optimizer("predicted", "predicted", kcloudv1alpha1.ScalingPredictive, nil)
	now := clk.Now().Truncate(step)
	var seeded []telemetry.Sample
	cycle := func(i int) float64 { return 250 - 150*math.Cos(2*math.Pi*float64(i)/24) } // 100 .. 400, season 24 steps
	for i := 48; i >= 1; i-- {
		seeded = append(seeded, telemetry.Sample{At: now.Add(-time.Duration(i) * step), Value: cycle(6 - i)})
	}
	prom.ranges[query("predicted")] = seeded
	// Observe on the way up at cycle position 6 (250 requests/s, rising 40 per step).
	prom.set(query("predicted"), cycle(6))
	s = reconcileWO("predicted")
	if s.Forecast == nil || s.Forecast.Method != "holt-winters" || s.Forecast.HistoryPoints < 48 {
		t.Fatalf("predictive forecast: %+v (reason %q)", s.Forecast, s.Reason)
	}
	if reactive := int32(math.Ceil(cycle(6) / 100)); s.DesiredReplicas <= reactive {
		t.Errorf("predictive: %d replicas, no more than the %d the observation alone asks for (%q)", s.DesiredReplicas, reactive, s.Reason)
	}

	waitFor(t, "events", func() error {
		for name, want := range map[string][]string{"web": {"ScaledUp", "ScaledDown"}, "capped": {"ScaledUp", "ScaleLimited"}, "orphan": {"TargetNotFound"}} {
			got := eventReasons(t, ns, name)
			for _, w := range want {
				if !strings.Contains(got, w) {
					return fmt.Errorf("%s: events %q, want %s", name, got, w)
				}
			}
		}
		return nil
	})
}

// TestAutoscalingFieldsValidated: the new autoScaling fields are defaulted and refused with messages
// naming the field.
func TestAutoscalingFieldsValidated(t *testing.T) {
	ensureNamespace(t, validationNamespace)
	for _, tc := range []struct {
		name       string
		field      string
		value      any
		wantField  string
		wantReason string
	}{
		{"unknown mode", "mode", "Sometimes", "spec.autoScaling.mode", "supported values"},
		{"negative stabilization window", "stabilizationWindowSeconds", int64(-1), "spec.autoScaling.stabilizationWindowSeconds", "greater than or equal to 0"},
		{"lead over a day", "leadSeconds", int64(86401), "spec.autoScaling.leadSeconds", "less than or equal to 86400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := parseObject(t, validWO)
			if err := unstructured.SetNestedField(obj.Object, tc.value, "spec", "autoScaling", tc.field); err != nil {
				t.Fatal(err)
			}
			err := k8sClient.Create(context.Background(), obj, client.DryRunAll)
			if err == nil || !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid refusal, got %v", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.wantField+":") || !strings.Contains(msg, tc.wantReason) {
				t.Errorf("message does not name %s and %q: %s", tc.wantField, tc.wantReason, msg)
			}
		})
	}
	obj := parseObject(t, validWO)
	if err := k8sClient.Create(context.Background(), obj, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	mode, _, _ := unstructured.NestedString(obj.Object, "spec", "autoScaling", "mode")
	window, _, _ := unstructured.NestedInt64(obj.Object, "spec", "autoScaling", "stabilizationWindowSeconds")
	lead, _, _ := unstructured.NestedInt64(obj.Object, "spec", "autoScaling", "leadSeconds")
	if mode != "Predictive" || window != 300 || lead != 300 {
		t.Errorf("defaults: mode %q, stabilizationWindowSeconds %d, leadSeconds %d; want Predictive, 300, 300", mode, window, lead)
	}
}
