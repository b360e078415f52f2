package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"kcloud.io/optimizer/internal/telemetry"
	"kcloud.io/optimizer/pkg/model"
)

func TestMeasuredPower(t *testing.T) {
	modelled := model.PowerParts{HostIdle: 1, HostActive: 10, AcceleratorIdle: 100, AcceleratorActive: 1000}
	for _, tc := range []struct {
		name   string
		covers telemetry.Parts
		want   float64
	}{
		{"DCGM: whole devices measured, the host modelled", telemetry.Accelerators, 5000 + 1 + 10},
		{"a reading that does not say is DCGM's", 0, 5000 + 1 + 10},
		{"DCGM and Kepler 0.10's CPU zones: the host's idle share modelled", telemetry.Accelerators | telemetry.HostActive, 5000 + 1},
		{"Kepler 0.10's CPU zones alone: idle shares and devices modelled", telemetry.HostActive, 5000 + 1 + 100 + 1000},
		{"Kepler 0.10's GPU and CPU counters: the idle shares modelled", telemetry.AcceleratorActive | telemetry.HostActive, 5000 + 1 + 100},
		{"Kepler 0.9's container counter: nothing added", telemetry.AllParts, 5000},
	} {
		if got := MeasuredPower(telemetry.Reading{Watts: 5000, Covers: tc.covers}, modelled); got != tc.want {
			t.Errorf("%s: %v W, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPodFiguresStaleReadings(t *testing.T) {
	now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(now)
	node := a100Node("a100", true, false)
	pods := []*corev1.Pod{gpuPod("fresh", "a100", corev1.PodRunning, 1, 0, -1), gpuPod("stale", "a100", corev1.PodRunning, 1, 0, -1),
		gpuPod("never", "a100", corev1.PodRunning, 1, 0, -1), gpuPod("host", "a100", corev1.PodRunning, 1, 0, -1)}
	key := func(p *corev1.Pod) types.NamespacedName {
		return types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
	}
	lastSeen := now.Add(-DefaultTelemetryStaleAfter - time.Second)
	src := &switchable{s: telemetry.Static{Readings: map[types.NamespacedName]telemetry.Reading{
		key(pods[0]): {Watts: 300, Source: telemetry.SourceDCGM, At: now.Add(-time.Minute)},
		key(pods[1]): {Watts: 280, Source: telemetry.SourceDCGM, At: lastSeen},
		key(pods[3]): {Watts: 40, Covers: telemetry.HostActive, Source: telemetry.SourceKepler, At: now},
	}, Err: errors.New("kepler query failed")}}
	nodeIdx := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	if err := nodeIdx.Add(node); err != nil {
		t.Fatal(err)
	}
	f := New(nil, Options{Telemetry: src, Clock: clk, Nodes: IndexerStore{Indexer: nodeIdx}})
	ctx := context.Background()
	measured := f.Readings(ctx)
	if _, ok := measured[key(pods[1])]; ok {
		t.Errorf("Readings serves a reading older than %v: %v", DefaultTelemetryStaleAfter, measured)
	}
	if st := f.Telemetry(); !st.Configured || st.Err == nil || st.StaleAfter != DefaultTelemetryStaleAfter {
		t.Errorf("Telemetry() = %+v, want a configured source with the last read's error", st)
	}
	figs := map[string]Figures{}
	for _, p := range pods {
		fig, err := f.PodFigures(ctx, p, measured)
		if err != nil {
			t.Fatal(err)
		}
		figs[p.Name] = fig
	}
	catalogFig, err := f.PodFigures(ctx, pods[1], nil)
	if err != nil {
		t.Fatal(err)
	}
	e := f.Node(node)
	hostPod := figs["host"].Pod
	parts := model.AttributedPowerParts(&hostPod, &e.Capacity, &e.Econ)
	for _, tc := range []struct {
		pod, source string
		watts       float64
		stale       time.Time
	}{
		{"fresh", telemetry.SourceDCGM, 300 + parts.HostIdle + parts.HostActive, time.Time{}},
		{"stale", SourceCatalog, catalogFig.PowerWatts, lastSeen},
		{"never", SourceCatalog, catalogFig.PowerWatts, time.Time{}},
		{"host", telemetry.SourceKepler, 40 + parts.HostIdle + parts.AcceleratorIdle + parts.AcceleratorActive, time.Time{}},
	} {
		got := figs[tc.pod]
		if got.PowerSource != tc.source || got.PowerWatts != tc.watts || !got.PowerStale.Equal(tc.stale) {
			t.Errorf("%s: source %s, %v W, stale %v; want %s, %v W, stale %v", tc.pod, got.PowerSource, got.PowerWatts, got.PowerStale,
				tc.source, tc.watts, tc.stale)
		}
	}
	if catalogFig.PowerWatts <= parts.HostIdle+parts.HostActive || !catalogFig.PowerStale.IsZero() {
		t.Errorf("catalog figures %+v: want the model's whole draw and no staleness without readings", catalogFig)
	}
}
