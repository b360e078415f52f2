package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"kcloud.io/optimizer/internal/pricesource"
	"kcloud.io/optimizer/internal/telemetry"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/catalog/watch"
	"kcloud.io/optimizer/pkg/kube"
	kcloudmodel "kcloud.io/optimizer/pkg/model"
)

// openCostExporter serves OpenCost-like node cost gauges, as one OpenCost replica's /metrics would.
type openCostExporter struct {
	reg                         *prometheus.Registry
	total, gpu, cpu, ram, count *prometheus.GaugeVec
}

// OpenCost's node labels (the package comment of internal/pricesource says where they come from).
var openCostLabels = []string{"node", "instance_type", "region", "provider_id"}

func newOpenCostExporter() *openCostExporter {
	g := func(name string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: name + " (test exporter)."}, openCostLabels)
	}
	e := &openCostExporter{reg: prometheus.NewRegistry(),
		total: g(pricesource.MetricNodeTotalHourlyCost), gpu: g(pricesource.MetricNodeGPUHourlyCost),
		cpu: g(pricesource.MetricNodeCPUHourlyCost), ram: g(pricesource.MetricNodeRAMHourlyCost), count: g(pricesource.MetricNodeGPUCount)}
	e.reg.MustRegister(e.total, e.gpu, e.cpu, e.ram, e.count)
	return e
}

func nodeLabels(node, instanceType string) prometheus.Labels {
	return prometheus.Labels{"node": node, "instance_type": instanceType, "region": "us-east-1", "provider_id": "aws:///us-east-1a/i-" + node}
}

// The cluster of this test. Expected prices, by hand:
//
//	gpu-a  node_total_hourly_cost 32.7726 from replica A, 30.0 from replica B: the larger, 32.7726
//	gpu-b  no total; 1.2 × 4 GPUs (allocatable) + 0.03 × 48 vCPUs + 0.004 × 384 GiB = 4.8 + 1.44 + 1.536 = 7.776
//	cpu-c  no total; 0 × 0 GPUs (node_gpu_count) + 0.0316 × 8 + 0.0042 × 32 = 0.2528 + 0.1344 = 0.3872
//	ghost  components but no Node object: no row
//	idle   a Node without series: no row
const wantPrices = `node,usd_per_hour,source
cpu-c,0.3872,opencost:components
gpu-a,32.7726,opencost:total
gpu-b,7.776,opencost:components
`

