// Package telemetry_test runs internal/telemetry against a real Prometheus server (Debian's `prometheus`
// package, installed by `make prometheus`) that scrapes a DCGM- and Kepler-like exporter served by the
// test itself (Kepler 0.10's per-pod series, with zones; DCGM's power samples and, for one GPU, its
// energy counter), so PromQL, label handling and rate windows are checked against the real thing.
package telemetry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"kcloud.io/optimizer/internal/telemetry"
)

const (
	scrapeInterval = time.Second
	keplerWindow   = 20 * time.Second
	maxAge         = 30 * time.Second
	// Generous: the machine is small and shared with other heavy jobs.
	waitTimeout = 3 * time.Minute
)

var (
	trainPod = types.NamespacedName{Namespace: "team-a", Name: "train-0"} // DCGM (plain labels, one GPU with an energy counter) and Kepler
	inferPod = types.NamespacedName{Namespace: "team-b", Name: "infer-0"} // DCGM scraped with renamed labels
	etlPod   = types.NamespacedName{Namespace: "team-c", Name: "etl-0"}   // Kepler only
)

// keplerWatts are the constant powers Kepler's CPU counters integrate, per pod and zone. Only package
// and dram count: core lies within package and psys spans both, so adding either would count twice.
var keplerWatts = map[types.NamespacedName]map[string]float64{
	trainPod: {"package": 40, "core": 30},
	etlPod:   {"package": 50, "dram": 25, "core": 35, "psys": 120},
}

// keplerGPUWatts is what Kepler's GPU counter integrates for the training pod: DCGM's figure must win.
const keplerGPUWatts = 999

// energyWatts is what GPU-a1's DCGM energy counter integrates (in mJ); its power sample says
// sampledWatts, which must not be used while the counter is there.
const (
	energyWatts  = 170
	sampledWatts = 180.25
)

// exporter serves DCGM-style gauges (two "nodes", one scraped so that its pod labels get renamed) and
// Kepler-style energy counters whose values the test knows exactly.
type exporter struct {
	power, util       *prometheus.GaugeVec // node 1: dcgm-exporter's own pod labels survive the scrape
	power2, util2     *prometheus.GaugeVec // node 2: the scrape target's namespace/pod labels take over
	keplerStart       time.Time            // counters read watts × (t − keplerStart)
	keplerDesc        *prometheus.Desc     // kepler_pod_cpu_joules_total
	keplerGPUDesc     *prometheus.Desc     // kepler_pod_gpu_joules_total
	energyDesc        *prometheus.Desc     // DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION
	mux               *http.ServeMux
	dcgmReg, dcgm2Reg *prometheus.Registry
	keplerReg         *prometheus.Registry
}

var dcgmLabels = []string{"gpu", "UUID", "Hostname", "modelName", "namespace", "pod", "container"}

func newExporter(t *testing.T) *exporter {
	e := &exporter{
		// An hour of history, so rate() never extrapolates towards a counter start of zero.
		keplerStart: time.Now().Add(-time.Hour),
		keplerDesc: prometheus.NewDesc("kepler_pod_cpu_joules_total", "Energy of a pod's CPU use per zone (test exporter).",
			[]string{"pod_id", "pod_name", "pod_namespace", "state", "zone"}, prometheus.Labels{"node_name": "gpu-node-1"}),
		keplerGPUDesc: prometheus.NewDesc("kepler_pod_gpu_joules_total", "Energy of a pod's GPU use (test exporter).",
			[]string{"pod_id", "pod_name", "pod_namespace", "gpu", "vendor", "state"}, prometheus.Labels{"node_name": "gpu-node-1"}),
		energyDesc: prometheus.NewDesc("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "Total energy consumption since boot (in mJ).", dcgmLabels, nil),
		mux:        http.NewServeMux(),
		dcgmReg:    prometheus.NewRegistry(),
		dcgm2Reg:   prometheus.NewRegistry(),
		keplerReg:  prometheus.NewRegistry(),
	}
	gauges := func(reg *prometheus.Registry) (*prometheus.GaugeVec, *prometheus.GaugeVec) {
		p := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "DCGM_FI_DEV_POWER_USAGE", Help: "Power draw (in W)."}, dcgmLabels)
		u := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "DCGM_FI_DEV_GPU_UTIL", Help: "GPU utilization (in %)."}, dcgmLabels)
		reg.MustRegister(p, u)
		return p, u
	}
	e.power, e.util = gauges(e.dcgmReg)
	e.power2, e.util2 = gauges(e.dcgm2Reg)
	e.keplerReg.MustRegister(e)
	e.dcgmReg.MustRegister(energyCollector{e})
	e.mux.Handle("/metrics/dcgm", promhttp.HandlerFor(e.dcgmReg, promhttp.HandlerOpts{}))
	e.mux.Handle("/metrics/dcgm-node2", promhttp.HandlerFor(e.dcgm2Reg, promhttp.HandlerOpts{}))
	e.mux.Handle("/metrics/kepler", promhttp.HandlerFor(e.keplerReg, promhttp.HandlerOpts{}))
	return e
}

