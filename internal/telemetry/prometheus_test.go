package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

// series is one sample of an instant vector in a fake answer.
type series struct {
	labels map[string]string
	value  float64
}

// answer is what the fake server replies to one query: a vector, a scalar, or an HTTP error.
type answer struct {
	vector []series
	scalar *float64
	matrix bool
	status int // non-zero: reply with this HTTP status and a Prometheus error body
}

// fakePrometheus answers /api/v1/query in Prometheus's JSON format. Answers are chosen by the first key
// that the query contains, so tests need not repeat whole PromQL expressions.
type fakePrometheus struct {
	t *testing.T
	*httptest.Server

	mu      sync.Mutex
	answers map[string]answer
	queries []string
	auth    []string
}

func newFakePrometheus(t *testing.T, answers map[string]answer) *fakePrometheus {
	f := &fakePrometheus{t: t, answers: answers}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakePrometheus) set(answers map[string]answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers = answers
}

func (f *fakePrometheus) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries...)
}

func (f *fakePrometheus) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.Form.Get("query")
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	var a answer
	found := false
	for key, candidate := range f.answers {
		if strings.Contains(q, key) {
			a, found = candidate, true
			break
		}
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !found {
		a = answer{vector: []series{}}
	}
	if a.status != 0 {
		w.WriteHeader(a.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "internal", "error": "fake failure"})
		return
	}
	now := 1.7e9
	var data map[string]any
	switch {
	case a.scalar != nil:
		data = map[string]any{"resultType": "scalar", "result": []any{now, strconv.FormatFloat(*a.scalar, 'g', -1, 64)}}
	case a.matrix:
		data = map[string]any{"resultType": "matrix", "result": []any{}}
	default:
		result := []any{}
		for _, s := range a.vector {
			result = append(result, map[string]any{"metric": s.labels, "value": []any{now, strconv.FormatFloat(s.value, 'g', -1, 64)}})
		}
		data = map[string]any{"resultType": "vector", "result": result}
	}
	if err := json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data}); err != nil {
		f.t.Errorf("encoding fake answer: %v", err)
	}
}

func gpu(ns, pod, uuid string, v float64, extra ...string) series {
	l := map[string]string{"namespace": ns, "pod": pod, "UUID": uuid, "gpu": "0", "Hostname": "node-1", "job": "dcgm"}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return series{labels: l, value: v}
}

// keplerPod is a Kepler 0.10 per-pod series, summed by pod as the query does.
func keplerPod(ns, pod string, watts float64) series {
	return series{labels: map[string]string{"pod_namespace": ns, "pod_name": pod}, value: watts}
}

// kepler09Pod is a Kepler 0.9 per-pod series.
func kepler09Pod(ns, pod string, watts float64) series {
	return series{labels: map[string]string{"container_namespace": ns, "pod_name": pod}, value: watts}
}

