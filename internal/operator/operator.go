// Package operator assembles the kcloud-operator: a controller-runtime manager running the
// WorkloadOptimizer, CostPolicy and PowerPolicy controllers and the autoscaler over one shared view
// of the cluster (internal/cluster), the rebalancer, the admission webhooks, leader election,
// probes, authenticated metrics and graceful shutdown, all over one catalog and one clock.
package operator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/accounting"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/internal/controller/autoscaler"
	"kcloud.io/optimizer/internal/controller/budgetguard"
	"kcloud.io/optimizer/internal/controller/costpolicy"
	"kcloud.io/optimizer/internal/controller/nodeeconomics"
	"kcloud.io/optimizer/internal/controller/podaccounting"
	"kcloud.io/optimizer/internal/controller/powerpolicy"
	"kcloud.io/optimizer/internal/controller/rebalancer"
	"kcloud.io/optimizer/internal/controller/workloadoptimizer"
	"kcloud.io/optimizer/internal/metrics"
	"kcloud.io/optimizer/internal/pricesource"
	"kcloud.io/optimizer/internal/telemetry"
	"kcloud.io/optimizer/internal/webhook/certs"
	webhookv1alpha1 "kcloud.io/optimizer/internal/webhook/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/catalog/watch"
	"kcloud.io/optimizer/pkg/kube"
)

// Options configure the operator. Environment variables fill the four the product description
// names (see FromEnv); flags fill the rest.
type Options struct {
	// WatchNamespaces limits WorkloadOptimizers and pods to these namespaces (WATCH_NAMESPACE,
	// comma-separated); empty watches every namespace. Nodes and the cluster-scoped policies are
	// always watched; policies then see only the pods of the watched namespaces.
	WatchNamespaces []string
	// PodName identifies this replica in leader election and events (POD_NAME); the host name
	// with a random suffix when empty.
	PodName string
	// OperatorName names the leader-election lease (<name>.kcloud.io) and the events' reporting
	// controller (OPERATOR_NAME, default kcloud-operator), so two installations can run side by side.
	OperatorName string
	// CoreSchedulerURL is the kcloud-scheduler's base URL (CORE_SCHEDULER_URL); when set, its
	// /healthz is probed every 30 seconds into kcloud_core_scheduler_up and a log line on change.
	CoreSchedulerURL string

	MetricsAddr   string // ":8443"; "0" disables
	MetricsSecure bool   // HTTPS with Kubernetes authentication and authorization
	ProbeAddr     string // ":8081"
	LeaderElect   bool
	// LeaseDuration is the leader-election lease (controller-runtime's 15s when zero); the leader
	// renews within two thirds of it and standbys retry every tenth of it.
	LeaseDuration           time.Duration
	LeaderElectionNamespace string
	// PodWebhookSkipNamespaces are the namespaces whose pods the pod webhooks skip (their
	// configurations' namespaceSelector); the budget guard skips them too (default: kube-system and
	// LeaderElectionNamespace).
	PodWebhookSkipNamespaces []string
	ReoptimizeInterval       time.Duration // WorkloadOptimizers without events (default 5m)
	AccountingInterval       time.Duration // policies' spend and energy (default 1m)
	// AccountingSettle is how far the ledgers trail the clock, so that the cache has seen every pod
	// start and deletion within the time they charge (the flag's default is 2s; zero: none).
	AccountingSettle time.Duration
	Workers          int    // concurrent WorkloadOptimizer reconciles
	PrometheusURL    string // telemetry; the catalog model alone when empty
	// PrometheusHTTP is the bearer token and TLS of every query to PrometheusURL (telemetry, the
	// autoscaler, the price source); KeplerVersion the Kepler whose series are read (telemetry.Kepler010,
	// the default, or telemetry.Kepler09); TelemetryStaleAfter how old a pod's power reading may be
	// before the catalog model replaces it and TelemetryFresh turns False (default
	// cluster.DefaultTelemetryStaleAfter).
	PrometheusHTTP      telemetry.HTTPConfig
	KeplerVersion       string
	TelemetryStaleAfter time.Duration
	// PriceSource is where node prices come from besides the catalog (--price-source): "" or "none",
	// or "opencost" (OpenCost's node cost series in the Prometheus at PrometheusURL), polled every
	// PriceSourceInterval (default pricesource.DefaultInterval).
	PriceSource         string
	PriceSourceInterval time.Duration
	// Telemetry, when set, is used instead of a Prometheus at PrometheusURL.
	Telemetry        telemetry.Source
	GracefulShutdown time.Duration
	// Clock is every controller's, the rebalancer's and the fleets' clock (default: the real one).
	Clock clock.Clock
	// Catalog prices and powers nodes for every controller, the rebalancer and the webhooks
	// (default: catalog.Default()). With CatalogConfigMap it is the base under the user's prices.
	Catalog *catalog.Catalog
	// CatalogConfigMap names the catalog ConfigMap (--catalog-configmap namespace/name; empty: the
	// embedded catalog only), watched with its price source ConfigMap <name>-price-source: a change
	// applies without a restart, a bad one is refused with a Warning event on it. The scheduler's
	// KcloudOptimizerArgs.catalogConfigMap must name the same one.
	CatalogConfigMap string
	PprofAddr        string // net/http/pprof (/debug/pprof/); empty disables it
	// WebhookPort serves the admission webhooks (0: no webhooks); WebhookHost is the address to bind
	// (all when empty); WebhookCertDir holds tls.crt and tls.key.
	WebhookPort    int
	WebhookHost    string
	WebhookCertDir string
	// WebhookCerts, when set, has the operator manage the webhook certificates itself: a CA and a
	// serving certificate in a Secret, written to WebhookCertDir, rotated before expiry, with the
	// caBundle of the webhook configurations kept current. Nil when cert-manager (or anything else)
	// provides the files.
	WebhookCerts *certs.Options
	// AutoscaleStep is the autoscaler's evaluation interval and history step (default 1m);
	// AutoscaleSeason its forecaster's season (default 24h). AutoscaleThroughputQuery and
	// AutoscaleLatencyQuery are PromQL templates of those metrics (defaults in package autoscaler).
	AutoscaleStep            time.Duration
	AutoscaleSeason          time.Duration
	AutoscaleThroughputQuery string
	AutoscaleLatencyQuery    string
	// SkipNameValidation lets tests start several managers in one process.
	SkipNameValidation bool
	// Rebalance configures the rebalancer (--rebalance-* flags); a zero Interval disables it.
	Rebalance rebalancer.Options
}

