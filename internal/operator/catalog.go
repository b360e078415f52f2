package operator

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/catalog/watch"
)

// catalogReconciler keeps the operator's watched catalog in step with the catalog ConfigMap and
// its price source ConfigMap: it reads the one that changed (missing: the defaults) and hands it
// to watch.Apply, which the scheduler calls too, then records the event Apply returns on it.
type catalogReconciler struct {
	client   client.Reader
	ref      watch.Ref
	store    *catalog.Store
	recorder events.EventRecorder
}

func (r *catalogReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	kind := watch.KindCatalog
	if req.Name == r.ref.PriceSource().Name {
		kind = watch.KindPriceSource
	}
	cm := &corev1.ConfigMap{}
	if err := r.client.Get(ctx, req.NamespacedName, cm); apierrors.IsNotFound(err) {
		cm = nil
	} else if err != nil {
		return reconcile.Result{}, err
	}
	e := watch.Apply(r.store, kind, cm)
	log := ctrl.LoggerFrom(ctx).WithValues("kind", kind.String())
	switch e.Type {
	case corev1.EventTypeWarning:
		log.Info("Refused a catalog ConfigMap update; the last good prices stay", "error", e.Note)
	case corev1.EventTypeNormal:
		_, gen := r.store.Current()
		log.Info("Applied the catalog ConfigMap", "generation", gen)
	}
	watch.Record(r.recorder, cm, e)
	return reconcile.Result{}, nil
}

// setupCatalog registers the catalog controller. Every replica runs it, not only the leader: the
// webhooks of each replica price with the catalog.
func setupCatalog(mgr ctrl.Manager, ref watch.Ref, store *catalog.Store, recorder events.EventRecorder) error {
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetNamespace() == ref.Namespace && (o.GetName() == ref.Name || o.GetName() == ref.PriceSource().Name)
	})
	return ctrl.NewControllerManagedBy(mgr).Named("catalog").
		For(&corev1.ConfigMap{}, builder.WithPredicates(ours)).
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false), MaxConcurrentReconciles: 1}).
		Complete(&catalogReconciler{client: mgr.GetClient(), ref: ref, store: store, recorder: recorder})
}

// startingCatalog applies the two ConfigMaps once through an uncached reader, before any
// controller prices a node: the first reconciles then see the user's prices, not the defaults.
func startingCatalog(ctx context.Context, reader client.Reader, ref watch.Ref, store *catalog.Store) error {
	for _, w := range []struct {
		kind watch.Kind
		ref  watch.Ref
	}{{watch.KindCatalog, ref}, {watch.KindPriceSource, ref.PriceSource()}} {
		cm := &corev1.ConfigMap{}
		err := reader.Get(ctx, client.ObjectKey{Namespace: w.ref.Namespace, Name: w.ref.Name}, cm)
		switch {
		case apierrors.IsNotFound(err):
			cm = nil
		case err != nil:
			return err
		}
		watch.Apply(store, w.kind, cm) // a refused one is reported by the controller's first reconcile
	}
	return nil
}
