package v1alpha1

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// Cheapest is the least a pod can cost and draw anywhere in the fleet (see cluster.Fleet.Cheapest).
type Cheapest func(ctx context.Context, pod *corev1.Pod) (model.Totals, bool, error)

// Spent lists the deny-mode budgets among a pod's limits that have run out now, with why
// (accounting.Budgets.Spent at the operator's clock).
type Spent func(ctx context.Context, limits []kube.PodLimit) ([]string, error)

// PodValidator refuses pods that a deny-mode CostPolicy or PowerPolicy has no room for: its budget
// or energy is spent, or the pod's cheapest possible placement would take the covered pods over
// the hourly cost cap or the power cap. DaemonSet and mirror pods are never refused.
type PodValidator struct {
	Client   client.Reader
	Cheapest Cheapest
	Spent    Spent
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
	if kube.NodeOverhead(pod) {
		return nil, nil // a DaemonSet's or a mirror pod: refusing it would only leave a node without it
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
	spent := func(limits []kube.PodLimit) []string {
		if v.Spent == nil {
			return nil
		}
		msgs, err := v.Spent(ctx, limits)
		if err != nil {
			// fail open, as for a failed cache read; the budget guard judges the pod again
			log.FromContext(ctx).Error(err, "Judging the pod's deny-mode budgets", "pod", klog.KObj(pod))
		}
		return msgs
	}
	if problems := CheckPod(pod, costs.Items, powers.Items, least, spent); len(problems) > 0 {
		return nil, fmt.Errorf("pod %s/%s refused: %s", pod.Namespace, podName(pod), strings.Join(problems, "; "))
	}
	return nil, nil
}

// CheckPod lists why the deny-mode policies covering a new pod have no room for it. least is the
// least the pod can cost and draw in the fleet, asked for only when a cap needs it; spent lists
// the budgets among the limits that have run out (nil: none judged). The limits are the
// scheduler's (kube.Policies); the webhook judges the caps against the policies' status, before
// the pod has a node.
func CheckPod(pod *corev1.Pod, costs []kcloudv1alpha1.CostPolicy, powers []kcloudv1alpha1.PowerPolicy, least func() (model.Totals, bool), spent func([]kube.PodLimit) []string) []string {
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
	pp := kube.PoliciesOf(costs, powers).For(pod, nil)
	for i := range pp.Limits {
		l := &pp.Limits[i]
		if l.Enforcement != kcloudv1alpha1.EnforcementDeny {
			continue
		}
		var problem string
		switch {
		case l.Kind == model.LimitInvalid:
			problem = l.Source
		case l.CostPolicy != nil:
			problem = costProblem(l, cheapest)
		case l.PowerPolicy != nil:
			problem = powerProblem(l, cheapest)
		}
		if problem != "" {
			problems = append(problems, problem)
		}
	}
	if spent != nil {
		problems = append(problems, spent(pp.Limits)...)
	}
	return problems
}

// costProblem says why a deny-mode CostPolicy's limit has no room for a new pod, or "".
func costProblem(l *kube.PodLimit, cheapest func() (model.Totals, bool)) string {
	cp := l.CostPolicy
	switch l.Kind {
	case model.LimitCostPerHour:
		if least, ok := cheapest(); ok && cp.Status.CurrentCostPerHour+least.CostPerHour > l.Cap {
			return fmt.Sprintf("%s (enforcement deny): maxCostPerHour %.2f USD/h: covered pods cost %.2f USD/h and this pod adds at least %.2f USD/h",
				l.Source, l.Cap, cp.Status.CurrentCostPerHour, least.CostPerHour)
		}
	}
	return ""
}

// powerProblem says why a deny-mode PowerPolicy's limit has no room for a new pod, or "".
func powerProblem(l *kube.PodLimit, cheapest func() (model.Totals, bool)) string {
	pp := l.PowerPolicy
	switch l.Kind {
	case model.LimitPowerWatts:
		if least, ok := cheapest(); ok && pp.Status.CurrentPowerWatts+least.PowerWatts > l.Cap {
			return fmt.Sprintf("%s (enforcement deny): maxPowerWatts %.0f W: covered pods draw %.0f W and this pod adds at least %.0f W",
				l.Source, l.Cap, pp.Status.CurrentPowerWatts, least.PowerWatts)
		}
	}
	return ""
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