// Price sources (--price-source).
const (
	PriceSourceNone     = "none"
	PriceSourceOpenCost = "opencost"
)

// FromEnv reads the product's environment variables into o.
func (o *Options) FromEnv(getenv func(string) string) error {
	if ns := strings.TrimSpace(getenv("WATCH_NAMESPACE")); ns != "" {
		for _, n := range strings.Split(ns, ",") {
			if n = strings.TrimSpace(n); n != "" {
				o.WatchNamespaces = append(o.WatchNamespaces, n)
			}
		}
	}
	o.PodName = getenv("POD_NAME")
	if v := getenv("OPERATOR_NAME"); v != "" {
		o.OperatorName = v
	}
	if v := getenv("CORE_SCHEDULER_URL"); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("CORE_SCHEDULER_URL %q: want an absolute http or https URL such as https://kcloud-scheduler.kcloud-system:10259", v)
		}
		o.CoreSchedulerURL = strings.TrimSuffix(v, "/")
	}
	return nil
}

func (o *Options) defaults() {
	if o.OperatorName == "" {
		o.OperatorName = "kcloud-operator"
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Catalog == nil {
		o.Catalog = catalog.Default()
	}
	if o.GracefulShutdown <= 0 {
		o.GracefulShutdown = 30 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
}

// Scheme has the kinds the operator reads.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = kcloudv1alpha1.AddToScheme(s)
	return s
}

// New builds the manager with every controller registered.
func New(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	o.defaults()
	cfg = unthrottled(cfg)
	catalogRef, err := watch.ParseRef(o.CatalogConfigMap)
	if err != nil {
		return nil, fmt.Errorf("--catalog-configmap: %w", err)
	}
	mo, err := managerOptions(cfg, o, catalogRef)
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, mo)
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	a := &assembly{o: o, mgr: mgr, recorder: mgr.GetEventRecorder(o.OperatorName), catalog: o.Catalog, catalogRef: catalogRef}
	for _, step := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"watching the catalog ConfigMap", a.watchCatalog},
		{"connecting telemetry", a.telemetrySource},
		{"setting up the fleet", a.fleets},
		{"setting up the controllers", a.controllers},
		{"setting up the rebalancer", a.rebalancer},
		{"setting up the autoscaler", a.autoscaler},
		{"setting up the price source", a.priceSource},
		{"setting up the webhooks", a.webhooks},
		{"setting up the probes", a.probes},
	} {
		if err := step.run(context.Background()); err != nil {
			return nil, fmt.Errorf("%s: %w", step.name, err)
		}
	}
	return mgr, nil
}

