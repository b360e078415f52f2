package integration

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	appsv1 "k8s.io/api/apps/v1"

	"k8s.io/apimachinery/pkg/types"
	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/operator"
	"kcloud.io/optimizer/internal/telemetry"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// startOperator runs the operator in-process against envtest's apiserver with a fake clock: the
// controllers' notion of now is the test's to move, while requeues happen in real time.
func startOperator(t *testing.T, clk *clocktesting.FakeClock, o operator.Options) {
	t.Helper()
	ctrllog.SetLogger(testr.New(t))
	o.MetricsAddr, o.ProbeAddr, o.Clock, o.SkipNameValidation = "0", "0", clk, true
	if o.AccountingInterval == 0 {
		o.AccountingInterval = 200 * time.Millisecond
	}
	if o.ReoptimizeInterval == 0 {
		o.ReoptimizeInterval = 200 * time.Millisecond
	}
	mgr, err := operator.New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	runManager(t, mgr)
}

// runManager starts a manager until the test ends, and fails the test if it stops with an error.
// It returns the manager's context.
func runManager(t *testing.T, mgr ctrl.Manager) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager stopped with: %v", err)
		}
	})
	return ctx
}

// t4Node creates a Ready single-T4 node (g4dn.xlarge) of a capacity type in us-west-2.
func t4Node(t *testing.T, name, capacityType string) *corev1.Node {
	t.Helper()
	rl := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods: resource.MustParse("110"), catalog.ResourceNVIDIAGPU: resource.MustParse("1")}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		catalog.LabelInstanceType: "g4dn.xlarge", catalog.LabelRegion: "us-west-2", catalog.LabelCapacityType: capacityType,
		catalog.LabelNVIDIAGPUProduct: "Tesla-T4"}}}
	if err := k8sClient.Create(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	n.Status = corev1.NodeStatus{Capacity: rl, Allocatable: rl, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}
	if err := k8sClient.Status().Update(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	// The apiserver taints new nodes not-ready; with no node lifecycle controller here, untaint.
	n.Spec.Taints = nil
	if err := k8sClient.Update(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), n) })
	return n
}

// runningPod creates a one-GPU pod bound to a node and marks it Running since started.
func runningPod(t *testing.T, ns, name, node string, started time.Time, labels map[string]string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "example.com/job:1",
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")},
				Limits:   corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("1")}}}}}}
	if err := k8sClient.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	// The operator may add its accounting finalizer meanwhile: write the status over the latest.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(p), p); err != nil {
			return err
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &metav1.Time{Time: started}}
		return k8sClient.Status().Update(context.Background(), p)
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func nodePrice(t *testing.T, n *corev1.Node) float64 {
	t.Helper()
	facts, err := catalog.FactsFromNode(n)
	if err != nil {
		t.Fatal(err)
	}
	p, err := catalog.Default().Price(facts)
	if err != nil {
		t.Fatal(err)
	}
	return p.USDPerHour
}

func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func eventReasons(t *testing.T, ns, name string) string {
	t.Helper()
	list := &corev1.EventList{}
	if err := k8sClient.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name {
			out = append(out, e.Reason)
		}
	}
	return strings.Join(out, ",")
}

