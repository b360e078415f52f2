package e2e

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

func crClient(t *testing.T) client.Client {
	t.Helper()
	c, err := client.New(suite.Config, client.Options{Scheme: scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually polls until check returns nil or the timeout passes, then fails with the last error.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

type errorf string

func (e errorf) Error() string { return string(e) }

// expectedFigures prices and powers a pod on a node straight from the catalog: the dominant share
// of the node's price, and the model's attributed power.
func expectedFigures(t *testing.T, pod *corev1.Pod, node *corev1.Node) (usdPerHour, watts float64) {
	t.Helper()
	facts, err := catalog.FactsFromNode(node)
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.Default()
	price, err := cat.Price(facts)
	if err != nil {
		t.Fatal(err)
	}
	econ, err := cat.Economics(facts)
	if err != nil {
		t.Fatal(err)
	}
	p := kube.PodRequest(pod)
	n := kube.NodeCapacity(node, facts)
	return model.PodShare(&p, &n) * price.USDPerHour, model.AttributedPower(&p, &n, &econ)
}

// freeGPUs counts each node's nvidia.com/gpu not requested by pods bound to it.
func freeGPUs(t *testing.T) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	nodes, err := suite.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := suite.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	free := map[string]int64{}
	for _, n := range nodes.Items {
		q := n.Status.Allocatable[catalog.ResourceNVIDIAGPU]
		free[n.Name] = q.Value()
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, c := range p.Spec.Containers {
			q := c.Resources.Requests[catalog.ResourceNVIDIAGPU]
			free[p.Spec.NodeName] -= q.Value()
		}
	}
	return free
}

// TestTrainingExampleStatus applies the product description's training example verbatim with a
// pod of its size: the pod lands on the cheapest node within the example's cost and power caps,
// and the optimizer's status reports the catalog figures of that node to the cent and the watt,
// with conditions and a WorkloadOptimized event. Deleting the optimizer runs its finalizer.
func TestTrainingExampleStatus(t *testing.T) {
	ctx := context.Background()
	c := crClient(t)
	// `kcloud run` (TestRunOnExistingCluster) may have applied the same verbatim example already.
	ns := "ai-workloads"
	if _, err := suite.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(suite.Root, "config/samples/kcloud_v1alpha1_workloadoptimizer_ml-training-optimizer.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wo := &kcloudv1alpha1.WorkloadOptimizer{}
	if err := yaml.UnmarshalStrict(raw, wo); err != nil {
		t.Fatal(err)
	}
	free := freeGPUs(t) // before our pod takes any
	if err := c.Create(ctx, wo); apierrors.IsAlreadyExists(err) {
		existing := &kcloudv1alpha1.WorkloadOptimizer{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(wo), existing); err != nil {
			t.Fatal(err)
		}
		wo = existing // the same file, applied by kcloud run (the apiserver filled in defaults)
	} else if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // kcloud-scheduler's informer sees the caps
	r := wo.Spec.Resources
	pod := kcloudPod(ns, "trainer-0", label(kube.LabelOptimizer, wo.Name), gpus(int64(r.GPU)))
	pod.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: *r.CPU, corev1.ResourceMemory: *r.Memory,
		catalog.ResourceNVIDIAGPU: *resource.NewQuantity(int64(r.GPU), resource.DecimalSI)}
	create(t, pod)
	pods := waitPods(t, ns, 2*time.Minute, func(ps []corev1.Pod) bool { return len(ps) == 1 && ps[0].Status.Phase == corev1.PodRunning })
	if len(pods) != 1 || pods[0].Status.Phase != corev1.PodRunning {
		t.Fatalf("training pod not Running: %+v; events: %v", pods, failedScheduling(t, ns, "trainer-0"))
	}
	running := &pods[0]

	// Where the catalog says it should be: the cheapest node with room whose figures keep the caps.
	nodes, err := suite.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cheapest, cheapestCost := "", math.Inf(1)
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if free[n.Name] < int64(r.GPU) {
			continue
		}
		cost, watts := expectedFigures(t, running, n)
		if cost <= *wo.Spec.CostConstraints.MaxCostPerHour && watts <= *wo.Spec.PowerConstraints.MaxPowerUsage && cost < cheapestCost {
			cheapest, cheapestCost = n.Name, cost
		}
		t.Logf("candidate %s: %.4f USD/h, %.1f W", n.Name, cost, watts)
	}
	if running.Spec.NodeName != cheapest {
		t.Errorf("training pod on %s, want %s, the cheapest node within the caps (%.4f USD/h)", running.Spec.NodeName, cheapest, cheapestCost)
	}
	node, err := suite.Client.CoreV1().Nodes().Get(ctx, running.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantCost, wantWatts := expectedFigures(t, running, node)

	key := client.ObjectKeyFromObject(wo)
	eventually(t, time.Minute, func() error {
		if err := c.Get(ctx, key, wo); err != nil {
			return err
		}
		if wo.Status.RunningReplicas != 1 {
			return fmt.Errorf("status.runningReplicas = %d, want 1", wo.Status.RunningReplicas)
		}
		return nil
	})
	s := wo.Status
	t.Logf("status: phase %s, %.4f USD/h, %.1f W on %s, best %.4f USD/h, score %.2f", s.Phase, s.CurrentCost, s.CurrentPower, s.AssignedNode, s.BestCost, s.OptimizationScore)
	if math.Abs(s.CurrentCost-wantCost) >= 0.005 {
		t.Errorf("status.currentCost = %.4f, catalog says %.4f (to the cent)", s.CurrentCost, wantCost)
	}
	if math.Abs(s.CurrentPower-wantWatts) >= 0.5 {
		t.Errorf("status.currentPower = %.1f, catalog says %.1f (to the watt)", s.CurrentPower, wantWatts)
	}
	if s.AssignedNode != node.Name || len(s.AssignedNodes) != 1 || s.PowerSource != "catalog" {
		t.Errorf("status: assignedNode %q, assignedNodes %v, powerSource %q", s.AssignedNode, s.AssignedNodes, s.PowerSource)
	}
	if s.ObservedGeneration != wo.Generation {
		t.Errorf("status.observedGeneration = %d, want %d", s.ObservedGeneration, wo.Generation)
	}
	for _, want := range []struct{ typ, reason string }{
		{kcloudv1alpha1.ConditionWithinBudget, kcloudv1alpha1.ReasonWithinBudget},
	} {
		cond := meta.FindStatusCondition(s.Conditions, want.typ)
		if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != want.reason {
			t.Errorf("condition %s = %+v, want True with reason %s", want.typ, cond, want.reason)
		}
	}
	// The operator, pricing every feasible placement from the catalog, agrees with the scheduler.
	if cond := meta.FindStatusCondition(s.Conditions, kcloudv1alpha1.ConditionCostOptimized); cond == nil ||
		cond.Status != metav1.ConditionTrue || cond.Reason != kcloudv1alpha1.ReasonCheapestPlacement {
		t.Errorf("condition CostOptimized = %+v, want True (%s)", cond, kcloudv1alpha1.ReasonCheapestPlacement)
	}
	if s.Budget == nil || s.Budget.Remaining > *wo.Spec.CostConstraints.BudgetLimit || s.Budget.Spend < 0 {
		t.Errorf("status.budget = %+v", s.Budget)
	}
	if s.Phase == kcloudv1alpha1.PhaseOptimized {
		eventually(t, 30*time.Second, func() error {
			evs, err := suite.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=WorkloadOptimized"})
			if err != nil {
				return err
			}
			for _, e := range evs.Items {
				if e.InvolvedObject.Name == wo.Name && strings.Contains(e.Message, node.Name) {
					return nil
				}
			}
			return errorf("no WorkloadOptimized event naming " + node.Name)
		})
	}

	// The product description's metrics, on the operator's metrics endpoint.
	st, err := devcluster.ReadState(suite.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		resp, err := http.Get(st.OperatorMetrics)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		text := string(body)
		for _, want := range []string{
			`kcloud_workload_optimizations_total{namespace="ai-workloads",phase=`,
			`kcloud_cost_savings_total{name="ml-training-optimizer",namespace="ai-workloads"}`,
			`kcloud_power_savings_watts{name="ml-training-optimizer",namespace="ai-workloads"}`,
			fmt.Sprintf(`kcloud_optimization_score{name="ml-training-optimizer",namespace="ai-workloads"} %v`, s.OptimizationScore),
			fmt.Sprintf(`kcloud_workload_cost_usd_per_hour{name="ml-training-optimizer",namespace="ai-workloads"} %v`, s.CurrentCost),
		} {
			if !strings.Contains(text, want) {
				return fmt.Errorf("metrics lack %s", want)
			}
		}
		return nil
	})

	// Finalizer: an optimizer that found a pod by selector labelled it; deleting it removes the label.
	fin := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "by-selector", Namespace: ns},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadBatch, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "batch-e2e"}}}}
	if err := c.Create(ctx, fin); err != nil {
		t.Fatal(err)
	}
	create(t, kcloudPod(ns, "batch-0", label("app", "batch-e2e")))
	eventually(t, time.Minute, func() error {
		p, err := suite.Client.CoreV1().Pods(ns).Get(ctx, "batch-0", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Labels[kube.LabelOptimizer] != "by-selector" {
			return errorf("batch-0 not linked yet: labels " + labelsString(p.Labels))
		}
		return nil
	})
	if err := c.Get(ctx, client.ObjectKeyFromObject(fin), fin); err != nil {
		t.Fatal(err)
	}
	if !containsString(fin.Finalizers, kcloudv1alpha1.FinalizerCleanup) {
		t.Fatalf("finalizers = %v, want %s", fin.Finalizers, kcloudv1alpha1.FinalizerCleanup)
	}
	if err := c.Delete(ctx, fin); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, func() error {
		err := c.Get(ctx, client.ObjectKeyFromObject(fin), &kcloudv1alpha1.WorkloadOptimizer{})
		if err == nil {
			return errorf("by-selector still exists")
		}
		p, err := suite.Client.CoreV1().Pods(ns).Get(ctx, "batch-0", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if _, linked := p.Labels[kube.LabelOptimizer]; linked {
			return errorf("batch-0 still carries the link label after the finalizer ran")
		}
		return nil
	})
	// The user's own link label on trainer-0 is not the operator's to remove.
	if err := c.Delete(ctx, wo); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, func() error {
		if err := c.Get(ctx, key, &kcloudv1alpha1.WorkloadOptimizer{}); err == nil {
			return errorf("ml-training-optimizer still exists")
		}
		p, err := suite.Client.CoreV1().Pods(ns).Get(ctx, "trainer-0", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Labels[kube.LabelOptimizer] != wo.Name {
			return errorf("the finalizer removed a link label the user set")
		}
		return nil
	})
}