// unthrottled lifts client-go's client-side rate limit from a config that sets none. A config read
// from a kubeconfig file keeps client-go's default of 5 requests per second, which stretches one
// status write per optimizer into many minutes at a few thousand optimizers. Rely on the API
// server's priority and fairness instead, as controller-runtime does for the configs it loads
// itself (in-cluster and $KUBECONFIG).
func unthrottled(cfg *rest.Config) *rest.Config {
	if cfg.QPS != 0 || cfg.RateLimiter != nil {
		return cfg
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = -1
	return cfg
}

// managerOptions are the manager's: scheme, probes, leader election, metrics, the cache (trimmed
// pods, watched namespaces) and the webhook server.
func managerOptions(cfg *rest.Config, o Options, ref watch.Ref) (ctrl.Options, error) {
	mo := ctrl.Options{
		PprofBindAddress:              o.PprofAddr,
		Scheme:                        Scheme(),
		HealthProbeBindAddress:        o.ProbeAddr,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              o.OperatorName + ".kcloud.io",
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 leaseOr(o.LeaseDuration, 1, 1),
		RenewDeadline:                 leaseOr(o.LeaseDuration, 2, 3),
		RetryPeriod:                   leaseOr(o.LeaseDuration, 1, 10),
		GracefulShutdownTimeout:       &o.GracefulShutdown,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr, SecureServing: o.MetricsSecure},
		Cache: cache.Options{
			// Pods are the bulk of the cache; what the operator never reads goes before it is stored.
			ByObject: map[client.Object]cache.ByObject{&corev1.Pod{}: {Transform: trimPod}},
			DefaultTransform: func(obj any) (any, error) {
				if o, ok := obj.(client.Object); ok {
					o.SetManagedFields(nil)
				}
				return obj, nil
			},
		},
	}
	if !ref.IsZero() {
		// The catalog controller is the operator's only reader of ConfigMaps, and a cluster has
		// many: only the catalog's namespace is cached.
		mo.Cache.ByObject[&corev1.ConfigMap{}] = cache.ByObject{Namespaces: map[string]cache.Config{ref.Namespace: {}}}
	}
	if o.WebhookPort > 0 {
		mo.WebhookServer = webhook.NewServer(webhook.Options{Host: o.WebhookHost, Port: o.WebhookPort, CertDir: o.WebhookCertDir})
	}
	if o.SkipNameValidation {
		mo.Controller.SkipNameValidation = &o.SkipNameValidation
	}
	if o.MetricsSecure {
		mo.Metrics.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	if len(o.WatchNamespaces) > 0 {
		mo.Cache.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.WatchNamespaces {
			mo.Cache.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	if o.LeaderElect && o.PodName != "" {
		lock, err := leaseLock(cfg, o)
		if err != nil {
			return mo, err
		}
		mo.LeaderElectionResourceLockInterface = lock
	}
	return mo, nil
}

// assembly is what New's setup steps share: the options (defaulted: one catalog, one clock), the
// manager, and what earlier steps made for later ones.
type assembly struct {
	o        Options
	mgr      ctrl.Manager
	recorder events.EventRecorder
	source   telemetry.Source // nil: the catalog power model only
	// pods and nodes are the informers' stores (nil: the fleets list through the cache's client);
	// fleet is the controllers' shared view of the cluster.
	pods, nodes cluster.Store
	fleet       *cluster.Fleet
	// budgets judges deny-mode budgets at an instant, for the pod webhook and the budget guard.
	budgets *accounting.Budgets
	// catalog is what every part prices with: o.Catalog, or the watched store over it.
	catalog catalog.Provider
	// catalogRef is o.CatalogConfigMap, parsed; zero when none is named.
	catalogRef watch.Ref
}

// watchCatalog makes the watched catalog when a catalog ConfigMap is named: read once now, then
// kept in step by the catalog controller.
func (a *assembly) watchCatalog(ctx context.Context) error {
	ref := a.catalogRef
	if ref.IsZero() {
		return nil
	}
	store := catalog.NewStore(a.o.Catalog)
	a.catalog = store
	if err := watch.Register(crmetrics.Registry); err != nil {
		return err
	}
	start, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := startingCatalog(start, a.mgr.GetAPIReader(), ref, store); err != nil {
		// Not fatal: the controller retries once the manager runs; until then, the defaults.
		ctrl.Log.WithName("setup").Info("Reading the catalog ConfigMaps; pricing with the defaults until the catalog controller can", "configMap", ref.String(), "error", err.Error())
	}
	return setupCatalog(a.mgr, ref, store, a.recorder)
}

// telemetrySource is Options.Telemetry, else a Prometheus at PrometheusURL, else none.
func (a *assembly) telemetrySource(context.Context) error {
	a.source = a.o.Telemetry
	if a.source == nil && a.o.PrometheusURL != "" {
		p, err := telemetry.NewPrometheus(telemetry.PrometheusConfig{URL: a.o.PrometheusURL, HTTP: a.o.PrometheusHTTP,
			Kepler: a.o.KeplerVersion, Clock: a.o.Clock})
		if err != nil {
			return fmt.Errorf("--prometheus-url: %w", err)
		}
		a.source = p
	}
	return nil
}

// fleets makes the controllers' shared fleet over the informers' stores.
func (a *assembly) fleets(ctx context.Context) error {
	var err error
	if a.pods, err = informerStore(ctx, a.mgr.GetCache(), &corev1.Pod{}); err != nil {
		return err
	}
	if a.nodes, err = informerStore(ctx, a.mgr.GetCache(), &corev1.Node{}); err != nil {
		return err
	}
	a.fleet = cluster.New(a.mgr.GetClient(), cluster.Options{Catalog: a.catalog, Telemetry: a.source, Clock: a.o.Clock,
		Pods: a.pods, Nodes: a.nodes, TelemetryStaleAfter: a.o.TelemetryStaleAfter})
	a.budgets = &accounting.Budgets{Fleet: a.fleet}
	return nil
}

// controllers registers the WorkloadOptimizer, CostPolicy, PowerPolicy and node economics
// controllers.
func (a *assembly) controllers(ctx context.Context) error {
	mgr, o := a.mgr, a.o
	if err := workloadoptimizer.SetupIndexes(ctx, mgr); err != nil {
		return fmt.Errorf("indexing pods: %w", err)
	}
	wo := &workloadoptimizer.Reconciler{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Fleet: a.fleet, Recorder: a.recorder,
		Clock: o.Clock, Interval: o.ReoptimizeInterval, Settle: o.AccountingSettle}
	if ref := a.catalogRef; !ref.IsZero() {
		wo.Catalog = []types.NamespacedName{ref.Key(), ref.PriceSource().Key()}
	}
	if err := wo.SetupWithManager(mgr, o.Workers); err != nil {
		return fmt.Errorf("WorkloadOptimizer controller: %w", err)
	}
	cp := &costpolicy.Reconciler{Client: mgr.GetClient(), Fleet: a.fleet, Recorder: a.recorder, Clock: o.Clock, Interval: o.AccountingInterval, Settle: o.AccountingSettle}
	if err := cp.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("CostPolicy controller: %w", err)
	}
	pp := &powerpolicy.Reconciler{Client: mgr.GetClient(), Fleet: a.fleet, Recorder: a.recorder, Clock: o.Clock, Interval: o.AccountingInterval, Settle: o.AccountingSettle}
	if err := pp.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("PowerPolicy controller: %w", err)
	}
	if err := podaccounting.SetupIndexes(ctx, mgr); err != nil {
		return fmt.Errorf("indexing pods held for accounting: %w", err)
	}
	held := &podaccounting.Reconciler{Client: mgr.GetClient(), Interval: o.AccountingInterval}
	if err := held.SetupWithManager(mgr, o.Workers); err != nil {
		return fmt.Errorf("pod accounting controller: %w", err)
	}
	guard := &budgetguard.Reconciler{Client: mgr.GetClient(), Budgets: a.budgets, Recorder: a.recorder,
		Exempt: o.PodWebhookSkipNamespaces}
	if len(guard.Exempt) == 0 {
		guard.Exempt = []string{metav1.NamespaceSystem, o.LeaderElectionNamespace}
	}
	if err := guard.SetupWithManager(mgr, o.Workers); err != nil {
		return fmt.Errorf("budget guard: %w", err)
	}
	ne := &nodeeconomics.Reconciler{Client: mgr.GetClient(), Fleet: a.fleet, Recorder: a.recorder}
	if err := ne.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("node economics controller: %w", err)
	}
	return nil
}

