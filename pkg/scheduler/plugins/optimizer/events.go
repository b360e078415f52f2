package optimizer

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
)

var _ fwk.EnqueueExtensions = &Plugin{}

// EventsToRegister names the changes that can let a pod this plugin refused fit: a placed pod
// going, shrinking or changing labels (it frees a cap, a budget's room or capacity), a node
// appearing or changing its labels, annotations (prices, carbon) or allocatable, the pod itself
// changing, and a WorkloadOptimizer, CostPolicy or PowerPolicy created, deleted, its spec changed
// (the limits) or its budget period rolled over (what was spent starts again from nothing).
// Without this list kube-scheduler retries such a pod on every cluster event, and the operator
// writes the policies' status every few seconds: pods waiting on one budget were then retried at
// different moments and left the queue by their backoff, not by the queue's order
// (KcloudPriority). Within a period a status only ever adds to what was spent, so it frees nothing.
// A change of the catalog ConfigMap is not among them: kube-scheduler's periodic flush of
// unschedulable pods retries them within five minutes.
func (pl *Plugin) EventsToRegister(context.Context) ([]fwk.ClusterEventWithHint, error) {
	custom := func(gvr schema.GroupVersionResource) fwk.EventResource {
		return fwk.EventResource(gvr.Resource + "." + gvr.Version + "." + gvr.Group)
	}
	return []fwk.ClusterEventWithHint{
		{Event: fwk.ClusterEvent{Resource: fwk.AssignedPod, ActionType: fwk.Delete}, QueueingHintFn: pl.placedPodGone},
		{Event: fwk.ClusterEvent{Resource: fwk.AssignedPod, ActionType: fwk.UpdatePodLabel | fwk.UpdatePodScaleDown}, QueueingHintFn: pl.placedPodChanged},
		{Event: fwk.ClusterEvent{Resource: fwk.TargetPod, ActionType: fwk.Update}},
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeLabel | fwk.UpdateNodeAnnotation | fwk.UpdateNodeAllocatable}},
		{Event: fwk.ClusterEvent{Resource: custom(gvrOptimizers), ActionType: fwk.All}, QueueingHintFn: limitsChanged},
		{Event: fwk.ClusterEvent{Resource: custom(gvrCostPolicies), ActionType: fwk.All}, QueueingHintFn: limitsChanged},
		{Event: fwk.ClusterEvent{Resource: custom(gvrPowerPolicies), ActionType: fwk.All}, QueueingHintFn: limitsChanged},
	}, nil
}

// placedPodGone and placedPodChanged bring the limit usage up to date with the event before the
// waiting pods it requeues are tried: the usage's own handler on the pod informer runs in a
// goroutine of its own, and the first pod out of the queue could otherwise still see the freed
// room taken. Both updates are idempotent, so the handler's later call changes nothing.
func (pl *Plugin) placedPodGone(_ klog.Logger, _ *corev1.Pod, oldObj, _ any) (fwk.QueueingHint, error) {
	pl.usage.podEvent(oldObj, true)
	return fwk.Queue, nil
}

func (pl *Plugin) placedPodChanged(_ klog.Logger, _ *corev1.Pod, _, newObj any) (fwk.QueueingHint, error) {
	pl.usage.podEvent(newObj, false)
	return fwk.Queue, nil
}

// limitsChanged queues the waiting pods when an optimizer or policy comes or goes, its spec changes
// (its generation) or its budget period starts again; other status writes are skipped.
func limitsChanged(_ klog.Logger, _ *corev1.Pod, oldObj, newObj any) (fwk.QueueingHint, error) {
	if oldObj == nil || newObj == nil {
		return fwk.Queue, nil
	}
	o, errOld := meta.Accessor(oldObj)
	n, errNew := meta.Accessor(newObj)
	if errOld != nil || errNew != nil || o.GetGeneration() != n.GetGeneration() || periodStart(oldObj) != periodStart(newObj) {
		return fwk.Queue, nil
	}
	return fwk.QueueSkip, nil
}

// periodStart is when the object's budget period began, "" without one; the informers hold the
// kinds typed (their transform), unstructured where it did not apply.
func periodStart(obj any) string {
	at := func(t *metav1.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	switch v := obj.(type) {
	case *kcloudv1alpha1.CostPolicy:
		return at(v.Status.PeriodStart)
	case *kcloudv1alpha1.PowerPolicy:
		return at(v.Status.PeriodStart)
	case *kcloudv1alpha1.WorkloadOptimizer:
		if v.Status.Budget == nil {
			return ""
		}
		return at(&v.Status.Budget.PeriodStart)
	case *unstructured.Unstructured:
		if s, _, _ := unstructured.NestedString(v.Object, "status", "periodStart"); s != "" {
			return s
		}
		s, _, _ := unstructured.NestedString(v.Object, "status", "budget", "periodStart")
		return s
	}
	return ""
}
