package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/operator"
)

// TestStoredInvalidSelectors: objects whose selector was stored before admission checked it (this
// suite runs no webhooks, as a cluster upgraded from an older version had none) get the
// SelectorInvalid condition and a Warning event naming the field; a policy keeps charging the pods
// its valid requirements match (here: the app=train pod, an hour at the node's price), so its
// budget still moves and fails closed.
func TestStoredInvalidSelectors(t *testing.T) {
	ctx := context.Background()
	ns := "op-badsel"
	ensureNamespace(t, ns)
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(at)
	node := t4Node(t, "op-badsel-t4", "on-demand")
	price := nodePrice(t, node)
	runningPod(t, ns, "train", node.Name, at.Add(-time.Hour), map[string]string{"app": "train"})
	runningPod(t, ns, "other", node.Name, at.Add(-time.Hour), map[string]string{"app": "serve"})
	bogus := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "train"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Bogus", Values: []string{"x"}}}}
	cp := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "op-badsel"},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}, Selector: bogus},
			Budget: &kcloudv1alpha1.CostBudget{Amount: 100, Period: kcloudv1alpha1.BudgetPeriodDay}, Enforcement: kcloudv1alpha1.EnforcementDeny}}
	pp := &kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "op-badsel"},
		Spec: kcloudv1alpha1.PowerPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}, Selector: bogus}, PreferGreen: true}}
	wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "badsel", Namespace: ns},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadTraining, Selector: bogus}}
	for _, o := range []client.Object{cp, pp, wo} {
		if err := k8sClient.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), o) })
	}
	startOperator(t, clk, operator.Options{})

	const field = `spec.selector: "Bogus" is not a valid label selector operator`
	check := func(o client.Object, conds func() []metav1.Condition, extra func() error) {
		t.Helper()
		waitFor(t, fmt.Sprintf("%T %s SelectorInvalid", o, o.GetName()), func() error {
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
				return err
			}
			c := meta.FindStatusCondition(conds(), kcloudv1alpha1.ConditionSelectorInvalid)
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != kcloudv1alpha1.ReasonSelectorDoesNotParse || !strings.Contains(c.Message, field) {
				return fmt.Errorf("condition %+v, want True %s naming %q", c, kcloudv1alpha1.ReasonSelectorDoesNotParse, field)
			}
			if extra != nil {
				return extra()
			}
			return nil
		})
		eventNs := o.GetNamespace()
		if eventNs == "" {
			eventNs = "default"
		}
		waitFor(t, "SelectorInvalid event", func() error {
			if r := eventReasons(t, eventNs, o.GetName()); !strings.Contains(r, kcloudv1alpha1.ConditionSelectorInvalid) {
				return fmt.Errorf("events %q", r)
			}
			return nil
		})
	}
	check(cp, func() []metav1.Condition { return cp.Status.Conditions }, func() error {
		// Only the app=train pod matches the valid part; an hour of it, at its node's only GPU.
		if d := cp.Status.CurrentSpend - price; d > 1e-9 || d < -1e-9 {
			return fmt.Errorf("spend %.9f, want %.9f (one pod-hour)", cp.Status.CurrentSpend, price)
		}
		c := meta.FindStatusCondition(cp.Status.Conditions, kcloudv1alpha1.ConditionSelectorInvalid)
		if !strings.Contains(c.Message, "refuses them all") {
			return fmt.Errorf("deny-mode message %q does not say it fails closed", c.Message)
		}
		return nil
	})
	check(pp, func() []metav1.Condition { return pp.Status.Conditions }, func() error {
		if pp.Status.CoveredPods != 1 {
			return fmt.Errorf("coveredPods %d, want 1 (app=train)", pp.Status.CoveredPods)
		}
		return nil
	})
	check(wo, func() []metav1.Condition { return wo.Status.Conditions }, nil)
}
