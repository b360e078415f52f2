package autoscaler

import (
	"context"
	"fmt"
	"slices"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
)

// The other autoscalers of a target are only read (external.go); their permissions sit here, beside
// the code that needs them, as internal/pricesource's do.
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch
// +kubebuilder:rbac:groups=keda.sh,resources=scaledobjects,verbs=get;list;watch

// SetupWithManager evaluates optimizers on their spec changes and then at every step (each
// evaluation asks to be requeued at the next step's start). Its own status writes do not trigger it.
// An HPA, or a ScaledObject when KEDA's CRD is served at startup, that appears, goes or changes its
// target re-evaluates the optimizers of that target at once, so delegation starts before the next
// step. Without KEDA at startup, ScaledObjects are read uncached at each evaluation (listScaledObjects).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := r.Queries.Parse(); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("autoscaler").
		For(&kcloudv1alpha1.WorkloadOptimizer{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, handler.EnqueueRequestsFromMapFunc(r.optimizersOf),
			builder.WithPredicates(scaleTargetChanged()))
	served, err := scaledObjectsServed(mgr.GetRESTMapper())
	if err != nil {
		return err
	}
	if served {
		so := &unstructured.Unstructured{}
		so.SetGroupVersionKind(ScaledObjectGVK)
		b = b.Watches(so, handler.EnqueueRequestsFromMapFunc(r.optimizersOf), builder.WithPredicates(scaleTargetChanged()))
		if r.ScaledObjects == nil {
			// The manager's client caches typed objects only; its cache serves unstructured ones too,
			// from the informer the watch above starts.
			r.ScaledObjects = mgr.GetCache()
		}
	}
	mgr.GetLogger().WithName("autoscaler").Info("Watching other autoscalers of the targets",
		"horizontalPodAutoscalers", true, "scaledObjects", served)
	return b.Complete(r)
}

// scaledObjectsServed tells whether the API server serves KEDA's ScaledObject; KEDA is optional, so
// a kind it does not know is false, not an error.
func scaledObjectsServed(mapper meta.RESTMapper) (bool, error) {
	_, err := mapper.RESTMapping(ScaledObjectGVK.GroupKind(), ScaledObjectGVK.Version)
	switch {
	case err == nil:
		return true, nil
	case meta.IsNoMatchError(err):
		return false, nil
	}
	return false, fmt.Errorf("looking up %s: %w", ScaledObjectGVK, err)
}

// scaleTargetChanged passes creations, deletions and the updates that change what an HPA or a
// ScaledObject scales or who owns it: their status changes every few seconds and matter not.
func scaleTargetChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		oldTarget, _ := scaleTargetOf(e.ObjectOld)
		newTarget, _ := scaleTargetOf(e.ObjectNew)
		return oldTarget != newTarget || !slices.EqualFunc(e.ObjectOld.GetOwnerReferences(), e.ObjectNew.GetOwnerReferences(),
			func(a, b metav1.OwnerReference) bool {
				return a.UID == b.UID && a.Kind == b.Kind && a.Name == b.Name && a.APIVersion == b.APIVersion
			})
	}}
}

// optimizersOf are the optimizers, in the object's namespace, that the autoscaler evaluates and whose
// target the HPA or ScaledObject scales.
func (r *Reconciler) optimizersOf(ctx context.Context, obj client.Object) []reconcile.Request {
	t, ok := scaleTargetOf(obj)
	if !ok {
		return nil
	}
	list := &kcloudv1alpha1.WorkloadOptimizerList{}
	if err := r.Client.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		// The next step's evaluation reads the autoscalers anyway; only the head start is lost.
		log.FromContext(ctx).Error(err, "Listing the WorkloadOptimizers of another autoscaler's target", "object", klog.KObj(obj))
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		wo := &list.Items[i]
		if wo.Spec.AutoScaling != nil && wo.Spec.TargetRef != nil && optimizerTarget(wo.Spec.TargetRef) == t {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(wo)})
		}
	}
	return reqs
}
