package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
)

// TestBudgetGuard: this suite runs no webhook server, as when the fail-open pod webhook gets no
// answer. A pod that has run an hour under a deny-mode budget of an hour and 4 s of its node's
// price spends it 4 s after the test starts; a pod created before that instant is kept, one created
// after it is evicted with an event, and an operator that starts again later (its ledger by then
// past the instant) still keeps the first.
func TestBudgetGuard(t *testing.T) {
	ctx := context.Background()
	ns := "op-guard"
	ensureNamespace(t, ns)
	ensureNamespace(t, "op-guard-free")
	node := t4Node(t, "op-guard-a", "on-demand")
	price := nodePrice(t, node)
	t0 := time.Now().Truncate(time.Second)
	cp := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "op-guard"},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}},
			Enforcement: kcloudv1alpha1.EnforcementDeny,
			Budget:      &kcloudv1alpha1.CostBudget{Amount: price * (time.Hour + 4*time.Second).Hours(), Period: kcloudv1alpha1.BudgetPeriodMonth}}}
	if err := k8sClient.Create(ctx, cp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), cp) })
	kept := runningPod(t, ns, "kept", node.Name, t0.Add(-time.Hour), nil) // created before the budget runs out

	clk := clocktesting.NewFakeClock(time.Now())
	stop := startStoppableOperator(t, clk)
	follow := func() { // the operator's clock follows real time, never ahead of the apiserver's
		clk.SetTime(time.Now())
	}
	waitFor(t, "the first accounting", func() error {
		follow()
		got := &kcloudv1alpha1.CostPolicy{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cp), got); err != nil {
			return err
		}
		if got.Status.AccountedUntil == nil {
			return fmt.Errorf("not accounted yet")
		}
		return nil
	})
	time.Sleep(time.Until(t0.Add(6 * time.Second)))
	follow()
	late := runningPod(t, ns, "late", node.Name, time.Now(), nil)              // created after: evicted
	free := runningPod(t, "op-guard-free", "free", node.Name, time.Now(), nil) // no budget covers it
	waitFor(t, "late evicted", func() error {
		follow()
		got := &corev1.Pod{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(late), got); err != nil {
			return nil // gone
		}
		if got.DeletionTimestamp == nil {
			return fmt.Errorf("late not evicted")
		}
		return nil
	})
	waitFor(t, "the eviction's event", func() error {
		if r := eventReasons(t, ns, "late"); !strings.Contains(r, kcloudv1alpha1.ReasonEvictedOverBudget) {
			return fmt.Errorf("events of late: %q", r)
		}
		return nil
	})

	// Restarted with the ledger past the instant the budget ran out, the guard judges every pod
	// again: the one created before that instant stays.
	stop()
	follow()
	startStoppableOperator(t, clk)
	waitFor(t, "the ledger past the crossing", func() error {
		follow()
		got := &kcloudv1alpha1.CostPolicy{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cp), got); err != nil {
			return err
		}
		if got.Status.AccountedUntil == nil || !got.Status.AccountedUntil.After(t0.Add(10*time.Second)) || got.Status.RemainingBudget == nil || *got.Status.RemainingBudget > 0 {
			return fmt.Errorf("accountedUntil %v, remaining %v", got.Status.AccountedUntil, got.Status.RemainingBudget)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // the guard has judged every pod of the new cache
	for _, p := range []*corev1.Pod{kept, free} {
		got := &corev1.Pod{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(p), got); err != nil || got.DeletionTimestamp != nil {
			t.Errorf("pod %s/%s evicted (%v): it was created before the budget ran out, or no budget covers it", p.Namespace, p.Name, err)
		}
	}
}
