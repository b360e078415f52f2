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

func keplerPod(ns, pod string, watts float64) series {
	return series{labels: map[string]string{"container_namespace": ns, "pod_name": pod}, value: watts}
}

func nn(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

const (
	powerKey  = "DCGM_FI_DEV_POWER_USAGE"
	utilKey   = "DCGM_FI_DEV_GPU_UTIL"
	keplerKey = "kepler_container_joules_total"
)

var nan = math.NaN()

func TestPodReadings(t *testing.T) {
	tests := []struct {
		name    string
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
			nn("team-a", "train-0"): {Watts: 430.75, GPUUtilization: 0.8, Source: SourceDCGM},
			nn("team-a", "serve-0"): {Watts: 90, GPUUtilization: nan, Source: SourceDCGM},
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
			nn("team-b", "infer-0"): {Watts: 120, GPUUtilization: 0.35, Source: SourceDCGM},
			nn("team-c", "train-1"): {Watts: 300, GPUUtilization: nan, Source: SourceDCGM},
		},
	}, {
		name: "the same GPU scraped by two jobs counts once",
		answers: map[string]answer{
			powerKey: {vector: []series{gpu("a", "p", "GPU-1", 200), gpu("a", "p", "GPU-1", 200, "job", "dcgm-2"), gpu("a", "p", "GPU-2", 100)}},
			utilKey:  {vector: []series{gpu("a", "p", "GPU-1", 50), gpu("a", "p", "GPU-1", 50, "job", "dcgm-2"), gpu("a", "p", "GPU-2", 20)}},
		},
		want: map[types.NamespacedName]Reading{nn("a", "p"): {Watts: 300, GPUUtilization: 0.35, Source: SourceDCGM}},
	}, {
		name: "Kepler covers pods DCGM does not report; DCGM wins where both do; DCGM utilization still applies",
		answers: map[string]answer{
			powerKey:  {vector: []series{gpu("a", "gpu-pod", "GPU-1", 210)}},
			utilKey:   {vector: []series{gpu("a", "gpu-pod", "GPU-1", 40), gpu("a", "util-only", "GPU-7", 10)}},
			keplerKey: {vector: []series{keplerPod("a", "gpu-pod", 55), keplerPod("b", "cpu-pod", 42.5), keplerPod("a", "util-only", 75)}},
		},
		want: map[types.NamespacedName]Reading{
			nn("a", "gpu-pod"):   {Watts: 210, GPUUtilization: 0.4, Source: SourceDCGM},
			nn("b", "cpu-pod"):   {Watts: 42.5, GPUUtilization: nan, Source: SourceKepler},
			nn("a", "util-only"): {Watts: 75, GPUUtilization: 0.1, Source: SourceKepler},
		},
	}, {
		name: "series without a pod, and NaN samples, give no reading",
		answers: map[string]answer{
			powerKey:  {vector: []series{gpu("", "", "GPU-1", 70), gpu("a", "p", "GPU-2", nan), gpu("a", "q", "GPU-3", 100), gpu("a", "q", "GPU-4", nan)}},
			utilKey:   {vector: []series{gpu("a", "q", "GPU-3", nan)}},
			keplerKey: {vector: []series{keplerPod("", "x", 10), keplerPod("a", "", 10), keplerPod("a", "nan", nan)}},
		},
		want: map[types.NamespacedName]Reading{nn("a", "q"): {Watts: 100, GPUUtilization: nan, Source: SourceDCGM}},
	}, {
		name: "a failed Kepler query keeps DCGM readings and names the query",
		answers: map[string]answer{
			powerKey:  {vector: []series{gpu("a", "p", "GPU-1", 200)}},
			keplerKey: {status: http.StatusServiceUnavailable},
		},
		want:    map[types.NamespacedName]Reading{nn("a", "p"): {Watts: 200, GPUUtilization: nan, Source: SourceDCGM}},
		wantErr: []string{keplerKey, "503"},
	}, {
		name: "a failed DCGM power query keeps Kepler readings with DCGM utilization",
		answers: map[string]answer{
			powerKey:  {status: http.StatusBadRequest},
			utilKey:   {vector: []series{gpu("a", "p", "GPU-1", 60)}},
			keplerKey: {vector: []series{keplerPod("a", "p", 180)}},
		},
		want:    map[types.NamespacedName]Reading{nn("a", "p"): {Watts: 180, GPUUtilization: 0.6, Source: SourceKepler}},
		wantErr: []string{"`" + powerKey + "`"},
	}, {
		name: "every query failing returns no readings",
		answers: map[string]answer{
			powerKey:  {status: http.StatusInternalServerError},
			utilKey:   {status: http.StatusInternalServerError},
			keplerKey: {status: http.StatusInternalServerError},
		},
		wantErr: []string{powerKey, utilKey, keplerKey},
	}, {
		name:    "an answer that is not a vector is an error",
		answers: map[string]answer{powerKey: {matrix: true}},
		want:    map[types.NamespacedName]Reading{},
		wantErr: []string{powerKey, "returned a matrix, want a vector"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakePrometheus(t, tc.answers)
			p, err := NewPrometheus(PrometheusConfig{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.PodReadings(context.Background())
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateNaNs(), cmpopts.EquateApprox(0, 1e-9)); diff != "" {
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
		want: []string{powerKey, utilKey, `sum by (container_namespace, pod_name) (rate(kepler_container_joules_total{pod_name!=""}[1m]))`},
	}, {
		cfg:  PrometheusConfig{KeplerRateWindow: 90 * time.Second, KeplerMetric: "kepler_container_gpu_joules_total"},
		want: []string{powerKey, utilKey, `sum by (container_namespace, pod_name) (rate(kepler_container_gpu_joules_total{pod_name!=""}[1m30s]))`},
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
	expect("first call", 100, false, 3)
	srv.set(map[string]answer{powerKey: {vector: []series{gpu("a", "p", "GPU-1", 150)}}})
	clk.Step(time.Minute - time.Nanosecond)
	expect("within MaxAge", 100, false, 3)
	clk.Step(time.Nanosecond)
	expect("at MaxAge", 150, false, 6)

	// Failures are cached too, so a broken Prometheus is not asked once per reconcile.
	srv.set(map[string]answer{powerKey: {status: 500}, utilKey: {status: 500}, keplerKey: {status: 500}})
	clk.Step(time.Minute)
	expect("failing", 0, true, 9)
	srv.set(map[string]answer{powerKey: {vector: []series{gpu("a", "p", "GPU-1", 175)}}})
	clk.Step(30 * time.Second)
	expect("failure still cached", 0, true, 9)
	clk.Step(30 * time.Second)
	expect("recovered", 175, false, 12)

	// A caller's cancellation is not cached for the others.
	clk.Step(time.Minute)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.PodReadings(cancelled); err == nil {
		t.Error("cancelled context: no error")
	}
	before := len(srv.requests())
	expect("after a cancelled call", 175, false, before+3)

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
	if n := len(srv.requests()) - before; n != 3 {
		t.Errorf("20 concurrent callers sent %d queries, want 3 (one refresh)", n)
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
	p, err := NewPrometheus(PrometheusConfig{URL: srv.URL, BearerTokenFile: file})
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
		{cfg: PrometheusConfig{URL: "http://p", KeplerMetric: `x{a="b"}`}, wantErr: "KeplerMetric"},
		{cfg: PrometheusConfig{URL: "http://p", BearerTokenFile: missing}, wantErr: "BearerTokenFile"},
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