// rebalancer adds the rebalancer when it has an interval, over a fleet of its own.
func (a *assembly) rebalancer(context.Context) error {
	if a.o.Rebalance.Interval <= 0 {
		return nil
	}
	mgr, o := a.mgr, a.o
	rb := &rebalancer.Rebalancer{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Catalog: a.catalog, Recorder: a.recorder,
		Clock: o.Clock, Options: o.Rebalance,
		// Its own fleet, rebuilt every run: a plan must see the pods that moved since the last.
		Fleet: cluster.New(mgr.GetClient(), cluster.Options{Catalog: a.catalog, Clock: o.Clock, SnapshotMaxAge: cluster.AlwaysRebuild,
			Pods: a.pods, Nodes: a.nodes})}
	return mgr.Add(rb)
}

// autoscaler registers the autoscaler; it queries Prometheus when the telemetry source is one.
func (a *assembly) autoscaler(context.Context) error {
	o := a.o
	as := &autoscaler.Reconciler{Client: a.mgr.GetClient(), Reader: a.mgr.GetAPIReader(), Fleet: a.fleet, Recorder: a.recorder,
		Clock: o.Clock, Step: o.AutoscaleStep, Season: o.AutoscaleSeason,
		Queries: autoscaler.Queries{Throughput: o.AutoscaleThroughputQuery, Latency: o.AutoscaleLatencyQuery}}
	if q, ok := a.source.(autoscaler.Querier); ok {
		as.Prometheus = q
	}
	return as.SetupWithManager(a.mgr)
}