func TestOpenCostPriceSource(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test-integration`, which builds etcd and kube-apiserver from the module graph")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	// Two OpenCost replicas, the second one lagging behind on gpu-a.
	replicaA, replicaB := newOpenCostExporter(), newOpenCostExporter()
	replicaA.total.With(nodeLabels("gpu-a", "p4d.24xlarge")).Set(32.7726)
	replicaB.total.With(nodeLabels("gpu-a", "p4d.24xlarge")).Set(30.0)
	replicaA.gpu.With(nodeLabels("gpu-b", "g5.12xlarge")).Set(1.2)
	replicaA.cpu.With(nodeLabels("gpu-b", "g5.12xlarge")).Set(0.03)
	replicaA.ram.With(nodeLabels("gpu-b", "g5.12xlarge")).Set(0.004)
	replicaA.gpu.With(nodeLabels("cpu-c", "m5.2xlarge")).Set(0)
	replicaA.cpu.With(nodeLabels("cpu-c", "m5.2xlarge")).Set(0.0316)
	replicaA.ram.With(nodeLabels("cpu-c", "m5.2xlarge")).Set(0.0042)
	replicaA.count.With(nodeLabels("cpu-c", "m5.2xlarge")).Set(0)
	replicaA.cpu.With(nodeLabels("ghost", "m5.large")).Set(0.05)
	replicaA.ram.With(nodeLabels("ghost", "m5.large")).Set(0.01)
	mux := http.NewServeMux()
	mux.Handle("/metrics/opencost-a", promhttp.HandlerFor(replicaA.reg, promhttp.HandlerOpts{}))
	mux.Handle("/metrics/opencost-b", promhttp.HandlerFor(replicaB.reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	target := strings.TrimPrefix(srv.URL, "http://")
	// honor_labels: true, as OpenCost's documented scrape job has it.
	prom := startPrometheusScraping(t, fmt.Sprintf(`  - job_name: opencost
    honor_labels: true
    metrics_path: /metrics/opencost-a
    static_configs:
      - targets: [%[1]q]
  - job_name: opencost-replica
    honor_labels: true
    metrics_path: /metrics/opencost-b
    static_configs:
      - targets: [%[1]q]
`, target))
	raw := rawAPI(t, prom.URL)
	waitForSeries(t, ctx, raw, `count(node_total_hourly_cost) + count(node_ram_hourly_cost)`, 2+3)

	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := clientgoscheme.Scheme
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	catalogCM, err := watch.ParseRef("kcloud-system/kcloud-catalog")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: catalogCM.Namespace}}); err != nil {
		t.Fatal(err)
	}
	createNode(t, ctx, c, "gpu-b", "4", "48", "384Gi")
	createNode(t, ctx, c, "cpu-c", "", "8", "32Gi")
	createNode(t, ctx, c, "idle", "", "4", "16Gi")

	src, err := telemetry.NewPrometheus(telemetry.PrometheusConfig{URL: prom.URL, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now())
	const interval = 5 * time.Minute
	poller := &pricesource.Poller{Prometheus: src, Nodes: mgr.GetClient(), ConfigMaps: mgr.GetAPIReader(), Writer: mgr.GetClient(),
		Target: catalogCM.PriceSource().Key(), Interval: interval, Clock: clk}
	if err := mgr.Add(poller); err != nil {
		t.Fatal(err)
	}
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-mgrDone; err != nil {
			t.Logf("manager: %v", err)
		}
	})

	key := client.ObjectKey{Namespace: "kcloud-system", Name: "kcloud-catalog-price-source"}
	var cm corev1.ConfigMap
	eventually(t, "the first poll writes the ConfigMap", func() error {
		if err := c.Get(ctx, key, &cm); err != nil {
			return err
		}
		if got := cm.Data[pricesource.DataKey]; got != wantPrices {
			return fmt.Errorf("%s:\n%s\nwant:\n%s", pricesource.DataKey, got, wantPrices)
		}
		return nil
	})
	if cm.Labels[pricesource.ManagedByLabel] != pricesource.ManagedByValue {
		t.Errorf("labels %v, want %s=%s", cm.Labels, pricesource.ManagedByLabel, pricesource.ManagedByValue)
	}
	checkGauge(t, "kcloud_price_source_up", 1)
	checkGauge(t, "kcloud_price_source_nodes", 3)

	t.Run("the written prices place pods as the same prices in the catalog ConfigMap", func(t *testing.T) {
		samePricesInConfigMap(t, ctx, c, &cm)
	})

	t.Run("nothing changed: no write", func(t *testing.T) {
		res, err := poller.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Written {
			t.Error("Poll wrote unchanged prices")
		}
		var again corev1.ConfigMap
		if err := c.Get(ctx, key, &again); err != nil {
			t.Fatal(err)
		}
		if again.ResourceVersion != cm.ResourceVersion {
			t.Errorf("resourceVersion %s → %s with nothing changed", cm.ResourceVersion, again.ResourceVersion)
		}
	})

	t.Run("series change: the next interval rewrites", func(t *testing.T) {
		// gpu-b's GPUs get dearer: 1.5 × 4 + 1.44 + 1.536 = 8.976. gpu-a gets a total from replica B above A's.
		replicaA.gpu.With(nodeLabels("gpu-b", "g5.12xlarge")).Set(1.5)
		replicaB.total.With(nodeLabels("gpu-a", "p4d.24xlarge")).Set(40.96)
		waitForSeries(t, ctx, raw, `max(node_gpu_hourly_cost{node="gpu-b"}) + max(node_total_hourly_cost{node="gpu-a"})`, 1.5+40.96)
		want := strings.NewReplacer("gpu-b,7.776,", "gpu-b,8.976,", "gpu-a,32.7726,", "gpu-a,40.96,").Replace(wantPrices)
		// The poller's loop waits on the fake clock; move it one interval on.
		eventually(t, "the poller waiting for its next round", func() error {
			if !clk.HasWaiters() {
				return errors.New("no timer yet")
			}
			return nil
		})
		clk.Step(interval)
		var updated corev1.ConfigMap
		eventually(t, "the rewritten ConfigMap", func() error {
			if err := c.Get(ctx, key, &updated); err != nil {
				return err
			}
			if got := updated.Data[pricesource.DataKey]; got != want {
				return fmt.Errorf("%s:\n%s\nwant:\n%s", pricesource.DataKey, got, want)
			}
			return nil
		})
		if updated.ResourceVersion == cm.ResourceVersion {
			t.Errorf("content changed but resourceVersion stayed %s", cm.ResourceVersion)
		}
		cm = updated
	})

	t.Run("Prometheus down: the last prices stay", func(t *testing.T) {
		prom.stop()
		_, err := poller.Poll(ctx)
		if err == nil {
			t.Fatal("Poll against a stopped Prometheus: no error")
		}
		for _, s := range []string{prom.URL, pricesource.MetricNodeTotalHourlyCost, "connection refused"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
		var kept corev1.ConfigMap
		if err := c.Get(ctx, key, &kept); err != nil {
			t.Fatal(err)
		}
		if kept.ResourceVersion != cm.ResourceVersion || kept.Data[pricesource.DataKey] != cm.Data[pricesource.DataKey] {
			t.Errorf("ConfigMap changed while Prometheus was down: resourceVersion %s → %s, data %q",
				cm.ResourceVersion, kept.ResourceVersion, kept.Data[pricesource.DataKey])
		}
		checkGauge(t, "kcloud_price_source_up", 0)
		checkGauge(t, "kcloud_price_source_nodes", 3)
	})
}

// createNode makes a Node with the given allocatable GPUs (nvidia.com/gpu; none when empty), CPUs and
// memory.
func createNode(t *testing.T, ctx context.Context, c client.Client, name, gpus, cpus, memory string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(ctx, n); err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpus), corev1.ResourceMemory: resource.MustParse(memory)}
	if gpus != "" {
		alloc["nvidia.com/gpu"] = resource.MustParse(gpus)
	}
	n.Status.Capacity, n.Status.Allocatable = alloc, alloc
	if err := c.Status().Update(ctx, n); err != nil {
		t.Fatalf("setting node %s's allocatable: %v", name, err)
	}
}

// waitForSeries waits until Prometheus answers promQL with want (it scrapes once a second).
func waitForSeries(t *testing.T, ctx context.Context, raw promv1.API, promQL string, want float64) {
	t.Helper()
	eventually(t, promQL, func() error {
		v, _, err := raw.Query(ctx, promQL, time.Time{})
		if err != nil {
			return err
		}
		vec, ok := v.(model.Vector)
		if !ok || len(vec) != 1 || !near(float64(vec[0].Value), want) {
			return fmt.Errorf("%s = %v, want %v", promQL, v, want)
		}
		return nil
	})
}

// checkGauge compares one of the price source's gauges (source="opencost") with want.
func checkGauge(t *testing.T, name string, want float64) {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "source" && l.GetValue() == "opencost" {
					if got := m.GetGauge().GetValue(); got != want {
						t.Errorf("%s{source=opencost} = %v, want %v", name, got, want)
					}
					return
				}
			}
		}
	}
	t.Errorf("%s{source=opencost} is not registered", name)
}

// samePricesInConfigMap checks that the price source ConfigMap the poller wrote, read by the
// catalog layer both binaries use, prices the nodes as the same figures written by the user in the
// catalog ConfigMap's prices.csv do, and so sends a one-GPU pod to the same node.
func samePricesInConfigMap(t *testing.T, ctx context.Context, c client.Client, written *corev1.ConfigMap) {
	t.Helper()
	fromOpenCost := catalog.NewStore(catalog.Default())
	if _, err := fromOpenCost.UpdatePriceSource(written); err != nil {
		t.Fatal(err)
	}
	// The same figures, by instance type (the nodes carry OpenCost's instance types as labels).
	instanceTypes := map[string]string{"gpu-a": "p4d.24xlarge", "gpu-b": "g5.12xlarge", "cpu-c": "m5.2xlarge"}
	fromUser := catalog.NewStore(catalog.Default())
	if _, err := fromUser.Update(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kcloud-system", Name: "kcloud-catalog"},
		Data: map[string]string{catalog.ConfigMapKeyPrices: "instance_type,capacity_type,region,usd_per_hour\n" +
			"p4d.24xlarge,on-demand,,32.7726\ng5.12xlarge,on-demand,,7.776\nm5.2xlarge,on-demand,,0.3872\n"}}); err != nil {
		t.Fatal(err)
	}
	catOC, _ := fromOpenCost.Current()
	catUser, _ := fromUser.Current()
	want := map[string]float64{"gpu-a": 32.7726, "gpu-b": 7.776, "cpu-c": 0.3872} // the poller's rows above
	pod := kcloudmodel.Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: kcloudmodel.MilliPerGPU}
	best := func(cat *catalog.Catalog) (string, map[string]float64) {
		prices := map[string]float64{}
		var names []string
		var cands []kcloudmodel.Candidate
		for name, it := range instanceTypes {
			n := &corev1.Node{}
			if err := c.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
				// gpu-a has OpenCost series but no Node here: priced by its total alone. A p4d.24xlarge.
				n = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
				n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("96"),
					corev1.ResourceMemory: resource.MustParse("1152Gi"), "nvidia.com/gpu": resource.MustParse("8")}
			}
			n.Labels = map[string]string{corev1.LabelInstanceTypeStable: it}
			facts, econ, err := kube.NodeEconomics(cat, n)
			if err != nil {
				t.Fatal(err)
			}
			if econ.Unpriced != "" {
				t.Fatalf("node %s unpriced: %s", name, econ.Unpriced)
			}
			prices[name] = econ.PricePerHour
			node := kube.NodeCapacity(n, facts)
			if !kcloudmodel.Fits(&pod, &node) {
				continue
			}
			names = append(names, name)
			cands = append(cands, kcloudmodel.NewCandidate(&pod, &node, kcloudmodel.Allocation{Device: -1}, 0, &econ))
		}
		scores := kcloudmodel.CombinedScores(cands, kcloudmodel.Preferences{}, kcloudmodel.DefaultWeights, nil)
		top := -1
		for i := range scores {
			if top < 0 || scores[i] > scores[top] || (scores[i] == scores[top] && names[i] < names[top]) {
				top = i
			}
		}
		return names[top], prices
	}
	nodeOC, pricesOC := best(catOC)
	nodeUser, pricesUser := best(catUser)
	for name, w := range want {
		if !near(pricesOC[name], w) || !near(pricesUser[name], w) {
			t.Errorf("node %s: %.4f USD/h from the price source, %.4f from prices.csv; want %.4f", name, pricesOC[name], pricesUser[name], w)
		}
	}
	if nodeOC != nodeUser || nodeOC != "gpu-b" {
		t.Errorf("a one-GPU pod goes to %s with OpenCost's prices and to %s with the same prices in the ConfigMap; want gpu-b (7.776 USD/h to wake, against 32.7726)", nodeOC, nodeUser)
	}
}
