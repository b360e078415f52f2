package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
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
	DefaultRememberFor      = time.Hour
)

// Kepler versions whose series PrometheusConfig.Kepler names.
const (
	// Kepler010 is Kepler 0.10 and later: kepler_pod_cpu_joules_total, the pod's share of the active
	// (above idle) energy of each RAPL zone, and, where Kepler's GPU support is enabled,
	// kepler_pod_gpu_joules_total, its share of its GPUs' active energy.
	Kepler010 = "0.10"
	// Kepler09 is Kepler 0.9 and earlier: kepler_container_joules_total, all of a container's energy
	// (package, DRAM, GPU and other components, idle share included).
	Kepler09 = "0.9"
)

// Series read from Prometheus. dcgm-exporter: power in W (a sample), energy in mJ (a counter since the
// driver loaded; not every exporter configuration collects it), utilization in percent, one series per
// GPU (or MIG instance). Kepler: joules counters.
const (
	dcgmPowerMetric    = "DCGM_FI_DEV_POWER_USAGE"
	dcgmEnergyMetric   = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
	dcgmUtilMetric     = "DCGM_FI_DEV_GPU_UTIL"
	keplerPodCPUMetric = "kepler_pod_cpu_joules_total"
	keplerPodGPUMetric = "kepler_pod_gpu_joules_total"
	kepler09Metric     = "kepler_container_joules_total"
	// keplerHostZones are the RAPL zones summed for a pod's host power: package (a socket's cores and
	// uncore, aggregated over sockets) and dram. Kepler also exports core, uncore, pp0 and pp1, which
	// lie within package, and psys, which spans package, DRAM and more: adding any of them would count
	// the same energy twice.
	keplerHostZones = "package|dram"
)

