package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"kcloud.io/optimizer/internal/metrics"
	"kcloud.io/optimizer/internal/telemetry"
)

// Each read of telemetry (not each cached answer) sets the telemetry metrics the alerts use.
func TestReadingsSetTelemetryMetrics(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))
	readings := map[types.NamespacedName]telemetry.Reading{
		{Namespace: "ml", Name: "train-0"}: {Watts: 300, Source: telemetry.SourceDCGM},
		{Namespace: "ml", Name: "train-1"}: {Watts: 280, Source: telemetry.SourceDCGM},
	}
	src := &switchable{s: telemetry.Static{Readings: readings}}
	f := New(nil, Options{Telemetry: src, Clock: clk, SnapshotMaxAge: time.Minute})

	f.Readings(context.Background())
	if v := testutil.ToFloat64(metrics.TelemetryUp); v != 1 {
		t.Errorf("kcloud_telemetry_up %v after a good read", v)
	}
	if v := testutil.ToFloat64(metrics.TelemetryMeasuredPods); v != 2 {
		t.Errorf("kcloud_telemetry_measured_pods %v, want 2", v)
	}
	good := float64(clk.Now().Unix())
	if v := testutil.ToFloat64(metrics.TelemetryLastSuccess); v != good {
		t.Errorf("last success %v, want %v", v, good)
	}

	// Prometheus fails; the cached answer is served until it is a minute old, then read again.
	src.s = telemetry.Static{Err: errors.New("prometheus: connection refused")}
	clk.Step(30 * time.Second)
	f.Readings(context.Background())
	if v := testutil.ToFloat64(metrics.TelemetryUp); v != 1 {
		t.Errorf("kcloud_telemetry_up %v while the cached read is fresh", v)
	}
	clk.Step(time.Minute)
	f.Readings(context.Background())
	if v := testutil.ToFloat64(metrics.TelemetryUp); v != 0 {
		t.Errorf("kcloud_telemetry_up %v after a failed read", v)
	}
	if v := testutil.ToFloat64(metrics.TelemetryMeasuredPods); v != 0 {
		t.Errorf("kcloud_telemetry_measured_pods %v after a read that measured nothing", v)
	}
	if v := testutil.ToFloat64(metrics.TelemetryLastSuccess); v != good {
		t.Errorf("last success %v after a failure, want it kept at %v", v, good)
	}
}

// switchable is a telemetry source whose answers the test changes.
type switchable struct{ s telemetry.Static }

func (w *switchable) PodReadings(ctx context.Context) (map[types.NamespacedName]telemetry.Reading, error) {
	return w.s.PodReadings(ctx)
}

func (w *switchable) Query(ctx context.Context, q string) (float64, error) { return w.s.Query(ctx, q) }