// TestCostPolicyAccounting moves the operator's clock through a day: spend accrues at the node's
// price, thresholds raise BudgetWarning, the budget raises BudgetExceeded with events, the cap
// raises CapExceeded, and the next day starts a new period.
func TestCostPolicyAccounting(t *testing.T) {
	ctx := context.Background()
	ns := "op-cost"
	ensureNamespace(t, ns)
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	node := t4Node(t, "op-cost-t4", "on-demand")
	price := nodePrice(t, node) // the pod holds the node's only GPU: its whole price
	runningPod(t, ns, "job", node.Name, time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), nil)
	limit := price * 0.9
	cp := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "op-cost"},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}}, MaxCostPerHour: &limit,
			Budget: &kcloudv1alpha1.CostBudget{Amount: 2 * price, Period: kcloudv1alpha1.BudgetPeriodDay, AlertThresholds: []int32{50, 80}}}}
	if err := k8sClient.Create(ctx, cp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), cp) })
	startOperator(t, clk, operator.Options{})

	expect := func(at time.Time, spendHours float64, warning, exceeded metav1.ConditionStatus, periodStart time.Time) {
		t.Helper()
		clk.SetTime(at)
		want := spendHours * price
		waitFor(t, fmt.Sprintf("spend %.4f at %s", want, at.Format(time.RFC3339)), func() error {
			got := &kcloudv1alpha1.CostPolicy{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cp), got); err != nil {
				return err
			}
			s := got.Status
			if s.AccountedUntil == nil || !s.AccountedUntil.Time.Equal(at) {
				return fmt.Errorf("accountedUntil %v", s.AccountedUntil)
			}
			if math.Abs(s.CurrentSpend-want) > 1e-9 || s.RemainingBudget == nil || math.Abs(*s.RemainingBudget-(2*price-want)) > 1e-9 {
				return fmt.Errorf("spend %.9f remaining %v, want %.9f", s.CurrentSpend, s.RemainingBudget, want)
			}
			if !s.PeriodStart.Time.Equal(periodStart) || s.CoveredPods != 1 || math.Abs(s.CurrentCostPerHour-price) > 1e-6 {
				return fmt.Errorf("periodStart %v coveredPods %d costPerHour %v", s.PeriodStart, s.CoveredPods, s.CurrentCostPerHour)
			}
			for typ, want := range map[string]metav1.ConditionStatus{kcloudv1alpha1.ConditionBudgetWarning: warning,
				kcloudv1alpha1.ConditionBudgetExceeded: exceeded, kcloudv1alpha1.ConditionCapExceeded: metav1.ConditionTrue} {
				if c := meta.FindStatusCondition(s.Conditions, typ); c == nil || c.Status != want {
					return fmt.Errorf("condition %s = %+v, want %s", typ, c, want)
				}
			}
			return nil
		})
	}
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	expect(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), 1, metav1.ConditionTrue, metav1.ConditionFalse, day)    // 50%
	expect(time.Date(2026, 11, 26, 10, 30, 0, 0, time.UTC), 1.5, metav1.ConditionTrue, metav1.ConditionFalse, day) // 75%
	expect(time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC), 2, metav1.ConditionTrue, metav1.ConditionTrue, day)     // 100%
	// The next day: a new period, counted from midnight.
	expect(time.Date(2026, 11, 27, 0, 30, 0, 0, time.UTC), 0.5, metav1.ConditionFalse, metav1.ConditionFalse, day.AddDate(0, 0, 1))
	waitFor(t, "budget events", func() error {
		if r := eventReasons(t, "default", cp.Name); !strings.Contains(r, kcloudv1alpha1.ConditionBudgetExceeded) ||
			!strings.Contains(r, kcloudv1alpha1.ConditionBudgetWarning) || !strings.Contains(r, kcloudv1alpha1.ConditionCapExceeded) {
			return fmt.Errorf("events %q", r)
		}
		return nil
	})
}