func labelsString(l map[string]string) string {
	var parts []string
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// operatorProcess finds the operator in the cluster's state.
func operatorProcess(t *testing.T) *devcluster.Process {
	t.Helper()
	st, err := devcluster.ReadState(suite.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	var last *devcluster.Process
	for _, p := range st.Processes {
		if p.Name == "kcloud-operator" {
			last = p
		}
	}
	if last == nil {
		t.Fatal("no kcloud-operator in the cluster state")
	}
	return last
}

// restartArgs are an operator process's arguments less those StartOperator sets again (the
// kubeconfig and new ports for metrics and probes).
func restartArgs(p *devcluster.Process) []string {
	var keep []string
	for _, a := range p.Args {
		if !strings.HasPrefix(a, "--kubeconfig=") && !strings.HasPrefix(a, "--metrics-") && !strings.HasPrefix(a, "--health-probe-") {
			keep = append(keep, a)
		}
	}
	return keep
}

// expectedSpend is what the policy's pods cost from the period start (or their own start) to
// until, at the catalog price of their nodes.
func expectedSpend(t *testing.T, pods []corev1.Pod, periodStart, until time.Time) float64 {
	t.Helper()
	total := 0.0
	for i := range pods {
		p := &pods[i]
		node, err := suite.Client.CoreV1().Nodes().Get(context.Background(), p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cost, _ := expectedFigures(t, p, node)
		total += cost * model.Interval{Start: p.Status.StartTime.Time}.HoursWithin(periodStart, until)
	}
	return total
}

// TestBudgetSurvivesOperatorRestart kills the operator in the middle of a budget period and starts
// it again: the policy's spend continues from its status, equal at every step to the pods' running
// time times their nodes' prices up to status.accountedUntil, so nothing is counted twice and the
// time the operator was down is not lost.
func TestBudgetSurvivesOperatorRestart(t *testing.T) {
	ctx := context.Background()
	c := crClient(t)
	ns := namespace(t, "e2e-budget")
	cp := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "e2e-budget"},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}},
			Budget: &kcloudv1alpha1.CostBudget{Amount: 1000, Period: kcloudv1alpha1.BudgetPeriodDay, AlertThresholds: []int32{50, 80}}}}
	if err := c.Create(ctx, cp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), cp) })
	create(t, kcloudPod(ns, "job-0", gpus(1), onModel("L4")), kcloudPod(ns, "job-1", gpus(1), onModel("V100")))
	pods := waitPods(t, ns, 2*time.Minute, func(ps []corev1.Pod) bool {
		n := 0
		for _, p := range ps {
			if p.Status.Phase == corev1.PodRunning && p.Status.StartTime != nil {
				n++
			}
		}
		return n == 2
	})

	// check compares status with the pods' running time up to accountedUntil.
	check := func(when string) (spend float64, until time.Time) {
		t.Helper()
		if err := c.Get(ctx, client.ObjectKeyFromObject(cp), cp); err != nil {
			t.Fatal(err)
		}
		s := cp.Status
		if s.PeriodStart == nil || s.AccountedUntil == nil {
			t.Fatalf("%s: status has no period: %+v", when, s)
		}
		want := expectedSpend(t, pods, s.PeriodStart.Time, s.AccountedUntil.Time)
		t.Logf("%s: spend %.6f USD up to %s, pods' running time says %.6f", when, s.CurrentSpend, s.AccountedUntil.Format(time.RFC3339), want)
		if math.Abs(s.CurrentSpend-want) > 1e-9*max(1, want) {
			t.Errorf("%s: status.currentSpend = %.9f, want %.9f (running time x price up to accountedUntil)", when, s.CurrentSpend, want)
		}
		if s.RemainingBudget == nil || math.Abs(*s.RemainingBudget-(1000-s.CurrentSpend)) > 1e-9 {
			t.Errorf("%s: status.remainingBudget = %v, want %.9f", when, s.RemainingBudget, 1000-s.CurrentSpend)
		}
		return s.CurrentSpend, s.AccountedUntil.Time
	}
	start := time.Now()
	eventually(t, time.Minute, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(cp), cp); err != nil {
			return err
		}
		if cp.Status.CoveredPods != 2 || cp.Status.AccountedUntil == nil || !cp.Status.AccountedUntil.After(start.Add(2*time.Second)) {
			return errorf("policy has not accounted both pods for a few seconds yet")
		}
		return nil
	})
	beforeSpend, beforeUntil := check("before the kill")

	restart := stopOperator(t)
	killed := time.Now()
	time.Sleep(6 * time.Second) // three accounting intervals with nobody accounting
	downSpend, downUntil := check("while down")
	if downUntil.After(killed) {
		t.Errorf("accountedUntil %s moved after the kill at %s", downUntil, killed)
	}

	restarted := time.Now()
	restart()
	eventually(t, time.Minute, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(cp), cp); err != nil {
			return err
		}
		if !cp.Status.AccountedUntil.After(restarted.Add(time.Second)) {
			return errorf("restarted operator has not accounted yet")
		}
		return nil
	})
	afterSpend, afterUntil := check("after the restart")
	if !(beforeSpend <= downSpend && downSpend < afterSpend) {
		t.Errorf("spend went %.6f -> %.6f -> %.6f, want it to grow only once the operator is back", beforeSpend, downSpend, afterSpend)
	}
	if afterUntil.Sub(beforeUntil) < 6*time.Second {
		t.Errorf("accountedUntil went from %s to %s across a 6-second outage", beforeUntil, afterUntil)
	}
}

