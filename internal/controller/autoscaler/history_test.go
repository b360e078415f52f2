package autoscaler

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/telemetry"
)

func TestHistory(t *testing.T) {
	nan := math.NaN()
	type set struct {
		slot int64
		v    float64
	}
	for _, tc := range []struct {
		name string
		size int
		sets []set
		want []float64
	}{
		{"appends in order", 4, []set{{10, 1}, {11, 2}, {12, 3}}, []float64{1, 2, 3}},
		{"a skipped step is NaN", 4, []set{{10, 1}, {12, 3}}, []float64{1, nan, 3}},
		{"bounded: the oldest fall off", 3, []set{{10, 1}, {11, 2}, {12, 3}, {13, 4}}, []float64{2, 3, 4}},
		{"the same step overwrites", 4, []set{{10, 1}, {11, 2}, {11, 5}}, []float64{1, 5}},
		{"an older step still held overwrites", 4, []set{{10, 1}, {11, 2}, {12, 3}, {10, 7}}, []float64{7, 2, 3}},
		{"an older step no longer held is dropped", 2, []set{{10, 1}, {11, 2}, {12, 3}, {10, 7}}, []float64{2, 3}},
		{"a gap longer than the history starts over", 3, []set{{10, 1}, {11, 2}, {20, 3}}, []float64{3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory(tc.size, "")
			for _, s := range tc.sets {
				h.set(s.slot, s.v)
			}
			if diff := cmp.Diff(tc.want, h.series(), cmpopts.EquateNaNs()); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHistorySeed(t *testing.T) {
	step := 4 * time.Second
	at := func(sec int64) time.Time { return time.Unix(sec, 0) }
	h := newHistory(10, "q")
	// Points at steps 100, 101 and 103 (seconds 400, 404, 412); 102 missing; NaN values ignored.
	h.seed([]telemetry.Sample{{At: at(400), Value: 1}, {At: at(404), Value: 2}, {At: at(408), Value: math.NaN()}, {At: at(412), Value: 4}}, step)
	if diff := cmp.Diff([]float64{1, 2, math.NaN(), 4}, h.series(), cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("seeded series (-want +got):\n%s", diff)
	}
	if h.known() != 3 || h.lastSlot != 103 {
		t.Errorf("known %d last %d, want 3 and 103", h.known(), h.lastSlot)
	}
	if got := slotOf(at(-1), step); got != -1 {
		t.Errorf("slotOf(-1s) = %d, want -1", got)
	}
	if got := slotTime(103, step); !got.Equal(at(412)) {
		t.Errorf("slotTime(103) = %s", got)
	}
}

func TestQueries(t *testing.T) {
	args := QueryArgs{Namespace: "serving", Name: "llm", Target: "llm-server"}
	q := Queries{Latency: `avg(lat_ms{ns="{{.Namespace}}",optimizer="{{.Name}}"})`}
	if err := q.Parse(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m    kcloudv1alpha1.ScalingMetric
		want string
	}{
		{kcloudv1alpha1.ScalingMetric{Type: kcloudv1alpha1.MetricThroughput}, `sum(rate(http_requests_total{namespace="serving",pod=~"llm-server-.*"}[2m]))`},
		{kcloudv1alpha1.ScalingMetric{Type: kcloudv1alpha1.MetricLatency}, `avg(lat_ms{ns="serving",optimizer="llm"})`},
		{kcloudv1alpha1.ScalingMetric{Type: kcloudv1alpha1.MetricPrometheus, Query: "sum(x)"}, "sum(x)"},
		{kcloudv1alpha1.ScalingMetric{Type: kcloudv1alpha1.MetricCost}, ""},
	} {
		got, err := q.For(tc.m, args)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.m.Type, got, err, tc.want)
		}
	}
	bad := Queries{Throughput: `sum(x{a="{{.Nope}}"})`}
	if err := bad.Parse(); err == nil {
		t.Error("a template naming an unknown field parsed")
	}
	if got := demandQuery(args, kcloudv1alpha1.MetricLatency); got != `max(kcloud_autoscaler_demand{namespace="serving",name="llm",metric="latency"})` {
		t.Errorf("demandQuery = %s", got)
	}
}
