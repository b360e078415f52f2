// Package pluginmetrics times the kcloud scheduler plugins at their extension points.
// kube-scheduler's own scheduler_plugin_execution_duration_seconds records one scheduling cycle in
// ten, through a buffer that drops what does not fit, which leaves a few hundred samples for a
// benchmark's tail; kcloud_scheduler_plugin_duration_seconds observes every call of the points that
// run once a cycle (PreFilter, Reserve, Permit, ...), so their p99 rests on every cycle, and every
// call of the per-node points (Filter, Score) in one cycle in NodeSampleEvery (Cycles).
package pluginmetrics

import (
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Duration is kcloud_scheduler_plugin_duration_seconds{plugin, extension_point}: buckets from
// 10 µs to about 0.1 s, finest where the plugins' target (1 ms) lies.
var Duration = metrics.NewHistogramVec(&metrics.HistogramOpts{
	Subsystem:      "kcloud_scheduler",
	Name:           "plugin_duration_seconds",
	Help:           "Duration of calls of a kcloud scheduler plugin at an extension point: every call of the once-a-cycle points, every call of one cycle in 8 at Filter and Score.",
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

// NodeSampleEvery is how often the per-node points are timed: every call of one cycle in this
// many. Timing a call costs two clock reads and a histogram observation, about as much as a Filter
// or Score that finds its node's placement cached, on every node of every cycle; one cycle in 8
// still gives each point a thousand observations per eight cycles at 1,000 nodes.
const NodeSampleEvery = 8

// Cycles picks the scheduling cycles whose per-node calls are timed: the first, then one in
// NodeSampleEvery.
type Cycles struct{ n atomic.Uint64 }

// Next reports whether the cycle that starts now is timed.
func (c *Cycles) Next() bool { return c.n.Add(1)%NodeSampleEvery == 1 }
