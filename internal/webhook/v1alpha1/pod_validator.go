package v1alpha1

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// Cheapest is the least a pod can cost and draw anywhere in the fleet (see cluster.Fleet.Cheapest).
type Cheapest func(ctx context.Context, pod *corev1.Pod) (model.Totals, bool, error)

// PodValidator refuses pods that a deny-mode CostPolicy or PowerPolicy has no room for: its budget
// or energy is spent, or the pod's cheapest possible placement would take the covered pods over
// the hourly cost cap or the power cap.
type PodValidator struct {
	Client   client.Reader
	Cheapest Cheapest
}

var _ admission.Validator[*corev1.Pod] = &PodValidator{}

// ValidateCreate checks a new pod against the deny-mode policies covering it.
func (v *PodValidator) ValidateCreate(ctx context.Context, pod *corev1.Pod) (admission.Warnings, error) {
	if pod.Namespace == "" {
		if req, err := admission.RequestFromContext(ctx); err == nil {
			pod = pod.DeepCopy()
			pod.Namespace = req.Namespace
		}
	}
	costs := &kcloudv1alpha1.CostPolicyList{}
	powers := &kcloudv1alpha1.PowerPolicyList{}
	if err := v.Client.List(ctx, costs); err != nil {
		return nil, nil // fail open: a pod must not be refused because a cache read failed
	}
	if err := v.Client.List(ctx, powers); err != nil {
		return nil, nil
	}
	least := func() (model.Totals, bool) {
		if v.Cheapest == nil {
			return model.Totals{}, false
		}
		t, ok, err := v.Cheapest(ctx, pod)
		return t, ok && err == nil
	}
	if problems := CheckPod(pod, costs.Items, powers.Items, least); len(problems) > 0 {
		return nil, fmt.Errorf("pod %s/%s refused: %s", pod.Namespace, podName(pod), strings.Join(problems, "; "))
	}
	return nil, nil
}

// CheckPod lists why the deny-mode policies covering a new pod have no room for it. least is the
// least the pod can cost and draw in the fleet, asked for only when a cap needs it.
func CheckPod(pod *corev1.Pod, costs []kcloudv1alpha1.CostPolicy, powers []kcloudv1alpha1.PowerPolicy, least func() (model.Totals, bool)) []string {
	var problems []string
	var cached *model.Totals
	var known bool
	cheapest := func() (model.Totals, bool) {
		if cached == nil {
			t, ok := least()
			cached, known = &t, ok
		}
		return *cached, known
	}
	for i := range costs {
		cp := &costs[i]
		if cp.Spec.Enforcement != kcloudv1alpha1.EnforcementDeny || !kube.Covers(cp.Spec.PolicyTarget, pod) {
			continue
		}
		if b := cp.Spec.Budget; b != nil && cp.Status.RemainingBudget != nil && *cp.Status.RemainingBudget <= 0 {
			problems = append(problems, fmt.Sprintf("CostPolicy %s (enforcement deny): budget of %.2f USD per %s is spent (%.2f USD since %s)",
				cp.Name, b.Amount, period(b.Period), cp.Status.CurrentSpend, since(cp.Status.PeriodStart)))
		}
		if c := cp.Spec.MaxCostPerHour; c != nil {
			if l, ok := cheapest(); ok && cp.Status.CurrentCostPerHour+l.CostPerHour > *c {
				problems = append(problems, fmt.Sprintf("CostPolicy %s (enforcement deny): maxCostPerHour %.2f USD/h: covered pods cost %.2f USD/h and this pod adds at least %.2f USD/h",
					cp.Name, *c, cp.Status.CurrentCostPerHour, l.CostPerHour))
			}
		}
	}
	for i := range powers {
		pp := &powers[i]
		if pp.Spec.Enforcement != kcloudv1alpha1.EnforcementDeny || !kube.Covers(pp.Spec.PolicyTarget, pod) {
			continue
		}
		if b := pp.Spec.EnergyBudget; b != nil && pp.Status.PeriodStart != nil && pp.Status.EnergyThisPeriodKWh >= b.KilowattHours {
			problems = append(problems, fmt.Sprintf("PowerPolicy %s (enforcement deny): energy budget of %.2f kWh per %s is spent (%.2f kWh since %s)",
				pp.Name, b.KilowattHours, period(b.Period), pp.Status.EnergyThisPeriodKWh, since(pp.Status.PeriodStart)))
		}
		if c := pp.Spec.MaxPowerWatts; c != nil {
			if l, ok := cheapest(); ok && pp.Status.CurrentPowerWatts+l.PowerWatts > *c {
				problems = append(problems, fmt.Sprintf("PowerPolicy %s (enforcement deny): maxPowerWatts %.0f W: covered pods draw %.0f W and this pod adds at least %.0f W",
					pp.Name, *c, pp.Status.CurrentPowerWatts, l.PowerWatts))
			}
		}
	}
	return problems
}

// ValidateUpdate allows updates: policies apply to new pods.
func (v *PodValidator) ValidateUpdate(context.Context, *corev1.Pod, *corev1.Pod) (admission.Warnings, error) {
	return nil, nil
}

// ValidateDelete allows deletes.
func (v *PodValidator) ValidateDelete(context.Context, *corev1.Pod) (admission.Warnings, error) {
	return nil, nil
}

func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName + "*"
}

func period(p kcloudv1alpha1.BudgetPeriod) string {
	if p == "" {
		return "month"
	}
	return string(p)
}

func since(t *metav1.Time) string {
	if t.IsZero() {
		return "the period start"
	}
	return t.UTC().Format(time.RFC3339)
}
