package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
)

// TestHigherPriorityGetsTheBudgetFirst: a deny-mode daily budget has room for two more GPU pods
// once a blocking pod goes. Two pods of a priority-10 optimizer wait for it, created first, and
// two of a priority-90 optimizer, created after: when the blocker is deleted, the priority-90 pods
// are placed and the priority-10 pods keep waiting on the budget. By arrival alone (kube-scheduler's
// PrioritySort: same PriorityClass, earlier first) the priority-10 pods would have taken the room.
func TestHigherPriorityGetsTheBudgetFirst(t *testing.T) {
	ctx := context.Background()
	c := crClient(t)
	ns := namespace(t, "e2e-priority")
	const pool, taint = "e2e-pool", "e2e-priority"
	node := spareNode(t, ctx, "e2e-priority-gpu", 4, func(n *corev1.Node) {
		n.Labels[pool] = "priority"
		n.Spec.Taints = []corev1.Taint{{Key: taint, Value: "only", Effect: corev1.TaintEffectNoSchedule}}
	})
	onPool := func(p *corev1.Pod) {
		p.Spec.NodeSelector = map[string]string{pool: "priority"}
		p.Spec.Tolerations = []corev1.Toleration{{Key: taint, Operator: corev1.TolerationOpEqual, Value: "only", Effect: corev1.TaintEffectNoSchedule}}
	}
	under := func(optimizer string) podOpt {
		return func(p *corev1.Pod) { p.Labels[kube.LabelOptimizer] = optimizer }
	}

	// The figures from the catalog's price of the node: one GPU pod, and the 2-GPU blocker.
	// (as stored: the API server defaults an extended resource's request to its limit)
	probe := func(n int64) *corev1.Pod {
		p := kcloudPod(ns, "probe", gpus(n), onPool)
		r := &p.Spec.Containers[0].Resources
		r.Requests[catalog.ResourceNVIDIAGPU] = r.Limits[catalog.ResourceNVIDIAGPU]
		return p
	}
	one, _ := expectedFigures(t, probe(1), node)
	blockerCost, _ := expectedFigures(t, probe(2), node)
	if one <= 0 || blockerCost < 2*one-1e-9 {
		t.Fatalf("node %s prices a 1-GPU pod at %.4f USD/h and a 2-GPU pod at %.4f: the test needs a priced GPU node", node.Name, one, blockerCost)
	}
	// What is left must cover an hour of the blocker, or of two 1-GPU pods, but not of three, nor
	// of the blocker and one more: 2.5 pods' worth, less what the blocker spends while it runs.
	amount := 2.5 * one

	for name, prio := range map[string]int32{"low": 10, "high": 90} {
		wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadBatch, Priority: ptr.To(prio)}}
		if err := c.Create(ctx, wo); err != nil {
			t.Fatal(err)
		}
	}
	cp := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "e2e-priority-budget"},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}},
			Enforcement: kcloudv1alpha1.EnforcementDeny,
			Budget:      &kcloudv1alpha1.CostBudget{Amount: amount, Period: kcloudv1alpha1.BudgetPeriodDay}}}
	if err := c.Create(ctx, cp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), cp) })
	t.Logf("node %s: %.4f USD/h a GPU pod, %.4f the blocker; budget %.4f USD a day", node.Name, one, blockerCost, amount)

	create(t, kcloudPod(ns, "blocker", gpus(2), onPool))
	waitPods(t, ns, time.Minute, func(ps []corev1.Pod) bool { return bound(ps) == 1 })

	// Low first, so that arrival order favours it.
	create(t, kcloudPod(ns, "low-0", gpus(1), onPool, under("low")), kcloudPod(ns, "low-1", gpus(1), onPool, under("low")))
	create(t, kcloudPod(ns, "high-0", gpus(1), onPool, under("high")), kcloudPod(ns, "high-1", gpus(1), onPool, under("high")))
	waiting := []string{"low-0", "low-1", "high-0", "high-1"}
	for _, name := range waiting {
		p, err := suite.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{true: "10", false: "90"}[strings.HasPrefix(name, "low")]; p.Annotations[kube.AnnotationPriority] != want {
			t.Errorf("pod %s: %s=%q, want %q from its optimizer's spec.priority", name, kube.AnnotationPriority, p.Annotations[kube.AnnotationPriority], want)
		}
	}
	eventually(t, time.Minute, func() error {
		for _, name := range waiting {
			if !budgetHeld(failedScheduling(t, ns, name)) {
				return errorf("pod " + name + " has no FailedScheduling event for the budget yet")
			}
		}
		return nil
	})
	if ps := waitPods(t, ns, 0, func([]corev1.Pod) bool { return true }); bound(ps) != 1 {
		t.Fatalf("%d pods bound while the blocker holds the budget, want only the blocker: %v", bound(ps), podPlaces(ps))
	}
	// Past kube-scheduler's longest backoff (10 s), every waiting pod goes back to the active queue
	// at the next event, where the queue's order decides who is tried first.
	time.Sleep(11 * time.Second)

	if err := suite.Client.CoreV1().Pods(ns).Delete(ctx, "blocker", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	placed := func(ps []corev1.Pod) []string {
		var out []string
		for _, p := range ps {
			if p.Spec.NodeName != "" {
				out = append(out, p.Name)
			}
		}
		sort.Strings(out)
		return out
	}
	waitPods(t, ns, 2*time.Minute, func(ps []corev1.Pod) bool { return len(placed(ps)) >= 2 })
	// A third placement would break the budget; give the scheduler a moment to show it does not.
	time.Sleep(5 * time.Second)
	pods := waitPods(t, ns, 0, func([]corev1.Pod) bool { return true })
	if got, want := strings.Join(placed(pods), ","), "high-0,high-1"; got != want {
		t.Errorf("placed after the blocker went: %s, want %s (the priority-90 optimizer's pods)", got, want)
		logSchedulerLines(t, ns)
	}
	for _, name := range []string{"low-0", "low-1"} {
		msgs := failedScheduling(t, ns, name)
		if !budgetHeld(msgs) {
			t.Errorf("pod %s: no FailedScheduling event naming the budget: %v", name, msgs)
		}
	}
	t.Logf("placed: %v", podPlaces(pods))
}

// budgetHeld says whether one of the FailedScheduling messages is the e2e budget's.
func budgetHeld(msgs []string) bool {
	for _, m := range msgs {
		if strings.Contains(m, "CostPolicy e2e-priority-budget: budget left") {
			return true
		}
	}
	return false
}

// logSchedulerLines logs what kcloud-scheduler's log says about the namespace's pods.
func logSchedulerLines(t *testing.T, ns string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(suite.StateDir, "kcloud-scheduler.log"))
	if err != nil {
		t.Logf("kcloud-scheduler's log: %v", err)
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, ns+"/") {
			t.Log(line)
		}
	}
}
