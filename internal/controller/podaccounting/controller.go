// Package podaccounting keeps the accounting finalizer (kcloudv1alpha1.FinalizerAccounting) on the
// pods a ledger charges, and takes it off a deleted pod once every ledger charging it (its
// CostPolicies, PowerPolicies and optimizer budget) has accounted the pod's run to its end. The
// ledgers themselves are the policy and optimizer controllers'; this one only decides when a pod
// may go, so a deletion between two accountings, or while the operator is down, loses nothing.
package podaccounting

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	ctrlevent "sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/accounting"
	"kcloud.io/optimizer/pkg/kube"
)

// IndexHeld indexes the deleted pods the accounting finalizer holds, so a ledger's new status finds
// the pods waiting on it without walking every pod.
const IndexHeld = "kcloud.io/accounting-held"

// IndexCarrying indexes every pod that carries the accounting finalizer, so a ledger that goes away
// finds the pods it no longer charges.
const IndexCarrying = "kcloud.io/accounting-carrying"

// SetupIndexes registers the indexes of held pods and of pods carrying the finalizer.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, IndexHeld, func(o client.Object) []string {
		if accounting.Held(o) {
			return []string{"true"}
		}
		return nil
	}); err != nil {
		return err
	}
	return mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, IndexCarrying, func(o client.Object) []string {
		if controllerutil.ContainsFinalizer(o, kcloudv1alpha1.FinalizerAccounting) {
			return []string{"true"}
		}
		return nil
	})
}

// Reconciler adds and removes the accounting finalizer of one pod at a time.
type Reconciler struct {
	Client client.Client
	// Interval is the accounting interval: a held pod is looked at again after it even if no
	// ledger's status changed (default 1 minute).
	Interval time.Duration
}

// Reconcile puts the finalizer on a charged pod, or takes it off a deleted one that every ledger
// has accounted to its end (or that no ledger charges any more).
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pod := &corev1.Pod{}
	if err := r.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	has := controllerutil.ContainsFinalizer(pod, kcloudv1alpha1.FinalizerAccounting)
	deleting := pod.DeletionTimestamp != nil
	if deleting && !has {
		return reconcile.Result{}, nil
	}
	ledgers, err := r.ledgers(ctx, pod)
	if err != nil {
		return reconcile.Result{}, err
	}
	switch {
	case !deleting && !has && len(ledgers) > 0 && !kube.NodeOverhead(pod):
		return reconcile.Result{}, r.patch(ctx, pod, controllerutil.AddFinalizer)
	case !deleting && has && len(ledgers) == 0:
		return reconcile.Result{}, r.patch(ctx, pod, controllerutil.RemoveFinalizer) // nothing charges it any more
	case deleting:
		if ok, waiting := accounting.Released(pod, ledgers); !ok {
			log.FromContext(ctx).V(1).Info("Holding deleted pod until it is accounted", "pod", klog.KObj(pod), "waiting", waiting)
			return reconcile.Result{RequeueAfter: r.interval()}, nil
		}
		return reconcile.Result{}, r.patch(ctx, pod, controllerutil.RemoveFinalizer)
	}
	return reconcile.Result{}, nil
}

// ledgers lists the ledgers that charge the pod, from the cache.
func (r *Reconciler) ledgers(ctx context.Context, pod *corev1.Pod) ([]accounting.PodLedger, error) {
	policies, err := accounting.PoliciesFrom(ctx, r.Client)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	var wo *kcloudv1alpha1.WorkloadOptimizer
	if name := pod.Labels[kube.LabelOptimizer]; name != "" {
		wo = &kcloudv1alpha1.WorkloadOptimizer{}
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: name}, wo); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("pod %s/%s: reading WorkloadOptimizer %s: %w", pod.Namespace, pod.Name, name, err)
			}
			wo = nil
		}
	}
	return accounting.LedgersOf(pod, policies, wo), nil
}

// patch adds or removes the finalizer under optimistic locking: a pod changed meanwhile is read again.
func (r *Reconciler) patch(ctx context.Context, pod *corev1.Pod, change func(client.Object, string) bool) error {
	before := pod.DeepCopy()
	change(pod, kcloudv1alpha1.FinalizerAccounting)
	if err := r.Client.Patch(ctx, pod, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("pod %s/%s: updating finalizer %s: %w", pod.Namespace, pod.Name, kcloudv1alpha1.FinalizerAccounting, err)
	}
	return nil
}

func (r *Reconciler) interval() time.Duration {
	if r.Interval <= 0 {
		return time.Minute
	}
	return r.Interval
}

// SetupWithManager reconciles pods whose coverage or deletion changes, and the held pods again
// whenever a ledger's status moves.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	pods := func(ctx context.Context, index string, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		list := &corev1.PodList{}
		if err := r.Client.List(ctx, list, client.MatchingFields{index: "true"}, client.UnsafeDisableDeepCopy); err != nil {
			log.FromContext(ctx).Error(err, "Listing pods that carry the accounting finalizer")
			return
		}
		for i := range list.Items {
			q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	// A ledger's new status may let held pods go; a ledger that goes away may leave pods that
	// nothing charges any more, which then lose the finalizer.
	heldPods := handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(ctx context.Context, _ ctrlevent.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			pods(ctx, IndexHeld, q)
		},
		UpdateFunc: func(ctx context.Context, _ ctrlevent.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			pods(ctx, IndexHeld, q)
		},
		DeleteFunc: func(ctx context.Context, _ ctrlevent.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			pods(ctx, IndexCarrying, q)
		},
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("podaccounting").
		For(&corev1.Pod{}, builder.WithPredicates(podChanged)).
		Watches(&kcloudv1alpha1.CostPolicy{}, heldPods).
		Watches(&kcloudv1alpha1.PowerPolicy{}, heldPods).
		Watches(&kcloudv1alpha1.WorkloadOptimizer{}, heldPods).
		// Every replica, not only the leader: a pod created while the leader is down (and its
		// webhook call failed) must be held before it is deleted, and a release is safe from any
		// replica, since it reads only the ledgers' stored status.
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, workers), NeedLeaderElection: ptr.To(false)}).
		Complete(r)
}

// podChanged passes pod updates that can change whether a ledger charges the pod or whether it may
// go: its labels, its node, its phase, its deletion and its finalizers.
var podChanged = predicate.Funcs{
	UpdateFunc: func(e ctrlevent.UpdateEvent) bool {
		o, n := e.ObjectOld.(*corev1.Pod), e.ObjectNew.(*corev1.Pod)
		return o.Spec.NodeName != n.Spec.NodeName || o.Status.Phase != n.Status.Phase || o.Namespace != n.Namespace ||
			!labels.Equals(o.Labels, n.Labels) || (o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) ||
			controllerutil.ContainsFinalizer(o, kcloudv1alpha1.FinalizerAccounting) != controllerutil.ContainsFinalizer(n, kcloudv1alpha1.FinalizerAccounting)
	},
}