// PrometheusConfig says where Prometheus is, how to reach it and how fresh readings must be.
type PrometheusConfig struct {
	// URL is Prometheus's base URL, e.g. http://prometheus.monitoring:9090 (required).
	URL string
	// HTTP is the bearer token and TLS settings of the connection.
	HTTP HTTPConfig
	// Timeout bounds each query, on the client and on the server (default 5s).
	Timeout time.Duration
	// MaxAge is how long PodReadings serves a fetched set (and its error) before asking Prometheus again,
	// so that many reconciles share one round of queries (default 30s).
	MaxAge time.Duration
	// KeplerRateWindow is the range over which energy counters (Kepler's, DCGM's) are turned into
	// watts (default 1m; it should span at least two scrapes).
	KeplerRateWindow time.Duration
	// Kepler is the Kepler version whose series are read: Kepler010 (the default) or Kepler09.
	Kepler string
	// RememberFor is how long a pod's last reading is kept, with its time, after Prometheus stops
	// reporting the pod (default 1h), so that callers can tell a stale measurement from none.
	RememberFor time.Duration
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
	rememberFor  time.Duration
	clock        clock.PassiveClock
	queries      powerQueries
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
	if cfg.Timeout < 0 || cfg.MaxAge < 0 || cfg.KeplerRateWindow < 0 || cfg.RememberFor < 0 {
		return nil, fmt.Errorf("telemetry: Prometheus Timeout (%v), MaxAge (%v), KeplerRateWindow (%v) and RememberFor (%v) must not be negative",
			cfg.Timeout, cfg.MaxAge, cfg.KeplerRateWindow, cfg.RememberFor)
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultTimeout)
	cfg.MaxAge = cmp.Or(cfg.MaxAge, DefaultMaxAge)
	cfg.KeplerRateWindow = cmp.Or(cfg.KeplerRateWindow, DefaultKeplerRateWindow)
	cfg.RememberFor = cmp.Or(cfg.RememberFor, DefaultRememberFor)
	if cfg.KeplerRateWindow < time.Second {
		return nil, fmt.Errorf("telemetry: Prometheus KeplerRateWindow %v is shorter than 1s", cfg.KeplerRateWindow)
	}
	queries, err := newPowerQueries(cmp.Or(cfg.Kepler, Kepler010), model.Duration(cfg.KeplerRateWindow))
	if err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	rt, err := cfg.HTTP.RoundTripper()
	if err != nil {
		return nil, fmt.Errorf("telemetry: Prometheus client for %s: %w", u.Redacted(), err)
	}
	client, err := promapi.NewClient(promapi.Config{Address: cfg.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("telemetry: Prometheus client for %s: %w", u.Redacted(), err)
	}
	return &Prometheus{
		api:          promv1.NewAPI(client),
		url:          u.Redacted(),
		timeout:      cfg.Timeout,
		maxAge:       cfg.MaxAge,
		rememberFor:  cfg.RememberFor,
		clock:        cfg.Clock,
		queries:      queries,
		refreshToken: make(chan struct{}, 1),
	}, nil
}

// powerQueries are the PromQL expressions of one refresh; an empty one is not sent.
type powerQueries struct {
	dcgmPower, dcgmEnergy, dcgmUtil string
	keplerHost, keplerGPU           string // Kepler010
	keplerWhole                     string // Kepler09
}

func newPowerQueries(kepler string, window model.Duration) (powerQueries, error) {
	q := powerQueries{
		dcgmPower: dcgmPowerMetric,
		// mJ/s is mW: per GPU, with the GPU's labels, like the power samples it replaces.
		dcgmEnergy: fmt.Sprintf("rate(%s[%s]) / 1000", dcgmEnergyMetric, window),
		dcgmUtil:   dcgmUtilMetric,
	}
	// Summed by pod: per zone (and per state, running or terminated, as a pod's series move).
	switch kepler {
	case Kepler010:
		q.keplerHost = fmt.Sprintf(`sum by (pod_namespace, pod_name) (rate(%s{pod_name!="",zone=~"%s"}[%s]))`,
			keplerPodCPUMetric, keplerHostZones, window)
		q.keplerGPU = fmt.Sprintf(`sum by (pod_namespace, pod_name) (rate(%s{pod_name!=""}[%s]))`, keplerPodGPUMetric, window)
	case Kepler09:
		// Summed by pod: Kepler 0.9 counts per container and per mode (dynamic and idle).
		q.keplerWhole = fmt.Sprintf(`sum by (container_namespace, pod_name) (rate(%s{pod_name!=""}[%s]))`, kepler09Metric, window)
	default:
		return q, fmt.Errorf("telemetry: Kepler version %q: want %s (0.10 and later) or %s (0.9 and earlier)", kepler, Kepler010, Kepler09)
	}
	return q, nil
}

// PodReadings returns measured power per pod (see merge), each with the time it was measured. A pod
// Prometheus no longer reports keeps its last reading, with that reading's time, for RememberFor; so
// does every pod while Prometheus fails. The result (and error) of one refresh is served to every
// caller for MaxAge.
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
	readings, err := p.fetch(ctx, start)
	// A caller that gave up must not leave its cancellation cached for everyone else.
	if ctx.Err() != nil {
		return readings, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cached != nil {
		for pod, r := range p.cached.readings {
			if _, now := readings[pod]; !now && start.Sub(r.At) < p.rememberFor {
				if readings == nil {
					readings = map[types.NamespacedName]Reading{}
				}
				readings[pod] = r
			}
		}
	}
	p.cached = &snapshot{at: start, readings: readings, err: err}
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

// fetch runs the refresh's queries in parallel and merges them, as measured at at; a failed query
// costs only its own part.
func (p *Prometheus) fetch(ctx context.Context, at time.Time) (map[types.NamespacedName]Reading, error) {
	q := p.queries
	exprs := []*string{&q.dcgmPower, &q.dcgmEnergy, &q.dcgmUtil, &q.keplerHost, &q.keplerGPU, &q.keplerWhole}
	results := make([]model.Vector, len(exprs))
	errs := make([]error, len(exprs))
	failed := 0
	var wg sync.WaitGroup
	for i, e := range exprs {
		if *e == "" {
			continue
		}
		wg.Go(func() { results[i], errs[i] = p.vector(ctx, *e) })
	}
	wg.Wait()
	sent := 0
	for i, e := range exprs {
		if *e != "" {
			sent++
			if errs[i] != nil {
				failed++
			}
		}
	}
	if failed == sent {
		return nil, errors.Join(errs...)
	}
	v := measured{dcgmPower: results[0], dcgmEnergy: results[1], dcgmUtil: results[2],
		keplerHost: results[3], keplerGPU: results[4], keplerWhole: results[5]}
	return v.merge(at), errors.Join(errs...)
}

// measured are the answers of one refresh.
type measured struct {
	dcgmPower, dcgmEnergy, dcgmUtil    model.Vector // per GPU
	keplerHost, keplerGPU, keplerWhole model.Vector // per pod
}

// merge builds readings, measured at at, from:
//   - DCGM, per GPU: the rate of its energy counter where the exporter has one, else its sampled power;
//     summed over the pod's GPUs, covering the accelerators whole (idle included);
//   - Kepler 0.10+, per pod: its GPU counter (the accelerators' active power) for a pod DCGM does not
//     report, and its CPU counter's package and DRAM zones (the host's active power) for any pod;
//   - Kepler 0.9, per pod: the container counter (everything the pod draws) for a pod DCGM does not
//     report (where DCGM does, its figure for the accelerators is kept and the host is modelled).
//
// DCGM utilization is kept for Kepler-powered pods too. A pod with utilization but no power anywhere
// gets no reading, since callers need watts.
func (v measured) merge(at time.Time) map[types.NamespacedName]Reading {
	out := map[types.NamespacedName]Reading{}
	util := perPodGPUs(v.dcgmUtil)
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
	// Energy where the GPU has it, the sample elsewhere; a GPU is one key in either.
	gpus := perPodGPUs(v.dcgmPower)
	for pod, energy := range perPodGPUs(v.dcgmEnergy) {
		if gpus[pod] == nil {
			gpus[pod] = map[string]float64{}
		}
		maps.Copy(gpus[pod], energy)
	}
	for pod, devices := range gpus {
		var watts float64
		for _, w := range devices {
			watts += w
		}
		out[pod] = Reading{Watts: watts, Covers: Accelerators, GPUUtilization: utilization(pod), Source: SourceDCGM, At: at}
	}
	add := func(vec model.Vector, nsLabel model.LabelName, parts Parts, onlyUnmeasured bool) {
		for pod, w := range perPod(vec, nsLabel) {
			r, ok := out[pod]
			switch {
			case !ok:
				out[pod] = Reading{Watts: w, Covers: parts, GPUUtilization: utilization(pod), Source: SourceKepler, At: at}
			case onlyUnmeasured || r.Covers&parts != 0: // DCGM (or Kepler's other counter) measured it already
			default:
				r.Watts += w
				r.Covers |= parts
				if r.Source == SourceDCGM {
					r.Source = SourceDCGMKepler
				}
				out[pod] = r
			}
		}
	}
	add(v.keplerGPU, "pod_namespace", AcceleratorActive, true)
	add(v.keplerHost, "pod_namespace", HostActive, false)
	add(v.keplerWhole, "container_namespace", AllParts, true)
	return out
}

// perPod is Kepler's per-pod watts, keyed by nsLabel and pod_name; series without a pod, and NaN ones,
// are left out.
func perPod(vec model.Vector, nsLabel model.LabelName) map[types.NamespacedName]float64 {
	out := map[types.NamespacedName]float64{}
	for _, s := range vec {
		pod := types.NamespacedName{Namespace: string(s.Metric[nsLabel]), Name: string(s.Metric["pod_name"])}
		w := float64(s.Value)
		if pod.Namespace == "" || pod.Name == "" || math.IsNaN(w) {
			continue
		}
		out[pod] += w
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

// gpuKey identifies the device behind a DCGM series, whichever metric it is of: its UUID (and MIG
// instance) when exported, else the host and index, else the label set without the metric's name.
func gpuKey(m model.Metric) string {
	switch {
	case m["UUID"] != "":
		return "uuid/" + string(m["UUID"]) + "/" + string(m["GPU_I_ID"])
	case m["gpu"] != "" && m["Hostname"] != "":
		return "host/" + string(m["Hostname"]) + "/" + string(m["gpu"]) + "/" + string(m["GPU_I_ID"])
	default:
		labels := m.Clone()
		delete(labels, model.MetricNameLabel)
		return "series/" + labels.String()
	}
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
