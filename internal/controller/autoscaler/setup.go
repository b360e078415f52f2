package autoscaler

import (
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
)

// SetupWithManager evaluates optimizers on their spec changes and then at every step (each
// evaluation asks to be requeued at the next step's start). Its own status writes do not trigger it.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := r.Queries.Parse(); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("autoscaler").
		For(&kcloudv1alpha1.WorkloadOptimizer{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}
