package workloadoptimizer

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/util/workqueue"
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
	b := ctrl.NewControllerManagedBy(mgr).
		Named("workloadoptimizer").
		For(&kcloudv1alpha1.WorkloadOptimizer{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{},
			predicate.Funcs{UpdateFunc: func(e ctrlevent.UpdateEvent) bool { return !e.ObjectNew.GetDeletionTimestamp().IsZero() }}))).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.optimizersOfPod), builder.WithPredicates(podChanged))
	if len(r.Catalog) > 0 {
		catalog := sets.New(r.Catalog...)
		b = b.Watches(&corev1.ConfigMap{}, r.onPriceChange(),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return catalog.Has(client.ObjectKeyFromObject(o)) })))
	}
	return b.WithOptions(controller.Options{MaxConcurrentReconciles: max(1, workers)}).Complete(r)
}

// priceChangeDelay lets the catalog controller, which sees the same ConfigMap event, apply the new
// prices before the optimizers are evaluated again.
const priceChangeDelay = 3 * time.Second

// onPriceChange queues every WorkloadOptimizer shortly after a catalog ConfigMap changes.
func (r *Reconciler) onPriceChange() handler.TypedEventHandler[client.Object, reconcile.Request] {
	queueAll := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		list := &kcloudv1alpha1.WorkloadOptimizerList{}
		if err := r.Client.List(ctx, list); err != nil {
			return
		}
		for i := range list.Items {
			q.AddAfter(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}, priceChangeDelay)
		}
	}
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(ctx context.Context, _ ctrlevent.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			queueAll(ctx, q)
		},
		UpdateFunc: func(ctx context.Context, _ ctrlevent.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			queueAll(ctx, q)
		},
		DeleteFunc: func(ctx context.Context, _ ctrlevent.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			queueAll(ctx, q)
		},
	}
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