func nn(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

const (
	powerKey      = "DCGM_FI_DEV_POWER_USAGE"
	energyKey     = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
	utilKey       = "DCGM_FI_DEV_GPU_UTIL"
	keplerCPUKey  = "kepler_pod_cpu_joules_total"
	keplerGPUKey  = "kepler_pod_gpu_joules_total"
	kepler09Key   = "kepler_container_joules_total"
	queriesPerRun = 5 // with Kepler 0.10: DCGM power, energy and utilization, Kepler CPU and GPU
)

// failing answers every query of a refresh with an error.
func failing(status int) map[string]answer {
	return map[string]answer{powerKey: {status: status}, energyKey: {status: status}, utilKey: {status: status},
		keplerCPUKey: {status: status}, keplerGPUKey: {status: status}}
}

var nan = math.NaN()

func TestPodReadings(t *testing.T) {
	const dcgm, both = SourceDCGM, SourceDCGMKepler
	tests := []struct {
		name    string
		kepler  string
		answers map[string]answer
		want    map[types.NamespacedName]Reading
		wantErr []string // substrings of the error; none means no error
	}{{
		name: "DCGM sums watts and averages utilization over a pod's GPUs",
		answers: map[string]answer{
			powerKey: {vector: []series{gpu("team-a", "train-0", "GPU-1", 250.5), gpu("team-a", "train-0", "GPU-2", 180.25), gpu("team-a", "serve-0", "GPU-3", 90)}},
			utilKey:  {vector: []series{gpu("team-a", "train-0", "GPU-1", 90), gpu("team-a", "train-0", "GPU-2", 70)}},
		},
		want: map[types.NamespacedName]Reading{
			nn("team-a", "train-0"): {Watts: 430.75, Covers: Accelerators, GPUUtilization: 0.8, Source: dcgm},
			nn("team-a", "serve-0"): {Watts: 90, Covers: Accelerators, GPUUtilization: nan, Source: dcgm},
		},
	}, {
		name: "a GPU's energy counter replaces its power sample; GPUs without one keep the sample",
		answers: map[string]answer{
			powerKey:  {vector: []series{gpu("a", "p", "GPU-1", 250), gpu("a", "p", "GPU-2", 100), gpu("b", "q", "GPU-3", 80)}},
			energyKey: {vector: []series{gpu("a", "p", "GPU-1", 231.5), gpu("c", "r", "GPU-4", 40)}},
		},
		want: map[types.NamespacedName]Reading{
			nn("a", "p"): {Watts: 231.5 + 100, Covers: Accelerators, GPUUtilization: nan, Source: dcgm},
			nn("b", "q"): {Watts: 80, Covers: Accelerators, GPUUtilization: nan, Source: dcgm},
			nn("c", "r"): {Watts: 40, Covers: Accelerators, GPUUtilization: nan, Source: dcgm},
		},
	}, {
		name: "exported_ labels name the workload in a job whose target labels took namespace and pod",
		answers: map[string]answer{
			powerKey: {vector: []series{
				gpu("gpu-operator", "dcgm-exporter-x", "GPU-1", 120, "job", "renamed", "exported_namespace", "team-b", "exported_pod", "infer-0"),
				gpu("gpu-operator", "dcgm-exporter-x", "GPU-2", 60, "job", "renamed"), // idle GPU: not the exporter's power
				gpu("team-c", "train-1", "GPU-9", 300),                                // another job keeps plain labels
			}},
			utilKey: {vector: []series{
				gpu("gpu-operator", "dcgm-exporter-x", "GPU-1", 35, "job", "renamed", "exported_namespace", "team-b", "exported_pod", "infer-0"),
			}},
		},
		want: map[types.NamespacedName]Reading{
			nn("team-b", "infer-0"): {Watts: 120, Covers: Accelerators, GPUUtilization: 0.35, Source: dcgm},
			nn("team-c", "train-1"): {Watts: 300, Covers: Accelerators, GPUUtilization: nan, Source: dcgm},
		},
	}, {
		name: "the same GPU scraped by two jobs counts once",
		answers: map[string]answer{
			powerKey: {vector: []series{gpu("a", "p", "GPU-1", 200), gpu("a", "p", "GPU-1", 200, "job", "dcgm-2"), gpu("a", "p", "GPU-2", 100)}},
			utilKey:  {vector: []series{gpu("a", "p", "GPU-1", 50), gpu("a", "p", "GPU-1", 50, "job", "dcgm-2"), gpu("a", "p", "GPU-2", 20)}},
		},
		want: map[types.NamespacedName]Reading{nn("a", "p"): {Watts: 300, Covers: Accelerators, GPUUtilization: 0.35, Source: dcgm}},
	}, {
		name: "Kepler 0.10 adds the host's active power to DCGM's; its GPU counter covers pods DCGM does not report",
		answers: map[string]answer{
			powerKey:     {vector: []series{gpu("a", "gpu-pod", "GPU-1", 210)}},
			utilKey:      {vector: []series{gpu("a", "gpu-pod", "GPU-1", 40), gpu("a", "util-only", "GPU-7", 10)}},
			keplerCPUKey: {vector: []series{keplerPod("a", "gpu-pod", 55), keplerPod("b", "cpu-pod", 42.5), keplerPod("a", "kepler-gpu", 12)}},
			keplerGPUKey: {vector: []series{keplerPod("a", "gpu-pod", 190), keplerPod("a", "kepler-gpu", 150), keplerPod("a", "util-only", 75)}},
		},
		want: map[types.NamespacedName]Reading{
			nn("a", "gpu-pod"):    {Watts: 210 + 55, Covers: Accelerators | HostActive, GPUUtilization: 0.4, Source: both},
			nn("b", "cpu-pod"):    {Watts: 42.5, Covers: HostActive, GPUUtilization: nan, Source: SourceKepler},
			nn("a", "kepler-gpu"): {Watts: 150 + 12, Covers: AcceleratorActive | HostActive, GPUUtilization: nan, Source: SourceKepler},
			nn("a", "util-only"):  {Watts: 75, Covers: AcceleratorActive, GPUUtilization: 0.1, Source: SourceKepler},
		},
	}, {
		name:   "Kepler 0.9's container counter is the whole pod, used where DCGM does not report it",
		kepler: Kepler09,
		answers: map[string]answer{
			powerKey:    {vector: []series{gpu("a", "gpu-pod", "GPU-1", 210)}},
			kepler09Key: {vector: []series{kepler09Pod("a", "gpu-pod", 300), kepler09Pod("b", "cpu-pod", 42.5)}},
			// A 0.10 series must not be read in 0.9 mode.
			keplerCPUKey: {vector: []series{keplerPod("c", "ignored", 1)}},
		},
		want: map[types.NamespacedName]Reading{
			nn("a", "gpu-pod"): {Watts: 210, Covers: Accelerators, GPUUtilization: nan, Source: dcgm},
			nn("b", "cpu-pod"): {Watts: 42.5, Covers: AllParts, GPUUtilization: nan, Source: SourceKepler},
		},
	}, {
		name: "series without a pod, and NaN samples, give no reading",
		answers: map[string]answer{
			powerKey:     {vector: []series{gpu("", "", "GPU-1", 70), gpu("a", "p", "GPU-2", nan), gpu("a", "q", "GPU-3", 100), gpu("a", "q", "GPU-4", nan)}},
			utilKey:      {vector: []series{gpu("a", "q", "GPU-3", nan)}},
			keplerCPUKey: {vector: []series{keplerPod("", "x", 10), keplerPod("a", "", 10), keplerPod("a", "nan", nan)}},
		},
		want: map[types.NamespacedName]Reading{nn("a", "q"): {Watts: 100, Covers: Accelerators, GPUUtilization: nan, Source: dcgm}},
	}, {
		name: "a failed Kepler query keeps DCGM readings and names the query",
		answers: map[string]answer{
			powerKey:     {vector: []series{gpu("a", "p", "GPU-1", 200)}},
			keplerCPUKey: {status: http.StatusServiceUnavailable},
		},
		want:    map[types.NamespacedName]Reading{nn("a", "p"): {Watts: 200, Covers: Accelerators, GPUUtilization: nan, Source: dcgm}},
		wantErr: []string{keplerCPUKey, "503"},
	}, {
		name: "a failed DCGM power query keeps Kepler readings with DCGM utilization",
		answers: map[string]answer{
			powerKey:     {status: http.StatusBadRequest},
			utilKey:      {vector: []series{gpu("a", "p", "GPU-1", 60)}},
			keplerCPUKey: {vector: []series{keplerPod("a", "p", 180)}},
		},
		want:    map[types.NamespacedName]Reading{nn("a", "p"): {Watts: 180, Covers: HostActive, GPUUtilization: 0.6, Source: SourceKepler}},
		wantErr: []string{"`" + powerKey + "`"},
	}, {
		name:    "every query failing returns no readings",
		answers: failing(http.StatusInternalServerError),
		wantErr: []string{powerKey, energyKey, utilKey, keplerCPUKey, keplerGPUKey},
	}, {
		name:    "an answer that is not a vector is an error",
		answers: map[string]answer{powerKey: {matrix: true}},
		want:    map[types.NamespacedName]Reading{},
		wantErr: []string{powerKey, "returned a matrix, want a vector"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakePrometheus(t, tc.answers)
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			p, err := NewPrometheus(PrometheusConfig{URL: srv.URL, Kepler: tc.kepler, Clock: clocktesting.NewFakeClock(at)})
			if err != nil {
				t.Fatal(err)
			}
			for pod, r := range tc.want {
				r.At = at
				tc.want[pod] = r
			}
			got, err := p.PodReadings(context.Background())
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateNaNs(), cmpopts.EquateApprox(0, 1e-9), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("readings (-want +got):\n%s", diff)
			}
			switch {
			case len(tc.wantErr) == 0 && err != nil:
				t.Errorf("unexpected error: %v", err)
			case len(tc.wantErr) > 0 && err == nil:
				t.Errorf("no error, want one mentioning %q", tc.wantErr)
			case err != nil:
				for _, s := range append(tc.wantErr, srv.URL) {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
			}
		})
	}
}

func TestQueriesSent(t *testing.T) {
	for _, tc := range []struct {
		cfg  PrometheusConfig
		want []string
	}{{
		want: []string{powerKey, utilKey, `rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[1m]) / 1000`,
			`sum by (pod_namespace, pod_name) (rate(kepler_pod_cpu_joules_total{pod_name!="",zone=~"package|dram"}[1m]))`,
			`sum by (pod_namespace, pod_name) (rate(kepler_pod_gpu_joules_total{pod_name!=""}[1m]))`},
	}, {
		cfg: PrometheusConfig{KeplerRateWindow: 90 * time.Second, Kepler: Kepler09},
		want: []string{powerKey, utilKey, `rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[1m30s]) / 1000`,
			`sum by (container_namespace, pod_name) (rate(kepler_container_joules_total{pod_name!=""}[1m30s]))`},
	}} {
		srv := newFakePrometheus(t, nil)
		tc.cfg.URL = srv.URL
		p, err := NewPrometheus(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.PodReadings(context.Background()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, srv.requests(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("queries (-want +got):\n%s", diff)
		}
	}
}

func TestPodReadingsCache(t *testing.T) {
	srv := newFakePrometheus(t, map[string]answer{powerKey: {vector: []series{gpu("a", "p", "GPU-1", 100)}}})
	clk := clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	p, err := NewPrometheus(PrometheusConfig{URL: srv.URL, MaxAge: time.Minute, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	watts := func() (float64, error) {
		t.Helper()
		r, err := p.PodReadings(ctx)
		return r[nn("a", "p")].Watts, err
	}
	expect := func(step string, wantWatts float64, wantErr bool, wantRequests int) {
		t.Helper()
		w, err := watts()
		if w != wantWatts || (err != nil) != wantErr {
			t.Errorf("%s: watts %v, error %v; want %v, error %v", step, w, err, wantWatts, wantErr)
		}
		if n := len(srv.requests()); n != wantRequests {
			t.Errorf("%s: %d requests so far, want %d", step, n, wantRequests)
		}
	}
	const n = queriesPerRun
	expect("first call", 100, false, n)
	srv.set(map[string]answer{powerKey: {vector: []series{gpu("a", "p", "GPU-1", 150)}}})
	clk.Step(time.Minute - time.Nanosecond)
	expect("within MaxAge", 100, false, n)
	clk.Step(time.Nanosecond)
	expect("at MaxAge", 150, false, 2*n)

	// Failures are cached too, so a broken Prometheus is not asked once per reconcile; the last
	// readings are kept meanwhile, with the time they were measured.
	measuredAt := clk.Now()
	srv.set(failing(500))
	clk.Step(time.Minute)
	expect("failing", 150, true, 3*n)
	if r, _ := p.PodReadings(ctx); !r[nn("a", "p")].At.Equal(measuredAt) {
		t.Errorf("failing: the kept reading says it was measured at %v, want %v", r[nn("a", "p")].At, measuredAt)
	}
	srv.set(map[string]answer{powerKey: {vector: []series{gpu("a", "p", "GPU-1", 175)}}})
	clk.Step(30 * time.Second)
	expect("failure still cached", 150, true, 3*n)
	clk.Step(30 * time.Second)
	expect("recovered", 175, false, 4*n)

	// A caller's cancellation is not cached for the others.
	clk.Step(time.Minute)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.PodReadings(cancelled); err == nil {
		t.Error("cancelled context: no error")
	}
	before := len(srv.requests())
	expect("after a cancelled call", 175, false, before+n)

	// Concurrent callers share one refresh.
	clk.Step(time.Minute)
	before = len(srv.requests())
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if w, err := watts(); err != nil || w != 175 {
				t.Errorf("concurrent call: watts %v, error %v", w, err)
			}
		})
	}
	wg.Wait()
	if got := len(srv.requests()) - before; got != n {
		t.Errorf("20 concurrent callers sent %d queries, want %d (one refresh)", got, n)
	}
}

func TestQuery(t *testing.T) {
	one := 0.75
	tests := []struct {
		name    string
		answer  answer
		want    float64
		wantErr string
	}{
		{name: "scalar", answer: answer{scalar: &one}, want: 0.75},
		{name: "one-element vector", answer: answer{vector: []series{{labels: map[string]string{"job": "x"}, value: 42}}}, want: 42},
		{name: "empty vector", answer: answer{vector: []series{}}, wantErr: "returned 0 series, want exactly one"},
		{name: "two series", answer: answer{vector: []series{{value: 1}, {labels: map[string]string{"a": "b"}, value: 2}}}, wantErr: "returned 2 series"},
		{name: "matrix", answer: answer{matrix: true}, wantErr: "returned a matrix"},
		{name: "server error", answer: answer{status: http.StatusUnprocessableEntity}, wantErr: "fake failure"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const q = `avg(queue_depth{app="trainer"})`
			srv := newFakePrometheus(t, map[string]answer{"queue_depth": tc.answer})
			p, err := NewPrometheus(PrometheusConfig{URL: srv.URL + "/"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Query(context.Background(), q)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Errorf("Query = %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Query = %v, want an error mentioning %q", got, tc.wantErr)
			}
			for _, s := range []string{tc.wantErr, q, srv.URL} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestQueryTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	p, err := NewPrometheus(PrometheusConfig{URL: srv.URL, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Query(context.Background(), "up")
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("error %v, want a deadline naming %s", err, srv.URL)
	}
}

func TestBearerTokenFile(t *testing.T) {
	srv := newFakePrometheus(t, map[string]answer{"up": {vector: []series{{value: 1}}}})
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := NewPrometheus(PrometheusConfig{URL: srv.URL, HTTP: HTTPConfig{BearerTokenFile: file}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Query(context.Background(), "up"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Query(context.Background(), "up"); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if diff := cmp.Diff([]string{"Bearer first", "Bearer rotated"}, srv.auth); diff != "" {
		t.Errorf("Authorization headers (-want +got):\n%s", diff)
	}
}

func TestNewPrometheusValidation(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent")
	tests := []struct {
		cfg     PrometheusConfig
		wantErr string
	}{
		{cfg: PrometheusConfig{URL: "http://prometheus.monitoring:9090"}},
		{cfg: PrometheusConfig{URL: "https://user:secret@thanos.example/prefix/"}},
		{cfg: PrometheusConfig{URL: ""}, wantErr: "Prometheus URL"},
		{cfg: PrometheusConfig{URL: "prometheus:9090"}, wantErr: "Prometheus URL"},
		{cfg: PrometheusConfig{URL: "/api"}, wantErr: "Prometheus URL"},
		{cfg: PrometheusConfig{URL: "ftp://prometheus"}, wantErr: "Prometheus URL"},
		{cfg: PrometheusConfig{URL: "http://"}, wantErr: "Prometheus URL"},
		{cfg: PrometheusConfig{URL: "http://[::1"}, wantErr: "Prometheus URL"},
		{cfg: PrometheusConfig{URL: "http://p", Timeout: -time.Second}, wantErr: "must not be negative"},
		{cfg: PrometheusConfig{URL: "http://p", MaxAge: -time.Second}, wantErr: "must not be negative"},
		{cfg: PrometheusConfig{URL: "http://p", KeplerRateWindow: 500 * time.Millisecond}, wantErr: "KeplerRateWindow"},
		{cfg: PrometheusConfig{URL: "http://p", Kepler: Kepler09}},
		{cfg: PrometheusConfig{URL: "http://p", Kepler: "0.11"}, wantErr: "Kepler version"},
		{cfg: PrometheusConfig{URL: "http://p", RememberFor: -time.Second}, wantErr: "must not be negative"},
		{cfg: PrometheusConfig{URL: "http://p", HTTP: HTTPConfig{BearerTokenFile: missing}}, wantErr: "bearer token"},
		{cfg: PrometheusConfig{URL: "http://p", HTTP: HTTPConfig{CAFile: missing}}, wantErr: "CA file"},
		{cfg: PrometheusConfig{URL: "http://p", HTTP: HTTPConfig{CertFile: missing}}, wantErr: "both CertFile and KeyFile"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%+v", tc.cfg), func(t *testing.T) {
			_, err := NewPrometheus(tc.cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestErrorsRedactPassword(t *testing.T) {
	p, err := NewPrometheus(PrometheusConfig{URL: "http://user:secret@127.0.0.1:1", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Query(context.Background(), "up")
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("error %v: want one naming the server without its password", err)
	}
}

func TestStatic(t *testing.T) {
	s := Static{Readings: map[types.NamespacedName]Reading{nn("a", "p"): {Watts: 1, Source: SourceDCGM}}, Values: map[string]float64{"up": 1}}
	var src Source = s
	if r, err := src.PodReadings(context.Background()); err != nil || r[nn("a", "p")].Watts != 1 {
		t.Errorf("PodReadings = %v, %v", r, err)
	}
	if v, err := src.Query(context.Background(), "up"); err != nil || v != 1 {
		t.Errorf("Query(up) = %v, %v", v, err)
	}
	if _, err := src.Query(context.Background(), "down"); err == nil {
		t.Error("Query(down): no error")
	}
}

func TestPodReadingsRemembered(t *testing.T) {
	srv := newFakePrometheus(t, map[string]answer{
		powerKey:     {vector: []series{gpu("a", "p", "GPU-1", 100), gpu("a", "q", "GPU-2", 50)}},
		keplerCPUKey: {vector: []series{keplerPod("a", "p", 20)}},
	})
	first := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(first)
	p, err := NewPrometheus(PrometheusConfig{URL: srv.URL, MaxAge: time.Minute, RememberFor: 10 * time.Minute, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	read := func() map[types.NamespacedName]Reading {
		t.Helper()
		clk.Step(time.Minute)
		r, err := p.PodReadings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	read()
	// q's GPU and p's Kepler series go: q keeps its last reading with its time; p is measured anew,
	// by DCGM alone.
	srv.set(map[string]answer{powerKey: {vector: []series{gpu("a", "p", "GPU-1", 110)}}})
	at := clk.Now().Add(time.Minute)
	want := map[types.NamespacedName]Reading{
		nn("a", "p"): {Watts: 110, Covers: Accelerators, GPUUtilization: nan, Source: SourceDCGM, At: at},
		nn("a", "q"): {Watts: 50, Covers: Accelerators, GPUUtilization: nan, Source: SourceDCGM, At: first.Add(time.Minute)},
	}
	if diff := cmp.Diff(want, read(), cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("after q's series went (-want +got):\n%s", diff)
	}
	// Kept until RememberFor has passed since it was measured, then forgotten.
	clk.Step(7 * time.Minute)
	if r := read(); r[nn("a", "q")].Watts != 50 {
		t.Errorf("9 minutes after its last measurement, q's reading is %+v, want the last one kept", r[nn("a", "q")])
	}
	if r := read(); len(r) != 1 {
		t.Errorf("10 minutes after its last measurement, q still has a reading: %v", r)
	}
}
