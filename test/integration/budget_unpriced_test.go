package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/operator"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
)

// TestOptimizerBudgetNamesUnpricedPods: a pod of an optimizer with a budget ran and ended on a node
// the catalog cannot price. Its cost is missing from the budget's spend, and FiguresComplete says
// so, naming the pod, instead of leaving it out silently.
func TestOptimizerBudgetNamesUnpricedPods(t *testing.T) {
	ctx := context.Background()
	ns := "op-wo-unpriced"
	ensureNamespace(t, ns)
	n := t4Node(t, "op-wo-unpriced-x", "on-demand")
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error { // a type and a GPU no catalog lists
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(n), n); err != nil {
			return err
		}
		n.Labels[catalog.LabelInstanceType] = "x9.unlisted"
		n.Labels[catalog.LabelNVIDIAGPUProduct] = "NVIDIA-Z999"
		return k8sClient.Update(ctx, n)
	})
	if err != nil {
		t.Fatal(err)
	}
	wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "job", Namespace: ns},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadBatch,
			CostConstraints: &kcloudv1alpha1.CostConstraints{BudgetLimit: ptr.To(100.0)}}}
	if err := k8sClient.Create(ctx, wo); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), wo) })
	now := time.Now().Truncate(time.Second)
	p := runningPod(t, ns, "done", n.Name, now.Add(-time.Hour), map[string]string{kube.LabelOptimizer: "job"})
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
			return err
		}
		p.Status.Phase = corev1.PodSucceeded
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(now.Add(-30 * time.Minute))}}}}
		return k8sClient.Status().Update(ctx, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	startOperator(t, clocktesting.NewFakeClock(now), operator.Options{})
	waitFor(t, "FiguresComplete naming the ended pod", func() error {
		got := &kcloudv1alpha1.WorkloadOptimizer{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(wo), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, kcloudv1alpha1.ConditionFiguresComplete)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != kcloudv1alpha1.ReasonUnpricedNodes || !strings.Contains(c.Message, "done on op-wo-unpriced-x") {
			return fmt.Errorf("FiguresComplete %+v", c)
		}
		if got.Status.Budget == nil || got.Status.Budget.Spend != 0 {
			return fmt.Errorf("budget %+v: want the unpriced pod's cost missing (0 spent)", got.Status.Budget)
		}
		return nil
	})
}