// priceSource adds the OpenCost poller when --price-source=opencost; it reads through the telemetry
// source's Prometheus client (same URL, same authentication), so it needs one.
func (a *assembly) priceSource(context.Context) error {
	switch a.o.PriceSource {
	case "", PriceSourceNone:
		return nil
	case PriceSourceOpenCost:
	default:
		return fmt.Errorf("--price-source %q: want %s or %s", a.o.PriceSource, PriceSourceOpenCost, PriceSourceNone)
	}
	q, ok := a.source.(pricesource.VectorQuerier)
	if !ok {
		return fmt.Errorf("--price-source=%s reads OpenCost's series from Prometheus: set --prometheus-url", PriceSourceOpenCost)
	}
	if a.catalogRef.IsZero() {
		return fmt.Errorf("--price-source=%s writes the prices beside the catalog ConfigMap: set --catalog-configmap", PriceSourceOpenCost)
	}
	return a.mgr.Add(&pricesource.Poller{Prometheus: q, Nodes: a.mgr.GetClient(), ConfigMaps: a.mgr.GetAPIReader(),
		Writer: a.mgr.GetClient(), Target: a.catalogRef.PriceSource().Key(), Interval: a.o.PriceSourceInterval, Clock: a.o.Clock})
}

// webhooks registers the admission webhooks, with their certificates when the operator manages
// them, and the webhook server's readiness; nothing without a webhook port.
func (a *assembly) webhooks(context.Context) error {
	if a.o.WebhookPort <= 0 {
		return nil
	}
	if a.o.WebhookCerts != nil {
		if err := setupCertificates(a.mgr, a.o); err != nil {
			return err
		}
	}
	if err := webhookv1alpha1.Setup(a.mgr, webhookv1alpha1.Deps{Catalog: a.catalog, Offers: a.fleet.Offers, Cheapest: a.fleet.Cheapest,
		Spent: func(ctx context.Context, limits []kube.PodLimit) ([]string, error) {
			return a.budgets.Spent(ctx, limits, a.o.Clock.Now())
		}}); err != nil {
		return err
	}
	return a.mgr.AddReadyzCheck("webhook-server", a.mgr.GetWebhookServer().StartedChecker())
}

// probes adds liveness, readiness once the caches have synced, and the scheduler's health probe.
func (a *assembly) probes(context.Context) error {
	mgr := a.mgr
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	// Ready once the caches have synced: before that, status would be computed from half a fleet.
	if err := mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("caches not synced")
		}
		return nil
	}); err != nil {
		return err
	}
	if a.o.CoreSchedulerURL != "" {
		return mgr.Add(&schedulerProbe{url: a.o.CoreSchedulerURL + "/healthz", every: 30 * time.Second})
	}
	return nil
}

