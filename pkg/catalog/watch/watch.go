// Package watch keeps a catalog.Store in step with the catalog ConfigMap and its price source
// ConfigMap (the catalog's name + "-price-source"), for kcloud-scheduler and kcloud-operator alike:
// both binaries call Apply with whatever their informers saw, record the event it returns on the
// ConfigMap and read the metrics it sets. A bad ConfigMap is refused with a Warning event naming
// the key, the line and the field, and the last good prices stay.
package watch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"

	"kcloud.io/optimizer/pkg/catalog"
)

// PriceSourceSuffix names the price source ConfigMap after the catalog ConfigMap.
const PriceSourceSuffix = "-price-source"

// Event reasons on the ConfigMap.
const (
	ReasonApplied  = "CatalogApplied"
	ReasonRejected = "CatalogRejected"
	// ActionApply is the events' action.
	ActionApply = "ApplyCatalog"
)

// Ref names the catalog ConfigMap; the zero Ref means the embedded catalog only.
type Ref struct{ Namespace, Name string }

// ParseRef reads "namespace/name"; empty is the zero Ref.
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Ref{}, nil
	}
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return Ref{}, fmt.Errorf("catalog ConfigMap %q: want namespace/name, e.g. kcloud-system/kcloud-catalog", s)
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return Ref{}, fmt.Errorf("catalog ConfigMap %q: namespace: %s", s, strings.Join(errs, "; "))
	}
	// The price source ConfigMap's name is this one's plus a suffix: both must be valid names.
	if errs := validation.IsDNS1123Subdomain(name + PriceSourceSuffix); len(errs) > 0 {
		return Ref{}, fmt.Errorf("catalog ConfigMap %q: name (with %s appended): %s", s, PriceSourceSuffix, strings.Join(errs, "; "))
	}
	return Ref{Namespace: ns, Name: name}, nil
}

// IsZero reports whether no ConfigMap is named.
func (r Ref) IsZero() bool { return r.Name == "" }

func (r Ref) String() string { return r.Namespace + "/" + r.Name }

// Key is the ConfigMap's object key.
func (r Ref) Key() types.NamespacedName {
	return types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
}

// PriceSource is the price source ConfigMap beside the catalog ConfigMap.
func (r Ref) PriceSource() Ref { return Ref{Namespace: r.Namespace, Name: r.Name + PriceSourceSuffix} }

// Kind tells the two ConfigMaps apart.
type Kind int

const (
	KindCatalog Kind = iota
	KindPriceSource
)

func (k Kind) String() string {
	if k == KindPriceSource {
		return "price-source"
	}
	return "catalog"
}

// Metrics of the watched catalog. Each binary registers Collectors with its own registry.
var (
	ConfigValid = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_catalog_config_valid",
		Help: "1 when the last update of the catalog (kind=catalog) or price source (kind=price-source) ConfigMap was applied, 0 when it was refused and the last good one is in force.",
	}, []string{"kind"})
	Generation = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kcloud_catalog_generation",
		Help: "Generation of the catalog in force; it moves each time an accepted ConfigMap change applies.",
	})
)

// Collectors are the metrics to register.
func Collectors() []prometheus.Collector { return []prometheus.Collector{ConfigValid, Generation} }

// Register registers the metrics with reg; registering them again (several managers in one test
// process) is no error.
func Register(reg prometheus.Registerer) error {
	for _, c := range Collectors() {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return fmt.Errorf("registering the catalog metrics: %w", err)
			}
		}
	}
	return nil
}

// Event is the event to record on a ConfigMap after an update; Type is empty when there is none.
type Event struct{ Type, Reason, Note string }

// Apply updates the store with the ConfigMap of a kind as an informer or a cache saw it (nil: it
// does not exist), sets the metrics, and returns the event to record on it: Warning
// CatalogRejected with the error, or Normal CatalogApplied when the prices changed. A deleted
// ConfigMap returns to the defaults (catalog) or to no price source, with no event (there is no
// object to hold one).
func Apply(store *catalog.Store, kind Kind, cm *corev1.ConfigMap) Event {
	var changed bool
	var err error
	if kind == KindPriceSource {
		changed, err = store.UpdatePriceSource(cm)
	} else {
		changed, err = store.Update(cm)
	}
	_, gen := store.Current()
	Generation.Set(float64(gen))
	if err != nil {
		ConfigValid.WithLabelValues(kind.String()).Set(0)
		return Event{Type: corev1.EventTypeWarning, Reason: ReasonRejected, Note: err.Error() + "; the last good prices stay in force"}
	}
	ConfigValid.WithLabelValues(kind.String()).Set(1)
	if !changed || cm == nil {
		return Event{}
	}
	return Event{Type: corev1.EventTypeNormal, Reason: ReasonApplied, Note: fmt.Sprintf("%s ConfigMap %s/%s applied: catalog generation %d", kind, cm.Namespace, cm.Name, gen)}
}

// Record records e on the ConfigMap (nothing for an empty event or a nil recorder).
func Record(r events.EventRecorder, cm *corev1.ConfigMap, e Event) {
	if r == nil || cm == nil || e.Type == "" {
		return
	}
	r.Eventf(cm, nil, e.Type, e.Reason, ActionApply, "%s", e.Note)
}

// Informers watches the two ConfigMaps of ref with client-go informers of their own, each listing
// and watching one object by a field selector (so that no other ConfigMap is cached), applying
// every change to store and recording the events with rec. They run until ctx is done. It waits up
// to syncTimeout for the first read: a scheduler that cannot read the ConfigMaps yet (RBAC being
// applied, an API server slow to answer) starts with the defaults and takes the user's prices as
// soon as the informers get them. kcloud-scheduler uses it.
func Informers(ctx context.Context, cs kubernetes.Interface, ref Ref, store *catalog.Store, rec events.EventRecorder) error {
	if ref.IsZero() {
		return nil
	}
	log := klog.FromContext(ctx).WithValues("configMap", ref.String())
	var synced []cache.InformerSynced
	for _, w := range []struct {
		kind Kind
		ref  Ref
	}{{KindCatalog, ref}, {KindPriceSource, ref.PriceSource()}} {
		lw := cache.NewFilteredListWatchFromClient(cs.CoreV1().RESTClient(), "configmaps", w.ref.Namespace, func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", w.ref.Name).String()
		})
		inf := cache.NewSharedIndexInformer(lw, &corev1.ConfigMap{}, 10*time.Minute, cache.Indexers{})
		kind := w.kind
		apply := func(cm *corev1.ConfigMap) {
			e := Apply(store, kind, cm)
			if e.Type == corev1.EventTypeWarning {
				log.Info("Refused a catalog ConfigMap update; the last good prices stay", "kind", kind, "error", e.Note)
			} else if e.Type != "" {
				_, gen := store.Current()
				log.Info("Applied the catalog ConfigMap", "kind", kind, "generation", gen)
			}
			Record(rec, cm, e)
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { apply(obj.(*corev1.ConfigMap)) },
			UpdateFunc: func(_, obj any) { apply(obj.(*corev1.ConfigMap)) },
			DeleteFunc: func(any) { apply(nil) },
		}); err != nil {
			return fmt.Errorf("watching the %s ConfigMap %s: %w", kind, w.ref, err)
		}
		go inf.Run(ctx.Done())
		synced = append(synced, inf.HasSynced)
	}
	wait, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(wait.Done(), synced...) {
		log.Info("The catalog ConfigMaps are not read yet; pricing with the defaults until they are", "waited", syncTimeout)
	}
	return nil
}

// syncTimeout bounds how long Informers waits for the first read of the ConfigMaps.
const syncTimeout = 30 * time.Second
