package nodeview

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/catalog/watch"
)

// schedulerCatalog is the one catalog of the kcloud-scheduler process: every profile's plugins
// price with it, whichever plugin is built first, and the KcloudOptimizer args' catalogConfigMap
// keeps it in step with the user's ConfigMaps.
var schedulerCatalog struct {
	once    sync.Once
	store   *catalog.Store
	mu      sync.Mutex
	watched watch.Ref
}

// SchedulerCatalog returns the scheduler's watched catalog: the embedded defaults until WatchCatalog
// reads a ConfigMap.
func SchedulerCatalog() *catalog.Store {
	schedulerCatalog.once.Do(func() {
		schedulerCatalog.store = catalog.NewStore(catalog.Default())
		// kube-scheduler serves the legacy registry on /metrics.
		legacyregistry.RawMustRegister(watch.Collectors()...)
	})
	return schedulerCatalog.store
}

// catalogReporter is the reporting controller of the scheduler's events on the catalog ConfigMaps.
const catalogReporter = "kcloud-scheduler"

// WatchCatalog keeps SchedulerCatalog in step with the catalog ConfigMap ref ("namespace/name";
// empty: the embedded catalog only) and its price source ConfigMap, through informers on h's
// client, recording CatalogApplied/CatalogRejected events on them. The first
// profile to name a ConfigMap starts the watch; a profile naming another one is an error, since
// the process has one catalog.
func WatchCatalog(ctx context.Context, h fwk.Handle, ref string) error {
	r, err := watch.ParseRef(ref)
	if err != nil || r.IsZero() || h == nil || h.ClientSet() == nil {
		return err
	}
	store := SchedulerCatalog()
	schedulerCatalog.mu.Lock()
	defer schedulerCatalog.mu.Unlock()
	switch w := schedulerCatalog.watched; {
	case w == r:
		return nil
	case !w.IsZero():
		return fmt.Errorf("catalogConfigMap %s: this scheduler already prices with %s; every profile must name the same ConfigMap", r, w)
	}
	klog.FromContext(ctx).Info("Watching the catalog ConfigMaps", "catalog", r.String(), "priceSource", r.PriceSource().String())
	// An event broadcaster of its own, recording at once: kube-scheduler starts the profiles'
	// broadcaster only after every plugin is built, and the verdict on a ConfigMap read while this
	// plugin is built (a bad one, at start) would be dropped.
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: h.ClientSet().EventsV1()})
	broadcaster.StartRecordingToSink(ctx.Done())
	recorder := broadcaster.NewRecorder(scheme.Scheme, catalogReporter)
	if err := watch.Informers(ctx, h.ClientSet(), r, store, recorder); err != nil {
		return err
	}
	schedulerCatalog.watched = r
	return nil
}