// setGPU sets one GPU's power (W) and utilization (%); an empty pod marks an idle GPU.
func setGPU(power, util *prometheus.GaugeVec, uuid, index, host string, pod types.NamespacedName, watts, pct float64) {
	container := ""
	if pod.Name != "" {
		container = "main"
	}
	l := prometheus.Labels{"gpu": index, "UUID": uuid, "Hostname": host, "modelName": "NVIDIA A100-SXM4-80GB",
		"namespace": pod.Namespace, "pod": pod.Name, "container": container}
	power.With(l).Set(watts)
	util.With(l).Set(pct)
}

// joules is what a counter of constant power reads at t.
func (e *exporter) joules(watts float64, t time.Time) float64 {
	return watts * t.Sub(e.keplerStart).Seconds()
}

// Describe and Collect make the exporter the Kepler collector. Samples carry their own timestamp, the
// moment their value was computed, so Prometheus stores points that lie exactly on watts × t.
func (e *exporter) Describe(ch chan<- *prometheus.Desc) { ch <- e.keplerDesc; ch <- e.keplerGPUDesc }

func (e *exporter) Collect(ch chan<- prometheus.Metric) {
	now := time.Now().Truncate(time.Millisecond) // Prometheus timestamps are milliseconds
	for pod, zones := range keplerWatts {
		for zone, watts := range zones {
			m := prometheus.MustNewConstMetric(e.keplerDesc, prometheus.CounterValue, e.joules(watts, now),
				"uid-"+pod.Name, pod.Name, pod.Namespace, "running", zone)
			ch <- prometheus.NewMetricWithTimestamp(now, m)
		}
	}
	m := prometheus.MustNewConstMetric(e.keplerGPUDesc, prometheus.CounterValue, e.joules(keplerGPUWatts, now),
		"uid-"+trainPod.Name, trainPod.Name, trainPod.Namespace, "0", "nvidia", "running")
	ch <- prometheus.NewMetricWithTimestamp(now, m)
}

// energyCollector serves DCGM's energy counter of GPU-a1, in millijoules, timestamped like Kepler's.
type energyCollector struct{ e *exporter }

func (c energyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.e.energyDesc }

func (c energyCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now().Truncate(time.Millisecond)
	m := prometheus.MustNewConstMetric(c.e.energyDesc, prometheus.CounterValue, 1000*c.e.joules(energyWatts, now),
		"1", "GPU-a1", "gpu-node-1", "NVIDIA A100-SXM4-80GB", trainPod.Namespace, trainPod.Name, "main")
	ch <- prometheus.NewMetricWithTimestamp(now, m)
}

// promServer is a Prometheus process started for one test.
type promServer struct {
	URL  string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan struct{} // closed when the process has exited
	once sync.Once
}

// stop ends Prometheus (SIGTERM, then SIGKILL after 10s) and waits for it; safe to call twice.
func (s *promServer) stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

func (s *promServer) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer func() { _ = l.Close() }() // the listener only found a free port
	return l.Addr().(*net.TCPAddr).Port
}

// startPrometheus runs Prometheus on loopback, scraping the DCGM- and Kepler-like exporter at target
// every second, and waits until it is ready.
func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	return startPrometheusScraping(t, fmt.Sprintf(`  - job_name: dcgm
    metrics_path: /metrics/dcgm
    static_configs:
      - targets: [%[1]q]
  - job_name: dcgm-relabeled
    metrics_path: /metrics/dcgm-node2
    honor_labels: false
    static_configs:
      - targets: [%[1]q]
        labels: {namespace: gpu-operator, pod: dcgm-exporter-node2}
  - job_name: kepler
    metrics_path: /metrics/kepler
    static_configs:
      - targets: [%[1]q]
`, target))
}

