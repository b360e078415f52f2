package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
)

// TestOperatorAgreesWithScheduler: kcloud-scheduler places an optimizer's one-GPU pods, one after
// the other, and the operator then reports that placement as the best one: CostOptimized True, no
// CheaperPlacementAvailable event, potentialSavings 0. With preferSpot (run first, on the idle
// fleet) the scheduler picks dearer spot nodes; the operator agrees with it and says what the
// preference costs instead of calling the placement improvable.
func TestOperatorAgreesWithScheduler(t *testing.T) {
	c := crClient(t)
	for _, preferSpot := range []bool{true, false} {
		t.Run(fmt.Sprintf("preferSpot=%v", preferSpot), func(t *testing.T) {
			ns := namespace(t, fmt.Sprintf("agree-spot-%v", preferSpot))
			wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "agree", Namespace: ns},
				Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadServing,
					CostConstraints: &kcloudv1alpha1.CostConstraints{PreferSpot: preferSpot}}}
			if err := c.Create(context.Background(), wo); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second) // the scheduler's informer sees the optimizer
			// One at a time, so that the scheduler places them in the order the operator replays them.
			for i := range 4 {
				name := fmt.Sprintf("agree-%d", i)
				create(t, kcloudPod(ns, name, gpus(1), label(kube.LabelOptimizer, wo.Name)))
				waitPods(t, ns, time.Minute, func(pods []corev1.Pod) bool {
					for _, p := range pods {
						if p.Name == name {
							return p.Status.Phase == corev1.PodRunning
						}
					}
					return false
				})
			}
			pods := waitPods(t, ns, time.Second, func([]corev1.Pod) bool { return true })
			var places []string
			for _, p := range pods {
				places = append(places, p.Name+"@"+p.Spec.NodeName)
			}
			var s kcloudv1alpha1.WorkloadOptimizerStatus
			eventually(t, time.Minute, func() error {
				got := &kcloudv1alpha1.WorkloadOptimizer{}
				if err := c.Get(context.Background(), client.ObjectKeyFromObject(wo), got); err != nil {
					return err
				}
				s = got.Status
				if s.RunningReplicas != 4 {
					return fmt.Errorf("%d of 4 replicas running", s.RunningReplicas)
				}
				cond := meta.FindStatusCondition(s.Conditions, kcloudv1alpha1.ConditionCostOptimized)
				if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != kcloudv1alpha1.ReasonCheapestPlacement {
					return fmt.Errorf("pods %v: CostOptimized %+v", places, cond)
				}
				return nil
			})
			cond := meta.FindStatusCondition(s.Conditions, kcloudv1alpha1.ConditionCostOptimized)
			t.Logf("pods %v: %.4f USD/h, best %.4f, savings %.4f: %s", places, s.CurrentCost, s.BestCost, s.PotentialSavings, cond.Message)
			if s.PotentialSavings != 0 {
				t.Errorf("potentialSavings = %v, want 0: the operator calls the scheduler's placement improvable", s.PotentialSavings)
			}
			if preferSpot && s.CurrentCost > 0 && !strings.Contains(cond.Message, "preferSpot:") {
				// Only when spot costs more than the cheapest feasible placement; say so when it did not.
				t.Logf("preferSpot cost nothing here: %s", cond.Message)
			}
			if r := asEventReasons(t, ns, wo.Name); strings.Contains(r, kcloudv1alpha1.ReasonCheaperPlacementAvailable) {
				t.Errorf("events of %s: %s", wo.Name, r)
			}
		})
	}
}
