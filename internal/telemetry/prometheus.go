package telemetry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Defaults for PrometheusConfig's zero values.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultMaxAge           = 30 * time.Second
	DefaultKeplerRateWindow = time.Minute
	DefaultKeplerMetric     = "kepler_container_joules_total"
)

// Metric names of NVIDIA's dcgm-exporter: power in W and utilization in percent, one series per GPU.
const (
	dcgmPowerMetric = "DCGM_FI_DEV_POWER_USAGE"
	dcgmUtilMetric  = "DCGM_FI_DEV_GPU_UTIL"
)

// PrometheusConfig says where Prometheus is and how fresh readings must be.
type PrometheusConfig struct {
	// URL is Prometheus's base URL, e.g. http://prometheus.monitoring:9090 (required).
	URL string
	// Timeout bounds each query, on the client and on the server (default 5s).
	Timeout time.Duration
	// MaxAge is how long PodReadings serves a fetched set (and its error) before asking Prometheus again,
	// so that many reconciles share one round of queries (default 30s).
	MaxAge time.Duration
	// BearerTokenFile, when set, is read on every request (so rotated tokens are picked up) and sent as
	// `Authorization: Bearer <token>`, as a service-account token or an auth proxy needs.
	BearerTokenFile string
	// KeplerRateWindow is the range over which Kepler's energy counter is turned into watts (default 1m;
	// it should span at least two scrapes).
	KeplerRateWindow time.Duration
	// KeplerMetric is Kepler's per-container energy counter in joules (default kepler_container_joules_total,
	// all components; kepler_container_gpu_joules_total counts the accelerator alone where Kepler has it).
	KeplerMetric string
	// Clock decides when cached readings are stale (default the real clock); tests inject a fake one.
	Clock clock.PassiveClock
}

// Prometheus is the Source backed by a Prometheus server. Readings are cached for MaxAge; concurrent
// callers share one refresh.
type Prometheus struct {
	api          promv1.API
	url          string // redacted, for errors
	timeout      time.Duration
	maxAge       time.Duration
	clock        clock.PassiveClock
	keplerQuery  string
	refreshToken chan struct{} // a one-slot semaphore: whoever holds it refreshes, the others wait for it

	mu     sync.Mutex // guards cached
	cached *snapshot
}

type snapshot struct {
	at       time.Time
	readings map[types.NamespacedName]Reading
	err      error
}

var _ Source = (*Prometheus)(nil)

