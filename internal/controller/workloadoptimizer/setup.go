package workloadoptimizer

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	ctrlevent "sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
)

// SetupIndexes registers the pod index the reconciler lists by.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, IndexOptimizer, IndexPodByOptimizer)
}

// SetupWithManager watches WorkloadOptimizers and the pods that make up their workloads.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("workloadoptimizer").
		For(&kcloudv1alpha1.WorkloadOptimizer{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{},
			predicate.Funcs{UpdateFunc: func(e ctrlevent.UpdateEvent) bool { return !e.ObjectNew.GetDeletionTimestamp().IsZero() }}))).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.optimizersOfPod), builder.WithPredicates(podChanged)).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, workers)}).
		Complete(r)
}

// podChanged passes pod updates that change what the workload costs or which workload it is in.
var podChanged = predicate.Funcs{
	UpdateFunc: func(e ctrlevent.UpdateEvent) bool {
		o, n := e.ObjectOld.(*corev1.Pod), e.ObjectNew.(*corev1.Pod)
		return o.Spec.NodeName != n.Spec.NodeName || o.Status.Phase != n.Status.Phase ||
			!labels.Equals(o.Labels, n.Labels) || kube.DeviceIndex(o) != kube.DeviceIndex(n) ||
			o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
	},
}

// optimizersOfPod maps a pod to the optimizer its link label names, or, for an unlinked pod, to
// the optimizers of its namespace that find pods by selector or target.
func (r *Reconciler) optimizersOfPod(ctx context.Context, o client.Object) []reconcile.Request {
	if name := o.GetLabels()[kube.LabelOptimizer]; name != "" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
	}
	list := &kcloudv1alpha1.WorkloadOptimizerList{}
	if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	out := sets.New[reconcile.Request]()
	for i := range list.Items {
		wo := &list.Items[i]
		switch {
		case wo.Spec.TargetRef != nil:
			out.Insert(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(wo)})
		case wo.Spec.Selector != nil:
			if sel, err := metav1.LabelSelectorAsSelector(wo.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(o.GetLabels())) {
				out.Insert(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(wo)})
			}
		}
	}
	return out.UnsortedList()
}