// startPrometheusScraping runs Prometheus on loopback with scrapeConfigs (YAML list items of
// scrape_configs, indented two spaces) scraped every second, and waits until it is ready. A port taken
// between choosing and binding it is retried with another one.
func startPrometheusScraping(t *testing.T, scrapeConfigs string) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("the prometheus server is not installed (%v): run `make prometheus` (hack/ensure-prometheus.sh installs Debian's prometheus package)", err)
	}
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
scrape_configs:
%[2]s`, model.Duration(scrapeInterval), scrapeConfigs)
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := range 3 {
		port := freePort(t)
		s := &promServer{URL: fmt.Sprintf("http://127.0.0.1:%d", port), log: &bytes.Buffer{}, done: make(chan struct{})}
		s.cmd = exec.Command(bin,
			"--config.file="+configFile,
			fmt.Sprintf("--storage.tsdb.path=%s", filepath.Join(dir, fmt.Sprintf("data-%d", attempt))),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
			"--log.level=warn",
		)
		s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
		// Killed with the test binary too, should it die before its cleanups run.
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		t.Cleanup(s.stop)
		if lastErr = waitReady(s); lastErr == nil {
			return s
		}
		s.stop()
	}
	t.Fatalf("Prometheus did not start: %v", lastErr)
	return nil
}

func waitReady(s *promServer) error {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		if s.exited() {
			return fmt.Errorf("prometheus exited: %s", s.log.String())
		}
		resp, err := client.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("not ready at %s after %v", s.URL, waitTimeout)
}

// eventually polls check until it returns nil, failing the test with its last error after waitTimeout.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, waitTimeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }

// checkDCGM compares a DCGM reading with the exported figures.
func checkDCGM(readings map[types.NamespacedName]telemetry.Reading, pod types.NamespacedName, watts, utilization float64) error {
	r, ok := readings[pod]
	switch {
	case !ok:
		return fmt.Errorf("no reading for %s in %v", pod, readings)
	case r.Source != telemetry.SourceDCGM || !near(r.Watts, watts) || !near(r.GPUUtilization, utilization):
		return fmt.Errorf("%s: got %+v, want {Watts:%v GPUUtilization:%v Source:dcgm}", pod, r, watts, utilization)
	}
	return nil
}

// checkRated compares a reading with exact watts plus rated watts that come from counters: rate() of
// an exactly linear counter can only fall short of its slope (by the part of the window it does not
// extrapolate into), so the reading must lie between 85% of the rated part and all of it.
func checkRated(readings map[types.NamespacedName]telemetry.Reading, pod types.NamespacedName, source string, covers telemetry.Parts,
	exact, rated float64) error {
	r, ok := readings[pod]
	switch {
	case !ok:
		return fmt.Errorf("no reading for %s in %v", pod, readings)
	case r.Source != source || r.Covers != covers:
		return fmt.Errorf("%s: got %+v, want source %s covering %b", pod, r, source, covers)
	case r.Watts > (exact+rated)*(1+1e-9) || r.Watts < exact+0.85*rated:
		return fmt.Errorf("%s: %v W, want %v W exact plus up to %v W of rates", pod, r.Watts, exact, rated)
	}
	return nil
}

func TestPrometheusTelemetry(t *testing.T) {
	exp := newExporter(t)
	node1, node2 := "gpu-node-1", "gpu-node-2"
	setGPU(exp.power, exp.util, "GPU-a0", "0", node1, trainPod, 250.5, 91)
	setGPU(exp.power, exp.util, "GPU-a1", "1", node1, trainPod, sampledWatts, 73)
	setGPU(exp.power2, exp.util2, "GPU-b0", "0", node2, inferPod, 120, 35)
	setGPU(exp.power2, exp.util2, "GPU-b1", "1", node2, types.NamespacedName{}, 60, 0) // idle: must not become the exporter pod's
	srv := httptest.NewServer(exp.mux)
	t.Cleanup(srv.Close)

	prom := startPrometheus(t, strings.TrimPrefix(srv.URL, "http://"))
	clk := clocktesting.NewFakeClock(time.Now())
	src, err := telemetry.NewPrometheus(telemetry.PrometheusConfig{
		URL: prom.URL, Timeout: 30 * time.Second, MaxAge: maxAge, KeplerRateWindow: keplerWindow, Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	raw := rawAPI(t, prom.URL)

	// Wait until Prometheus holds Kepler samples from before the first rate window, so the window is
	// covered and the reading is a settled rate.
	eventually(t, "Kepler history covering a rate window", func() error {
		first, _, err := keplerSamples(ctx, raw, keplerWindow+30*time.Second)
		if err != nil {
			return err
		}
		if len(first) == 0 || time.Since(first[0].Timestamp.Time()) < keplerWindow+3*scrapeInterval {
			return fmt.Errorf("%d samples so far", len(first))
		}
		return nil
	})

	t.Run("readings match the exported values", func(t *testing.T) {
		var readings map[types.NamespacedName]telemetry.Reading
		var before, after time.Time
		eventually(t, "readings for the three pods", func() error {
			clk.Step(maxAge) // the previous attempt's result is cached; force a refresh
			before = time.Now()
			readings, err = src.PodReadings(ctx)
			after = time.Now()
			if err != nil {
				return err
			}
			if len(readings) != 3 {
				return fmt.Errorf("readings for %d pods, want 3 (%s, %s, %s): %v", len(readings), trainPod, inferPod, etlPod, readings)
			}
			return errors.Join(
				// GPU-a1's energy counter, not its sample; DCGM, not Kepler's GPU counter; Kepler's package zone.
				checkRated(readings, trainPod, telemetry.SourceDCGMKepler, telemetry.Accelerators|telemetry.HostActive,
					250.5, energyWatts+keplerWatts[trainPod]["package"]),
				checkDCGM(readings, inferPod, 120, 0.35), // from exported_namespace/exported_pod
			)
		})

		r, ok := readings[etlPod]
		if !ok || r.Source != telemetry.SourceKepler || r.Covers != telemetry.HostActive || !math.IsNaN(r.GPUUtilization) {
			t.Fatalf("%s: got %+v (present %v), want a Kepler reading of the host's active power with unknown utilization", etlPod, r, ok)
		}
		if tr := readings[trainPod]; !near(tr.GPUUtilization, (91+73)/2.0/100) {
			t.Errorf("%s: GPU utilization %v, want %v", trainPod, tr.GPUUtilization, (91+73)/2.0/100)
		}
		// The counters are exactly linear, so rate() can only fall short of their slope, by the part of the
		// window it does not extrapolate into; that part is at most the widest gap between stored samples
		// at either end of the window (plus how long the call took).
		want := keplerWatts[etlPod]["package"] + keplerWatts[etlPod]["dram"]
		gap := keplerCoverage(t, ctx, raw, exp, before, after)
		tolerance := want * (2*gap + after.Sub(before)).Seconds() / keplerWindow.Seconds()
		if r.Watts > want*(1+1e-9) || r.Watts < want-tolerance {
			t.Errorf("%s: Kepler watts %v, want %v (−%.3f W allowed: widest sample gap %v in a %v window)",
				etlPod, r.Watts, want, tolerance, gap, keplerWindow)
		}
		t.Logf("Kepler rate %.6f W for a %v W counter (tolerance %.3f W)", r.Watts, want, tolerance)
	})

	t.Run("changed values show after MaxAge", func(t *testing.T) {
		setGPU(exp.power, exp.util, "GPU-a0", "0", node1, trainPod, 300, 50)
		setGPU(exp.power2, exp.util2, "GPU-b0", "0", node2, inferPod, 140, 65)
		// Whatever Prometheus has scraped meanwhile, the cached readings are served until MaxAge passes.
		cached, err := src.PodReadings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkRated(cached, trainPod, telemetry.SourceDCGMKepler, telemetry.Accelerators|telemetry.HostActive,
			250.5, energyWatts+keplerWatts[trainPod]["package"]); err != nil {
			t.Errorf("before MaxAge: %v", err)
		}
		eventually(t, "new values", func() error {
			clk.Step(maxAge)
			readings, err := src.PodReadings(ctx)
			if err != nil {
				return err
			}
			return errors.Join(checkRated(readings, trainPod, telemetry.SourceDCGMKepler, telemetry.Accelerators|telemetry.HostActive,
				300, energyWatts+keplerWatts[trainPod]["package"]), checkDCGM(readings, inferPod, 140, 0.65))
		})
	})

	t.Run("Query returns one value", func(t *testing.T) {
		total := 300 + sampledWatts + 140 + 60.0
		eventually(t, "total power", func() error {
			got, err := src.Query(ctx, `sum(DCGM_FI_DEV_POWER_USAGE)`)
			if err != nil {
				return err
			}
			if !near(got, total) {
				return fmt.Errorf("sum(DCGM_FI_DEV_POWER_USAGE) = %v, want %v", got, total)
			}
			return nil
		})
		if got, err := src.Query(ctx, `scalar(count(up == 1))`); err != nil || got != 3 {
			t.Errorf("scalar(count(up == 1)) = %v, %v; want 3 targets up", got, err)
		}
		_, err := src.Query(ctx, `DCGM_FI_DEV_POWER_USAGE`)
		if err == nil || !strings.Contains(err.Error(), "returned 4 series, want exactly one") {
			t.Errorf("a four-series query gave %v, want an error saying it returned 4 series", err)
		}
		_, err = src.Query(ctx, `sum(`)
		if err == nil || !strings.Contains(err.Error(), "sum(") || !strings.Contains(err.Error(), prom.URL) {
			t.Errorf("a malformed query gave %v, want an error naming it and %s", err, prom.URL)
		}
	})

	t.Run("bad URL", func(t *testing.T) {
		for _, u := range []string{"127.0.0.1:9090", "", "unix:///run/prometheus.sock"} {
			if _, err := telemetry.NewPrometheus(telemetry.PrometheusConfig{URL: u}); err == nil || !strings.Contains(err.Error(), "Prometheus URL") {
				t.Errorf("URL %q: error %v, want one naming the Prometheus URL setting", u, err)
			}
		}
	})

	t.Run("stopped server", func(t *testing.T) {
		prom.stop()
		if !prom.exited() {
			t.Fatal("Prometheus still running after stop")
		}
		clk.Step(maxAge)
		readings, err := src.PodReadings(ctx)
		if err == nil {
			t.Fatalf("PodReadings from a stopped server: %v and no error", readings)
		}
		for _, s := range []string{prom.URL, "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_GPU_UTIL",
			"kepler_pod_cpu_joules_total", "kepler_pod_gpu_joules_total", "connection refused"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
		if _, err := src.Query(ctx, "up"); err == nil || !strings.Contains(err.Error(), prom.URL) {
			t.Errorf("Query on a stopped server: %v, want an error naming %s", err, prom.URL)
		}
	})
}

func rawAPI(t *testing.T, url string) promv1.API {
	t.Helper()
	c, err := promapi.NewClient(promapi.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	return promv1.NewAPI(c)
}

// keplerSamples returns what Prometheus stored over the last span for the etl pod's package and dram zones.
func keplerSamples(ctx context.Context, api promv1.API, span time.Duration) (pkg, dram []model.SamplePair, err error) {
	q := fmt.Sprintf(`kepler_pod_cpu_joules_total{pod_namespace=%q, pod_name=%q}[%s]`, etlPod.Namespace, etlPod.Name, model.Duration(span))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, _, err := api.Query(ctx, q, time.Time{})
	if err != nil {
		return nil, nil, fmt.Errorf("querying %s: %w", q, err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, nil, fmt.Errorf("%s returned a %s", q, v.Type())
	}
	for _, s := range m {
		switch s.Metric["zone"] {
		case "package":
			pkg = s.Values
		case "dram":
			dram = s.Values
		}
	}
	return pkg, dram, nil
}

// keplerCoverage checks that every stored Kepler sample is exactly what the exporter computed for its
// timestamp, and returns the widest gap between consecutive samples around the rate window
// that a query made between before and after used (including the gap from the last sample to after).
func keplerCoverage(t *testing.T, ctx context.Context, api promv1.API, exp *exporter, before, after time.Time) time.Duration {
	t.Helper()
	main, dram, err := keplerSamples(ctx, api, keplerWindow+30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for name, samples := range map[string][]model.SamplePair{"package": main, "dram": dram} {
		for _, s := range samples {
			if want := exp.joules(keplerWatts[etlPod][name], s.Timestamp.Time()); !near(float64(s.Value), want) {
				t.Fatalf("Prometheus stored %v J at %v for zone %s, the exporter served %v J", s.Value, s.Timestamp.Time(), name, want)
			}
		}
	}
	windowStart := before.Add(-keplerWindow)
	var gap time.Duration
	var prev time.Time
	for _, s := range main {
		ts := s.Timestamp.Time()
		if ts.After(after) {
			break
		}
		if ts.After(windowStart) && prev.IsZero() {
			t.Fatalf("no Kepler sample stored before the rate window starting at %v: the window is not covered", windowStart)
		}
		if !prev.IsZero() && ts.After(windowStart) {
			gap = max(gap, ts.Sub(prev))
		}
		prev = ts
	}
	return max(gap, after.Sub(prev))
}