// TestWorkloadOptimizerFindsCheaperPlacement: a workload on an on-demand node while an identical
// spot node is free is reported with the saving; one whose pods are found through a Deployment
// gets them linked; one whose target is missing fails with an event.
func TestWorkloadOptimizerFindsCheaperPlacement(t *testing.T) {
	ctx := context.Background()
	ns := "op-wo"
	ensureNamespace(t, ns)
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	dear := t4Node(t, "op-wo-od", "on-demand")
	cheap := t4Node(t, "op-wo-spot", "spot")
	runningPod(t, ns, "serve-0", dear.Name, clk.Now().Add(-time.Hour), map[string]string{kube.LabelOptimizer: "serve"})
	wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "serve", Namespace: ns},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadServing}}
	if err := k8sClient.Create(ctx, wo); err != nil {
		t.Fatal(err)
	}

	// Pods of a Deployment (envtest runs no controller-manager, so the test makes them).
	one := int32(1)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "batch", Namespace: ns}, Spec: appsv1.DeploymentSpec{Replicas: &one,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "batch"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "batch"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/batch:1"}}}}}}
	if err := k8sClient.Create(ctx, dep); err != nil {
		t.Fatal(err)
	}
	batchNode := t4Node(t, "op-wo-spot-batch", "spot")
	runningPod(t, ns, "batch-0", batchNode.Name, clk.Now().Add(-time.Hour), map[string]string{"app": "batch"})
	byTarget := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "batch", Namespace: ns},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadBatch,
			TargetRef: &kcloudv1alpha1.TargetReference{Kind: "Deployment", Name: "batch"}}}
	missing := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "missing", Namespace: ns},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadBatch,
			TargetRef: &kcloudv1alpha1.TargetReference{Kind: "Deployment", Name: "nowhere"}}}
	for _, o := range []client.Object{byTarget, missing} {
		if err := k8sClient.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	startOperator(t, clk, operator.Options{})

	dearPrice, cheapPrice := nodePrice(t, dear), nodePrice(t, cheap)
	waitFor(t, "serve's status", func() error {
		got := &kcloudv1alpha1.WorkloadOptimizer{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(wo), got); err != nil {
			return err
		}
		s := got.Status
		c := meta.FindStatusCondition(s.Conditions, kcloudv1alpha1.ConditionCostOptimized)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != kcloudv1alpha1.ReasonCheaperPlacementAvailable {
			return fmt.Errorf("CostOptimized = %+v", c)
		}
		if math.Abs(s.CurrentCost-dearPrice) > 1e-4 || math.Abs(s.BestCost-cheapPrice) > 1e-4 || math.Abs(s.PotentialSavings-(dearPrice-cheapPrice)) > 1e-4 {
			return fmt.Errorf("cost %v best %v savings %v, want %v %v", s.CurrentCost, s.BestCost, s.PotentialSavings, dearPrice, cheapPrice)
		}
		if s.Phase != kcloudv1alpha1.PhaseOptimizing || s.OptimizationScore >= 1 || s.AssignedNode != dear.Name {
			return fmt.Errorf("phase %s score %v node %s", s.Phase, s.OptimizationScore, s.AssignedNode)
		}
		if !strings.Contains(eventReasons(t, ns, wo.Name), kcloudv1alpha1.ReasonCheaperPlacementAvailable) {
			return fmt.Errorf("no %s event", kcloudv1alpha1.ReasonCheaperPlacementAvailable)
		}
		return nil
	})
	waitFor(t, "the Deployment's pod linked and priced", func() error {
		p := &corev1.Pod{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "batch-0"}, p); err != nil {
			return err
		}
		if p.Labels[kube.LabelOptimizer] != "batch" {
			return fmt.Errorf("batch-0 labels %v", p.Labels)
		}
		got := &kcloudv1alpha1.WorkloadOptimizer{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(byTarget), got); err != nil {
			return err
		}
		if got.Status.RunningReplicas != 1 || math.Abs(got.Status.CurrentCost-nodePrice(t, batchNode)) > 1e-4 || got.Status.Phase != kcloudv1alpha1.PhaseOptimized {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
	waitFor(t, "the missing target reported", func() error {
		got := &kcloudv1alpha1.WorkloadOptimizer{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(missing), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, kcloudv1alpha1.ConditionCostOptimized)
		if got.Status.Phase != kcloudv1alpha1.PhaseFailed || c == nil || c.Reason != kcloudv1alpha1.ReasonTargetNotFound ||
			!strings.Contains(c.Message, "Deployment op-wo/nowhere not found") {
			return fmt.Errorf("phase %s condition %+v", got.Status.Phase, c)
		}
		if !strings.Contains(eventReasons(t, ns, missing.Name), kcloudv1alpha1.ReasonTargetNotFound) {
			return fmt.Errorf("no %s event", kcloudv1alpha1.ReasonTargetNotFound)
		}
		return nil
	})
}

// TestMeasuredPowerAndWatchNamespace: with telemetry, a pod's accelerator power comes from the
// measurement (the host's share stays modelled) and status names the source; a PowerPolicy
// accounts the energy; an optimizer outside WATCH_NAMESPACE is left alone.
func TestMeasuredPowerAndWatchNamespace(t *testing.T) {
	ctx := context.Background()
	ns, other := "op-power", "op-unwatched"
	ensureNamespace(t, ns)
	ensureNamespace(t, other)
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	node := t4Node(t, "op-power-t4", "on-demand")
	runningPod(t, ns, "infer-0", node.Name, clk.Now().Add(-2*time.Hour), map[string]string{kube.LabelOptimizer: "infer"})
	for _, n := range []string{ns, other} {
		wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "infer", Namespace: n},
			Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadInference}}
		if err := k8sClient.Create(ctx, wo); err != nil {
			t.Fatal(err)
		}
	}
	pp := &kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "op-power"},
		Spec: kcloudv1alpha1.PowerPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}}, PreferGreen: true}}
	if err := k8sClient.Create(ctx, pp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), pp) })
	const measured = 55.0 // W on the pod's T4
	startOperator(t, clk, operator.Options{WatchNamespaces: []string{ns}, Telemetry: telemetry.Static{Readings: map[types.NamespacedName]telemetry.Reading{
		{Namespace: ns, Name: "infer-0"}: {Watts: measured, GPUUtilization: 0.4, Source: telemetry.SourceDCGM}}}})

	// The host's share as the catalog models it: the pod's attributed power without the device.
	facts, err := catalog.FactsFromNode(node)
	if err != nil {
		t.Fatal(err)
	}
	econ, err := catalog.Default().Economics(facts)
	if err != nil {
		t.Fatal(err)
	}
	econ.Device = nil
	p := &corev1.Pod{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "infer-0"}, p); err != nil {
		t.Fatal(err)
	}
	req, capacity := kube.PodRequest(p), kube.NodeCapacity(node, facts)
	want := model.AttributedPower(&req, &capacity, &econ) + measured
	waitFor(t, "measured power in status", func() error {
		got := &kcloudv1alpha1.WorkloadOptimizer{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "infer"}, got); err != nil {
			return err
		}
		if got.Status.PowerSource != telemetry.SourceDCGM || math.Abs(got.Status.CurrentPower-want) > 0.05 {
			return fmt.Errorf("powerSource %q currentPower %v, want dcgm and %.1f", got.Status.PowerSource, got.Status.CurrentPower, want)
		}
		pol := &kcloudv1alpha1.PowerPolicy{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pp), pol); err != nil {
			return err
		}
		// Two hours at the measured draw, from the pod's start.
		if wantKWh := want * 2 / 1000; math.Abs(pol.Status.EnergyThisPeriodKWh-wantKWh) > 1e-9 || pol.Status.CoveredPods != 1 {
			return fmt.Errorf("energy %v kWh for %d pods, want %v", pol.Status.EnergyThisPeriodKWh, pol.Status.CoveredPods, wantKWh)
		}
		if pol.Status.CarbonThisPeriodKg <= 0 {
			return fmt.Errorf("carbon %v", pol.Status.CarbonThisPeriodKg)
		}
		return nil
	})
	unwatched := &kcloudv1alpha1.WorkloadOptimizer{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: other, Name: "infer"}, unwatched); err != nil {
		t.Fatal(err)
	}
	if unwatched.Status.Phase != "" || len(unwatched.Finalizers) > 0 {
		t.Errorf("optimizer outside WATCH_NAMESPACE was reconciled: %+v %v", unwatched.Status, unwatched.Finalizers)
	}
}
