// Command kcloud-operator runs the KCloud controllers: it fills each WorkloadOptimizer's status with
// what its workload costs and draws, and accounts CostPolicy and PowerPolicy budgets.
//
// Environment: WATCH_NAMESPACE (comma-separated namespaces; empty for all), POD_NAME (this
// replica's leader-election identity), OPERATOR_NAME (lease and event reporter name, default
// kcloud-operator), CORE_SCHEDULER_URL (kcloud-scheduler base URL whose /healthz is probed).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"kcloud.io/optimizer/internal/controller/rebalancer"
	"kcloud.io/optimizer/internal/operator"
	"kcloud.io/optimizer/internal/pricesource"
	"kcloud.io/optimizer/internal/webhook/certs"
)

func main() {
	var o operator.Options
	var kubeconfig string
	fs := flag.NewFlagSet("kcloud-operator", flag.ExitOnError)
	fs.StringVar(&kubeconfig, "kubeconfig", "", "Kubeconfig file; in-cluster or $KUBECONFIG when empty.")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8443", "Address of the metrics endpoint; 0 disables it.")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", true, "Serve metrics over HTTPS, to callers the API server authenticates and authorizes (get on the /metrics non-resource URL).")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease (in-cluster: the pod's namespace).")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a standby replica waits before taking a lease its leader stopped renewing; the leader renews within two thirds of it.")
	fs.DurationVar(&o.ReoptimizeInterval, "reoptimize-interval", 0, "How often a WorkloadOptimizer is re-evaluated without events (default 5m).")
	fs.DurationVar(&o.AccountingInterval, "accounting-interval", 0, "How often policies account spend and energy (default 1m).")
	fs.DurationVar(&o.AccountingSettle, "accounting-settle", 2*time.Second, "How far accounting trails the clock, so the cache has seen every pod start and deletion in the time it charges.")
	fs.IntVar(&o.Workers, "workers", 4, "Concurrent WorkloadOptimizer reconciles.")
	fs.StringVar(&o.CatalogConfigMap, "catalog-configmap", "", "Catalog ConfigMap (namespace/name) with the user's prices, device power and carbon, watched with its price source ConfigMap <name>-price-source; a missing one means the defaults; empty: the embedded catalog only. Name the same one in the scheduler's KcloudOptimizerArgs.catalogConfigMap.")
	fs.StringVar(&o.PrometheusURL, "prometheus-url", "", "Prometheus with DCGM exporter and/or Kepler series, for measured power; the catalog model alone when empty.")
	telemetryFlags(fs, &o)
	fs.StringVar(&o.PriceSource, "price-source", operator.PriceSourceNone, "Node prices from a cost exporter, written to the ConfigMap <catalog-configmap>-price-source: none, or opencost (OpenCost's node_*_hourly_cost series in --prometheus-url).")
	fs.DurationVar(&o.PriceSourceInterval, "price-source-interval", pricesource.DefaultInterval, "How often the price source's series are read.")
	fs.DurationVar(&o.AutoscaleStep, "autoscale-interval", 0, "How often the autoscaler evaluates each WorkloadOptimizer with autoScaling, and the step of its demand history (default 1m).")
	fs.DurationVar(&o.AutoscaleSeason, "autoscale-season", 0, "Season of the autoscaler's Holt-Winters forecast, a whole number of --autoscale-interval steps (default 24h).")
	fs.StringVar(&o.AutoscaleThroughputQuery, "autoscale-throughput-query", "", "PromQL template of a throughput metric: the workload's total requests per second ({{.Namespace}}, {{.Name}} of the optimizer, {{.Target}}); default sum(rate(http_requests_total{namespace=..., pod=~\"<target>-.*\"}[2m])).")
	fs.StringVar(&o.AutoscaleLatencyQuery, "autoscale-latency-query", "", "PromQL template of a latency metric in milliseconds (same fields); default the 95th percentile of http_request_duration_seconds over the target's pods.")
	fs.DurationVar(&o.GracefulShutdown, "graceful-shutdown-timeout", 0, "How long running reconciles may take to finish on SIGTERM (default 30s).")
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", "", "Address of net/http/pprof (/debug/pprof/), for profiling; empty disables it.")
	fs.IntVar(&o.WebhookPort, "webhook-port", 9443, "Port of the admission webhooks; 0 serves none.")
	fs.StringVar(&o.WebhookCertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Directory with the webhook server's tls.crt and tls.key.")
	fs.StringVar(&o.WebhookHost, "webhook-host", "", "Address the webhook server binds (all when empty).")
	rb := &o.Rebalance
	fs.DurationVar(&rb.Interval, "rebalance-interval", rebalancer.DefaultInterval, "How often the rebalancer looks for pods to move where they cost or draw less; 0 disables it.")
	fs.Float64Var(&rb.MinSavingUSDPerHour, "rebalance-min-saving-usd-per-hour", rebalancer.DefaultMinSavingUSDPerHour, "Net saving (after the restart charge) a move must reach, USD/h; 0 leaves cost out unless --rebalance-min-saving-watts is 0 too.")
	fs.Float64Var(&rb.MinSavingWatts, "rebalance-min-saving-watts", 0, "Net power saving a move must reach, W; 0 leaves power out of the decision.")
	fs.DurationVar(&rb.RestartTime, "rebalance-restart-time", rebalancer.DefaultRestartTime, "How long an evicted pod does no work: a move is charged this much of the pod's cost and power.")
	fs.IntVar(&rb.MaxPerNode, "rebalance-max-evictions-per-node", rebalancer.DefaultMaxPerNode, "Evictions per run from one node; 0: no cap.")
	fs.IntVar(&rb.MaxPerNamespace, "rebalance-max-evictions-per-namespace", rebalancer.DefaultMaxPerNamespace, "Evictions per run in one namespace; 0: no cap.")
	fs.IntVar(&rb.MaxTotal, "rebalance-max-evictions-total", rebalancer.DefaultMaxTotal, "Evictions per run in all; 0: no cap.")
	fs.BoolVar(&rb.DryRun, "rebalance-dry-run", false, "Only report the moves the rebalancer would make (events, logs, status, metrics); evict nothing.")
	fs.DurationVar(&rb.ReservationTTL, "rebalance-reservation-ttl", rebalancer.DefaultReservationTTL, "How long room stays reserved on a destination node for an evicted pod's replacement.")
	var certMode, namespace, service, secret, extraIPs string
	fs.StringVar(&certMode, "webhook-cert-mode", "self", "self: the operator keeps a CA and serving certificate in a Secret, rotates them and injects the caBundle; external: cert-manager (or anything) provides the files in --webhook-cert-dir.")
	fs.StringVar(&namespace, "operator-namespace", inClusterNamespace(), "Namespace of the operator: where the certificate Secret lives.")
	fs.StringVar(&service, "webhook-service-name", "kcloud-webhook-service", "Service the apiserver calls the webhooks through (the serving certificate's names).")
	fs.StringVar(&secret, "webhook-secret-name", "kcloud-webhook-certs", "Secret holding the self-managed CA and serving certificate.")
	var skipNamespaces string
	fs.StringVar(&skipNamespaces, "pod-webhook-skip-namespaces", "cert-manager,gpu-operator,nvidia-gpu-operator,monitoring,kepler", "Comma-separated namespaces, besides kube-system and the operator's, whose pods the pod webhooks skip, as the webhook configurations' namespaceSelector names them (the chart sets both from webhook.skipNamespaces). The budget guard skips them too.")
	fs.StringVar(&extraIPs, "webhook-extra-ips", "", "Comma-separated IPs the serving certificate also names (local clusters calling a URL on loopback).")
	zo := zap.Options{Development: false, TimeEncoder: zapcore.ISO8601TimeEncoder}
	zo.BindFlags(fs)
	_ = fs.Parse(os.Args[1:])
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zo)))
	log := ctrl.Log.WithName("setup")
	if soft := operator.SetSoftMemoryLimit("/sys/fs/cgroup"); soft > 0 {
		log.Info("Soft memory limit set from the container's memory limit", "bytes", soft, "share", operator.SoftMemoryShare)
	}

	if err := o.FromEnv(os.Getenv); err != nil {
		fail(err)
	}
	o.PodWebhookSkipNamespaces = skipped(namespace, skipNamespaces)
	switch certMode {
	case "self":
		co := &certs.Options{Namespace: namespace, SecretName: secret, ServiceName: service}
		for _, ip := range strings.Split(extraIPs, ",") {
			if ip = strings.TrimSpace(ip); ip == "" {
				continue
			}
			parsed := net.ParseIP(ip)
			if parsed == nil {
				fail(fmt.Errorf("--webhook-extra-ips: %q is not an IP address", ip))
			}
			co.ExtraIPs = append(co.ExtraIPs, parsed)
		}
		o.WebhookCerts = co
	case "external":
	default:
		fail(fmt.Errorf("--webhook-cert-mode %q: want self or external", certMode))
	}
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		fail(fmt.Errorf("finding a kubeconfig: %w", err))
	}
	mgr, err := operator.New(cfg, o)
	if err != nil {
		fail(err)
	}
	log.Info("Starting", "watchNamespaces", o.WatchNamespaces, "operatorName", o.OperatorName, "podName", o.PodName,
		"coreSchedulerURL", o.CoreSchedulerURL, "prometheusURL", o.PrometheusURL, "catalogConfigMap", o.CatalogConfigMap, "priceSource", o.PriceSource,
		"rebalanceInterval", o.Rebalance.Interval, "rebalanceDryRun", o.Rebalance.DryRun)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		fail(err)
	}
}

