package accounting

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/pkg/kube"
)

// PodLedger is one ledger that charges a pod: who keeps it, and up to when it has accounted (nil
// before its first accounting).
type PodLedger struct {
	Owner          string // e.g. "CostPolicy team" or "WorkloadOptimizer ml/bert budget"
	AccountedUntil *time.Time
}

// LedgersOf lists the ledgers that charge a pod: every CostPolicy and PowerPolicy covering it (a
// policy accounts what it covers whatever its enforcement; policies are kube.PoliciesOf the lists
// given) and the budget of its WorkloadOptimizer (wo, nil when it has none).
func LedgersOf(pod *corev1.Pod, policies *kube.Policies, wo *kcloudv1alpha1.WorkloadOptimizer) []PodLedger {
	var out []PodLedger
	costs, powers := policies.Covering(pod)
	for _, cp := range costs {
		out = append(out, PodLedger{Owner: kube.CostPolicySource(cp.Name), AccountedUntil: timeOf(cp.Status.AccountedUntil)})
	}
	for _, pp := range powers {
		out = append(out, PodLedger{Owner: kube.PowerPolicySource(pp.Name), AccountedUntil: timeOf(pp.Status.AccountedUntil)})
	}
	if wo != nil && wo.Spec.CostConstraints != nil && wo.Spec.CostConstraints.BudgetLimit != nil && kube.MemberOf(wo.Namespace, wo.Name)(pod) {
		var until *time.Time
		if b := wo.Status.Budget; b != nil {
			until = timeOf(&b.AccountedUntil)
		}
		out = append(out, PodLedger{Owner: kube.OptimizerSource(wo.Namespace, wo.Name, "budget"), AccountedUntil: until})
	}
	return out
}

func timeOf(t *metav1.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	return &t.Time
}

// Released says whether a deleted pod may go: it never ran, or every ledger charging it has
// accounted past the end of its run (cluster.RunInterval). Otherwise waiting names the first
// ledger still behind.
func Released(pod *corev1.Pod, ledgers []PodLedger) (ok bool, waiting string) {
	if !cluster.Ran(pod) {
		return true, ""
	}
	end := cluster.RunInterval(pod).End
	if end.IsZero() {
		return false, "the pod still runs"
	}
	for _, l := range ledgers {
		if l.AccountedUntil == nil || l.AccountedUntil.Before(end) {
			until := "never"
			if l.AccountedUntil != nil {
				until = l.AccountedUntil.UTC().Format(time.RFC3339)
			}
			return false, fmt.Sprintf("%s has accounted until %s, the pod ran until %s", l.Owner, until, end.UTC().Format(time.RFC3339))
		}
	}
	return true, ""
}

// Held reports whether the accounting finalizer holds a deleted pod: its ledgers owe it a last
// accounting.
func Held(o client.Object) bool {
	return o.GetDeletionTimestamp() != nil && controllerutil.ContainsFinalizer(o, kcloudv1alpha1.FinalizerAccounting)
}

// NowHeld passes the events of pods the accounting finalizer has just started holding, so the
// policies covering them account at once instead of at their next interval.
var NowHeld = predicate.Funcs{
	CreateFunc:  func(e event.CreateEvent) bool { return Held(e.Object) },
	UpdateFunc:  func(e event.UpdateEvent) bool { return !Held(e.ObjectOld) && Held(e.ObjectNew) },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// PoliciesFrom reads the cluster's CostPolicies and PowerPolicies from the cache, uncopied: the
// result only reads them (kube.Policies), for one decision.
func PoliciesFrom(ctx context.Context, c client.Reader) (*kube.Policies, error) {
	costs := &kcloudv1alpha1.CostPolicyList{}
	if err := c.List(ctx, costs, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing CostPolicies: %w", err)
	}
	powers := &kcloudv1alpha1.PowerPolicyList{}
	if err := c.List(ctx, powers, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing PowerPolicies: %w", err)
	}
	return kube.PoliciesOf(costs.Items, powers.Items), nil
}

// CoveringCostPolicies maps a pod to the CostPolicies that cover it.
func CoveringCostPolicies(c client.Reader) handler.EventHandler {
	return covering(c, func(costs []*kcloudv1alpha1.CostPolicy, _ []*kcloudv1alpha1.PowerPolicy) []client.Object {
		out := make([]client.Object, len(costs))
		for i, p := range costs {
			out[i] = p
		}
		return out
	})
}

// CoveringPowerPolicies maps a pod to the PowerPolicies that cover it.
func CoveringPowerPolicies(c client.Reader) handler.EventHandler {
	return covering(c, func(_ []*kcloudv1alpha1.CostPolicy, powers []*kcloudv1alpha1.PowerPolicy) []client.Object {
		out := make([]client.Object, len(powers))
		for i, p := range powers {
			out[i] = p
		}
		return out
	})
}

func covering(c client.Reader, pick func([]*kcloudv1alpha1.CostPolicy, []*kcloudv1alpha1.PowerPolicy) []client.Object) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		pod, ok := o.(*corev1.Pod)
		if !ok {
			return nil
		}
		policies, err := PoliciesFrom(ctx, c)
		if err != nil {
			return nil
		}
		var out []reconcile.Request
		for _, p := range pick(policies.Covering(pod)) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(p)})
		}
		return out
	})
}
