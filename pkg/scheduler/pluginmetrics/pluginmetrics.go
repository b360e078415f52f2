// Package pluginmetrics times the kcloud scheduler plugins at every call of every extension point.
// kube-scheduler's own scheduler_plugin_execution_duration_seconds records one scheduling cycle in
// ten, through a buffer that drops what does not fit, which leaves a few hundred samples for a
// benchmark's tail; kcloud_scheduler_plugin_duration_seconds observes every call, so a p99 rests
// on every cycle.
package pluginmetrics

import (
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Duration is kcloud_scheduler_plugin_duration_seconds{plugin, extension_point}: buckets from
// 10 µs to about 0.1 s, finest where the plugins' target (1 ms) lies.
var Duration = metrics.NewHistogramVec(&metrics.HistogramOpts{
	Subsystem:      "kcloud_scheduler",
	Name:           "plugin_duration_seconds",
	Help:           "Duration of each call of a kcloud scheduler plugin at an extension point, every call observed.",
	Buckets:        metrics.ExponentialBuckets(1e-5, 1.5, 24),
	StabilityLevel: metrics.ALPHA,
}, []string{"plugin", "extension_point"})

var register sync.Once

// Timer observes one plugin's calls at one extension point.
type Timer struct{ o metrics.ObserverMetric }

// For returns the timer of a plugin's extension point, registering the metric with the scheduler's
// registry (the one its /metrics serves) on first use.
func For(plugin, point string) Timer {
	register.Do(func() { legacyregistry.MustRegister(Duration) })
	return Timer{Duration.WithLabelValues(plugin, point)}
}

// Since observes the time from start; `defer t.Since(time.Now())` times a call.
func (t Timer) Since(start time.Time) {
	if t.o != nil {
		t.o.Observe(time.Since(start).Seconds())
	}
}