// telemetryFlags are the flags of the Prometheus client and of measured power, beside --prometheus-url.
func telemetryFlags(fs *flag.FlagSet, o *operator.Options) {
	fs.StringVar(&o.PrometheusHTTP.BearerTokenFile, "prometheus-bearer-token-file", "", "File with a bearer token sent to --prometheus-url (e.g. the pod's service-account token for an auth proxy); read again whenever it changes.")
	fs.StringVar(&o.PrometheusHTTP.CAFile, "prometheus-ca-file", "", "PEM bundle of the CAs that sign --prometheus-url's certificate, instead of the system's; read again whenever it changes.")
	fs.StringVar(&o.PrometheusHTTP.CertFile, "prometheus-cert-file", "", "PEM client certificate for a Prometheus that requires mutual TLS (with --prometheus-key-file); read again whenever it changes.")
	fs.StringVar(&o.PrometheusHTTP.KeyFile, "prometheus-key-file", "", "PEM key of --prometheus-cert-file.")
	fs.BoolVar(&o.PrometheusHTTP.InsecureSkipVerify, "prometheus-insecure-skip-verify", false, "Accept any certificate from --prometheus-url (tests only: the bearer token goes to whoever answers).")
	fs.StringVar(&o.KeplerVersion, "kepler-version", "0.10", "Kepler whose series are read: 0.10 (0.10 and later: kepler_pod_cpu_joules_total's package and dram zones, kepler_pod_gpu_joules_total) or 0.9 (kepler_container_joules_total).")
	fs.DurationVar(&o.TelemetryStaleAfter, "telemetry-stale-after", 3*time.Minute, "How long a pod's last power reading is used after its exporter stops reporting it; then the catalog model replaces it and the optimizer's TelemetryFresh condition turns False.")
}

// skipped is what the pod webhooks skip: kube-system, the operator's namespace and a
// comma-separated list.
func skipped(operatorNamespace, list string) []string {
	out := []string{metav1.NamespaceSystem, operatorNamespace}
	for _, ns := range strings.Split(list, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			out = append(out, ns)
		}
	}
	return out
}

// inClusterNamespace is the pod's namespace when running in a cluster, else the chart's default.
func inClusterNamespace() string {
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b))
	}
	return "kcloud-operator-system"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kcloud-operator:", err)
	os.Exit(1)
}
