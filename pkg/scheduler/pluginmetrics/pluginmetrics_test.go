package pluginmetrics

import (
	"testing"
	"time"

	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"
)

// Every call is observed, in the registry the scheduler's /metrics serves.
func TestEveryCallObserved(t *testing.T) {
	timer := For("KcloudTest", "Filter")
	for range 3 {
		timer.Since(time.Now().Add(-2 * time.Millisecond))
	}
	fams, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	for _, f := range fams {
		if f.GetName() != "kcloud_scheduler_plugin_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			count += m.GetHistogram().GetSampleCount()
			if m.GetHistogram().GetSampleSum() < 3*0.002 {
				t.Errorf("sum %g s, want at least 3 × 2 ms", m.GetHistogram().GetSampleSum())
			}
		}
	}
	if count != 3 {
		t.Errorf("observations gathered: %d, want 3", count)
	}
	if n, err := testutil.GetHistogramMetricCount(Duration.WithLabelValues("KcloudTest", "Filter")); err != nil || n != 3 {
		t.Errorf("count %d (%v), want 3", n, err)
	}
}