// informerStore is the informer's own store for a kind, which the fleet reads without copying; nil
// when the cache does not expose one (a cache over several namespaces), and the fleet lists instead.
func informerStore(ctx context.Context, c cache.Cache, obj client.Object) (cluster.Store, error) {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return nil, fmt.Errorf("informer for %T: %w", obj, err)
	}
	si, ok := inf.(toolscache.SharedIndexInformer)
	if !ok {
		return nil, nil
	}
	return cluster.IndexerStore{Indexer: si.GetIndexer(), Synced: si.HasSynced}, nil
}

// setupCertificates makes sure the webhook server's certificate files exist before the manager
// starts it (its certificate watcher reads them at start), then keeps them rotated.
func setupCertificates(mgr ctrl.Manager, o Options) error {
	co := *o.WebhookCerts
	co.CertDir = o.WebhookCertDir
	co.Clock = o.Clock
	co.Recorder = mgr.GetEventRecorder(o.OperatorName)
	if len(co.MutatingWebhookConfigurations) == 0 && len(co.ValidatingWebhookConfigurations) == 0 {
		co.MutatingWebhookConfigurations = []string{webhookv1alpha1.MutatingConfiguration}
		co.ValidatingWebhookConfigurations = []string{webhookv1alpha1.ValidatingConfiguration}
	}
	// Not the manager's cached client: that would cache every Secret of the cluster.
	c, err := client.NewWithWatch(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return err
	}
	rot, err := certs.New(c, co)
	if err != nil {
		return fmt.Errorf("webhook certificates: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rot.Ensure(ctx); err != nil {
		return fmt.Errorf("webhook certificates: %w", err)
	}
	if err := mgr.Add(rot); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("webhook-certs", rot.ReadyCheck)
}

// leaseLock is the leader-election lock with POD_NAME as this replica's identity.
func leaseLock(cfg *rest.Config, o Options) (resourcelock.Interface, error) {
	ns := o.LeaderElectionNamespace
	if ns == "" {
		return nil, errors.New("leader election with POD_NAME needs --leader-election-namespace (the chart sets it to the release namespace)")
	}
	cs, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return nil, err
	}
	// The identity must be unique per candidate; a pod name is, within its namespace and lifetime.
	id := o.PodName + "_" + uuid.NewString()[:8]
	return resourcelock.New(resourcelock.LeasesResourceLock, ns, o.OperatorName+".kcloud.io", cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: id})
}

// leaseOr is num/den of the lease duration, or nil (controller-runtime's default) without one.
func leaseOr(lease time.Duration, num, den int64) *time.Duration {
	if lease <= 0 {
		return nil
	}
	d := lease * time.Duration(num) / time.Duration(den)
	return &d
}

// trimPod keeps what the operator reads of a pod: metadata, placement, requests, affinity,
// tolerations, phase and times.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	pod.ManagedFields = nil
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		*c = corev1.Container{Name: c.Name, Resources: c.Resources}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		*c = corev1.Container{Name: c.Name, Resources: c.Resources, RestartPolicy: c.RestartPolicy}
	}
	pod.Spec.Volumes = nil
	pod.Status.Conditions = nil
	for i := range pod.Status.ContainerStatuses {
		cs := &pod.Status.ContainerStatuses[i]
		*cs = corev1.ContainerStatus{Name: cs.Name, State: corev1.ContainerState{Terminated: cs.State.Terminated}}
	}
	pod.Status.InitContainerStatuses = nil
	return pod, nil
}

var _ toolscache.TransformFunc = trimPod

// schedulerProbe checks the kcloud-scheduler's health endpoint.
type schedulerProbe struct {
	url   string
	every time.Duration
}

func (p *schedulerProbe) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithValues("url", p.url)
	// kube-scheduler serves /healthz anonymously over a self-signed certificate; nothing secret is
	// sent, so the certificate is not verified.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
	last := -1.0
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		up := 0.0
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				up = 1
			}
		}
		metrics.CoreSchedulerUp.Set(up)
		if up != last {
			log.Info("Core scheduler health changed", "up", up == 1)
			last = up
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// NeedLeaderElection: every replica reports the scheduler's health.
func (p *schedulerProbe) NeedLeaderElection() bool { return false }