// NewPrometheus validates cfg, applies its defaults and returns a client; it does not contact the server,
// so an operator can start before Prometheus does.
func NewPrometheus(cfg PrometheusConfig) (*Prometheus, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("telemetry: Prometheus URL %q is not an absolute http:// or https:// URL", cfg.URL)
	}
	if cfg.Timeout < 0 || cfg.MaxAge < 0 || cfg.KeplerRateWindow < 0 {
		return nil, fmt.Errorf("telemetry: Prometheus Timeout (%v), MaxAge (%v) and KeplerRateWindow (%v) must not be negative",
			cfg.Timeout, cfg.MaxAge, cfg.KeplerRateWindow)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.KeplerRateWindow == 0 {
		cfg.KeplerRateWindow = DefaultKeplerRateWindow
	}
	if cfg.KeplerRateWindow < time.Second {
		return nil, fmt.Errorf("telemetry: Prometheus KeplerRateWindow %v is shorter than 1s", cfg.KeplerRateWindow)
	}
	if cfg.KeplerMetric == "" {
		cfg.KeplerMetric = DefaultKeplerMetric
	}
	if !model.LegacyValidation.IsValidMetricName(cfg.KeplerMetric) {
		return nil, fmt.Errorf("telemetry: Prometheus KeplerMetric %q is not a metric name", cfg.KeplerMetric)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	rt := promapi.DefaultRoundTripper
	if cfg.BearerTokenFile != "" {
		// Fail at start-up rather than on every query when the file is missing.
		if _, err := os.ReadFile(cfg.BearerTokenFile); err != nil {
			return nil, fmt.Errorf("telemetry: Prometheus BearerTokenFile: %w", err)
		}
		rt = bearerTokenFile{path: cfg.BearerTokenFile, next: rt}
	}
	client, err := promapi.NewClient(promapi.Config{Address: cfg.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("telemetry: Prometheus client for %s: %w", u.Redacted(), err)
	}
	return &Prometheus{
		api:     promv1.NewAPI(client),
		url:     u.Redacted(),
		timeout: cfg.Timeout,
		maxAge:  cfg.MaxAge,
		clock:   cfg.Clock,
		// Summed by pod: Kepler counts per container (and per mode, dynamic and idle, in some versions).
		keplerQuery: fmt.Sprintf(`sum by (container_namespace, pod_name) (rate(%s{pod_name!=""}[%s]))`,
			cfg.KeplerMetric, model.Duration(cfg.KeplerRateWindow)),
		refreshToken: make(chan struct{}, 1),
	}, nil
}

// PodReadings returns measured power per pod: DCGM's where the DCGM exporter maps GPUs to the pod, else
// Kepler's. The result (and error) of one refresh is served to every caller for MaxAge.
func (p *Prometheus) PodReadings(ctx context.Context) (map[types.NamespacedName]Reading, error) {
	if s := p.fresh(); s != nil {
		return s.readings, s.err
	}
	select {
	case p.refreshToken <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for telemetry from %s: %w", p.url, ctx.Err())
	}
	defer func() { <-p.refreshToken }()
	// Someone may have refreshed while we waited.
	if s := p.fresh(); s != nil {
		return s.readings, s.err
	}
	start := p.clock.Now()
	readings, err := p.fetch(ctx)
	// A caller that gave up must not leave its cancellation cached for everyone else.
	if ctx.Err() == nil {
		p.mu.Lock()
		p.cached = &snapshot{at: start, readings: readings, err: err}
		p.mu.Unlock()
	}
	return readings, err
}

func (p *Prometheus) fresh() *snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cached != nil && p.clock.Since(p.cached.at) < p.maxAge {
		return p.cached
	}
	return nil
}

// Query evaluates promQL at the server's current time and returns its single value.
func (p *Prometheus) Query(ctx context.Context, promQL string) (float64, error) {
	return p.QueryAt(ctx, promQL, time.Time{})
}

// QueryAt evaluates promQL at the instant at (the autoscaler's evaluation time, so that a decision
// reads the step it is made for; the server's now when zero) and returns its single value.
func (p *Prometheus) QueryAt(ctx context.Context, promQL string, at time.Time) (float64, error) {
	v, err := p.instant(ctx, promQL, at)
	if err != nil {
		return 0, err
	}
	switch v := v.(type) {
	case *model.Scalar:
		return float64(v.Value), nil
	case model.Vector:
		if len(v) != 1 {
			return 0, fmt.Errorf("query `%s` at %s returned %d series, want exactly one", promQL, p.url, len(v))
		}
		return float64(v[0].Value), nil
	default:
		return 0, fmt.Errorf("query `%s` at %s returned a %s, want a scalar or a one-element vector", promQL, p.url, v.Type())
	}
}

// instant runs one instant query at at; a zero at is the server's "now" (not our clock's: a fake clock
// must not move a rate window away from the data).
func (p *Prometheus) instant(ctx context.Context, promQL string, at time.Time) (model.Value, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	// Warnings (e.g. partial remote-read data) carry nothing a caller could act on, so they are dropped.
	v, _, err := p.api.Query(ctx, promQL, at, promv1.WithTimeout(p.timeout))
	if err != nil {
		return nil, fmt.Errorf("querying `%s` at %s: %w", promQL, p.url, err)
	}
	return v, nil
}

// Vector evaluates promQL at the server's current time and returns every series of the resulting
// instant vector with its labels (the price source reads OpenCost's per-node series this way).
func (p *Prometheus) Vector(ctx context.Context, promQL string) (model.Vector, error) {
	return p.vector(ctx, promQL)
}

func (p *Prometheus) vector(ctx context.Context, promQL string) (model.Vector, error) {
	v, err := p.instant(ctx, promQL, time.Time{})
	if err != nil {
		return nil, err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("query `%s` at %s returned a %s, want a vector", promQL, p.url, v.Type())
	}
	return vec, nil
}

// fetch runs the three queries in parallel and merges them; a failed query costs only its own part.
func (p *Prometheus) fetch(ctx context.Context) (map[types.NamespacedName]Reading, error) {
	queries := []string{dcgmPowerMetric, dcgmUtilMetric, p.keplerQuery}
	results := make([]model.Vector, len(queries))
	errs := make([]error, len(queries))
	var wg sync.WaitGroup
	for i, q := range queries {
		wg.Go(func() { results[i], errs[i] = p.vector(ctx, q) })
	}
	wg.Wait()
	if errs[0] != nil && errs[1] != nil && errs[2] != nil {
		return nil, errors.Join(errs...)
	}
	return merge(results[0], results[1], results[2]), errors.Join(errs...)
}

// merge builds readings from DCGM power and utilization per GPU and Kepler watts per pod. DCGM wins for
// a pod both report: it measures the accelerator itself, Kepler estimates. DCGM utilization is kept for
// Kepler-powered pods too. A pod with utilization but no power anywhere gets no reading, since callers
// need watts.
func merge(dcgmPower, dcgmUtil, kepler model.Vector) map[types.NamespacedName]Reading {
	power := perPodGPUs(dcgmPower)
	util := perPodGPUs(dcgmUtil)
	out := make(map[types.NamespacedName]Reading, len(power)+len(kepler))
	utilization := func(pod types.NamespacedName) float64 {
		gpus := util[pod]
		if len(gpus) == 0 {
			return math.NaN()
		}
		var sum float64
		for _, pct := range gpus {
			sum += pct
		}
		return sum / float64(len(gpus)) / 100
	}
	for pod, gpus := range power {
		var watts float64
		for _, w := range gpus {
			watts += w
		}
		out[pod] = Reading{Watts: watts, GPUUtilization: utilization(pod), Source: SourceDCGM}
	}
	for _, s := range kepler {
		pod := types.NamespacedName{Namespace: string(s.Metric["container_namespace"]), Name: string(s.Metric["pod_name"])}
		w := float64(s.Value)
		if pod.Namespace == "" || pod.Name == "" || math.IsNaN(w) {
			continue
		}
		if _, ok := out[pod]; ok {
			continue
		}
		out[pod] = Reading{Watts: w, GPUUtilization: utilization(pod), Source: SourceKepler}
	}
	return out
}

// perPodGPUs groups DCGM samples by the pod they are mapped to and by GPU, so that the same GPU scraped
// twice (two jobs, two Prometheus replicas behind Thanos) counts once.
//
// dcgm-exporter labels a GPU's series with its pod's `namespace` and `pod`. When Prometheus scrapes it
// with honor_labels=false and the target carries `namespace`/`pod` of its own (the exporter's pod), the
// exporter's labels arrive as `exported_namespace`/`exported_pod` instead, and `namespace`/`pod` name the
// exporter. So within a job where any series has exported labels, only exported labels identify a
// workload; elsewhere the plain ones do. Device-level power of a shared (MIG, time-sliced) GPU is
// attributed whole to each pod DCGM maps to it.
func perPodGPUs(vec model.Vector) map[types.NamespacedName]map[string]float64 {
	renamedJobs := map[model.LabelValue]bool{}
	for _, s := range vec {
		if s.Metric["exported_pod"] != "" || s.Metric["exported_namespace"] != "" {
			renamedJobs[s.Metric["job"]] = true
		}
	}
	out := map[types.NamespacedName]map[string]float64{}
	for _, s := range vec {
		nsLabel, podLabel := model.LabelName("namespace"), model.LabelName("pod")
		if renamedJobs[s.Metric["job"]] {
			nsLabel, podLabel = "exported_namespace", "exported_pod"
		}
		pod := types.NamespacedName{Namespace: string(s.Metric[nsLabel]), Name: string(s.Metric[podLabel])}
		v := float64(s.Value)
		if pod.Namespace == "" || pod.Name == "" || math.IsNaN(v) {
			continue
		}
		gpus := out[pod]
		if gpus == nil {
			gpus = map[string]float64{}
			out[pod] = gpus
		}
		gpus[gpuKey(s.Metric)] = v
	}
	return out
}

// gpuKey identifies the device behind a DCGM series: its UUID (and MIG instance) when exported, else the
// host and index, else the whole label set.
func gpuKey(m model.Metric) string {
	switch {
	case m["UUID"] != "":
		return "uuid/" + string(m["UUID"]) + "/" + string(m["GPU_I_ID"])
	case m["gpu"] != "" && m["Hostname"] != "":
		return "host/" + string(m["Hostname"]) + "/" + string(m["gpu"]) + "/" + string(m["GPU_I_ID"])
	default:
		return "series/" + m.String()
	}
}

// bearerTokenFile sends the token in path with every request.
type bearerTokenFile struct {
	path string
	next http.RoundTripper
}

func (b bearerTokenFile) RoundTrip(req *http.Request) (*http.Response, error) {
	token, err := os.ReadFile(b.path)
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("reading Prometheus bearer token: %w", err)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	return b.next.RoundTrip(req)
}

// Sample is one point of a range query.
type Sample struct {
	At    time.Time
	Value float64
}

// QueryRange evaluates promQL at every step from start to end (both included) and returns the points
// of its single series, oldest first; steps without a value are left out. No series at all is no
// points and no error (nothing recorded yet); more than one is an error.
func (p *Prometheus) QueryRange(ctx context.Context, promQL string, start, end time.Time, step time.Duration) ([]Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, _, err := p.api.QueryRange(ctx, promQL, promv1.Range{Start: start, End: end, Step: step}, promv1.WithTimeout(p.timeout))
	if err != nil {
		return nil, fmt.Errorf("querying `%s` from %s to %s at %s: %w", promQL, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), p.url, err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("range query `%s` at %s returned a %s, want a matrix", promQL, p.url, v.Type())
	}
	switch len(m) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("range query `%s` at %s returned %d series, want at most one", promQL, p.url, len(m))
	}
	out := make([]Sample, 0, len(m[0].Values))
	for _, sp := range m[0].Values {
		out = append(out, Sample{At: sp.Timestamp.Time(), Value: float64(sp.Value)})
	}
	return out, nil
}