// TestSpecExamplesLandCheapest applies the product description's other two examples with pods of
// their size, linked by label and completed by the mutating webhook: llm-serving's two replicas run
// where the operator, pricing every feasible placement from the catalog, finds nothing cheaper for
// the cluster; bert-training's eight A100s draw more than its 4,000 W cap on every node that has
// eight NVIDIA GPUs, so its pod stays Pending with an event naming the cap.
func TestSpecExamplesLandCheapest(t *testing.T) {
	ctx := context.Background()
	c := crClient(t)
	apply := func(file string) *kcloudv1alpha1.WorkloadOptimizer {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join(suite.Root, "config/samples", file))
		if err != nil {
			t.Fatal(err)
		}
		wo := &kcloudv1alpha1.WorkloadOptimizer{}
		if err := yaml.UnmarshalStrict(raw, wo); err != nil {
			t.Fatal(err)
		}
		if wo.Namespace == "" {
			wo.Namespace = "default"
		}
		if _, err := suite.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: wo.Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		if err := c.Create(ctx, wo); apierrors.IsAlreadyExists(err) {
			if err := c.Get(ctx, client.ObjectKeyFromObject(wo), wo); err != nil {
				t.Fatal(err)
			}
		} else if err != nil {
			t.Fatal(err)
		}
		return wo
	}
	serving := apply("kcloud_v1alpha1_workloadoptimizer_llm-serving.yaml")
	training := apply("kcloud_v1alpha1_workloadoptimizer_bert-training.yaml")
	time.Sleep(2 * time.Second) // the scheduler's and the webhook's caches see them
	bare := func(ns, name, wo string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{kube.LabelOptimizer: wo}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/model:1"}}}}
	}
	create(t, bare(serving.Namespace, "llm-0", serving.Name), bare(serving.Namespace, "llm-1", serving.Name), bare(training.Namespace, "bert-0", training.Name))

	eventually(t, 2*time.Minute, func() error {
		got := &kcloudv1alpha1.WorkloadOptimizer{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(serving), got); err != nil {
			return err
		}
		if got.Status.RunningReplicas != 2 {
			return fmt.Errorf("llm-serving: %d of 2 replicas running", got.Status.RunningReplicas)
		}
		cond := meta.FindStatusCondition(got.Status.Conditions, kcloudv1alpha1.ConditionCostOptimized)
		if cond == nil || cond.Status != metav1.ConditionTrue {
			return fmt.Errorf("llm-serving on %v: CostOptimized %+v", got.Status.AssignedNodes, cond)
		}
		if got.Status.CurrentCost > *serving.Spec.CostConstraints.MaxCostPerHour {
			return fmt.Errorf("llm-serving costs %.4f USD/h over its cap", got.Status.CurrentCost)
		}
		t.Logf("llm-serving: 2 replicas on %v, charged %.4f USD/h: %s", got.Status.AssignedNodes, got.Status.CurrentCost, cond.Message)
		return nil
	})

	// bert-training: no node with eight NVIDIA GPUs keeps the cap, by the catalog's own figures.
	pod, err := suite.Client.CoreV1().Pods(training.Namespace).Get(ctx, "bert-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if q := pod.Spec.Containers[0].Resources.Limits[catalog.ResourceNVIDIAGPU]; q.Value() != 8 {
		t.Fatalf("the webhook did not give bert-0 the example's 8 GPUs: %v", pod.Spec.Containers[0].Resources)
	}
	nodes, err := suite.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if q := n.Status.Allocatable[catalog.ResourceNVIDIAGPU]; q.Value() < 8 {
			continue
		}
		_, watts := expectedFigures(t, pod, n)
		t.Logf("bert-training on %s would draw %.1f W (cap %.0f W)", n.Name, watts, *training.Spec.PowerConstraints.MaxPowerUsage)
		if watts <= *training.Spec.PowerConstraints.MaxPowerUsage {
			t.Errorf("%s keeps bert-training's power cap: the pod should run there", n.Name)
		}
	}
	eventually(t, time.Minute, func() error {
		msgs := strings.Join(failedScheduling(t, training.Namespace, "bert-0"), "\n")
		if !strings.Contains(msgs, "WorkloadOptimizer ml-workloads/bert-training maxPowerUsage: power cap 4000 W exceeded") {
			return fmt.Errorf("no FailedScheduling event naming the power cap yet: %q", msgs)
		}
		return nil
	})
	if p, _ := suite.Client.CoreV1().Pods(training.Namespace).Get(ctx, "bert-0", metav1.GetOptions{}); p.Spec.NodeName != "" {
		t.Errorf("bert-0 bound to %s despite the cap", p.Spec.NodeName)
	}
}
