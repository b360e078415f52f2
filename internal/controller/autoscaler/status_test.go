package autoscaler

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/model"
)

func TestBuildStatus(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	earlier := metav1.NewTime(now.Add(-time.Hour))
	nan := math.NaN()
	decision := model.ScaleDecision{DesiredReplicas: 3, Recommendation: 4, Metric: "throughput", Demand: 350.123456,
		Forecast: []float64{100.00004, nan, 320.55555}, Method: model.ForecastHoltWinters,
		Limit: model.LimitMaxReplicas, Reason: "held"}
	h := newHistory(10, "q")
	h.set(1, 1)
	h.set(3, 2)
	wo := func(old *kcloudv1alpha1.AutoScalingStatus) *kcloudv1alpha1.WorkloadOptimizer {
		return &kcloudv1alpha1.WorkloadOptimizer{Status: kcloudv1alpha1.WorkloadOptimizerStatus{AutoScaling: old}}
	}
	for _, tc := range []struct {
		name string
		st   state
		want *kcloudv1alpha1.AutoScalingStatus
	}{
		{name: "scaled: the decision, rounded to 4 decimals, with its forecast",
			st: state{wo: wo(&kcloudv1alpha1.AutoScalingStatus{LastScaleTime: &earlier}), as: &kcloudv1alpha1.AutoScaling{}, now: now,
				scale: &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 2}}, decision: decision, scaled: true,
				mem: &memory{histories: map[kcloudv1alpha1.MetricType]*history{kcloudv1alpha1.MetricThroughput: h}}},
			want: &kcloudv1alpha1.AutoScalingStatus{Mode: kcloudv1alpha1.ScalingPredictive, LastEvaluationTime: &metav1.Time{Time: now},
				LastScaleTime: &metav1.Time{Time: now}, CurrentReplicas: 2, DesiredReplicas: 3, Recommendation: 4,
				Metric: kcloudv1alpha1.MetricThroughput, Demand: 350.1235, Limit: "maxReplicas", Reason: "held",
				// Three steps of 30s; the NaN point left out; two known points in the history.
				Forecast: &kcloudv1alpha1.ForecastStatus{Method: string(model.ForecastHoltWinters), HorizonSeconds: 90,
					Values: []float64{100, 320.5556}, Peak: 320.5556, HistoryPoints: 2}}},
		{name: "not scaled: the last scale time is kept",
			st: state{wo: wo(&kcloudv1alpha1.AutoScalingStatus{LastScaleTime: &earlier}), as: &kcloudv1alpha1.AutoScaling{AutoScalingBehavior: kcloudv1alpha1.AutoScalingBehavior{Mode: kcloudv1alpha1.ScalingReactive}},
				now: now, scale: &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 3}},
				decision: model.ScaleDecision{DesiredReplicas: 3, Recommendation: 3, Metric: "latency", Demand: 90, Reason: "steady"}},
			want: &kcloudv1alpha1.AutoScalingStatus{Mode: kcloudv1alpha1.ScalingReactive, LastEvaluationTime: &metav1.Time{Time: now},
				LastScaleTime: &earlier, CurrentReplicas: 3, DesiredReplicas: 3, Recommendation: 3,
				Metric: kcloudv1alpha1.MetricLatency, Demand: 90, Reason: "steady"}},
		{name: "no scale read: the replica counts of the last status",
			st: state{wo: wo(&kcloudv1alpha1.AutoScalingStatus{CurrentReplicas: 2, DesiredReplicas: 5, Recommendation: 5, Reason: "old"}),
				as: &kcloudv1alpha1.AutoScaling{}, now: now, decision: decision},
			want: &kcloudv1alpha1.AutoScalingStatus{Mode: kcloudv1alpha1.ScalingPredictive, LastEvaluationTime: &metav1.Time{Time: now},
				CurrentReplicas: 2, DesiredReplicas: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Reconciler{Step: 30 * time.Second}
			if diff := cmp.Diff(tc.want, r.buildStatus(&tc.st)); diff != "" {
				t.Errorf("buildStatus (-want +got):\n%s", diff)
			}
		})
	}
}

func TestForecastPeak(t *testing.T) {
	nan := math.NaN()
	d := model.ScaleDecision{Forecast: []float64{nan, nan}, Method: model.ForecastLinear}
	if f := forecastStatus(d, time.Minute); f.Peak != 0 || len(f.Values) != 0 || f.HorizonSeconds != 120 {
		t.Errorf("all-NaN forecast: %+v, want peak 0, no values, 120s", f)
	}
	for _, tc := range []struct {
		values []float64
		want   float64
		ok     bool
	}{
		{[]float64{1, nan, 7, 3}, 7, true},
		{[]float64{-2, -5}, -2, true},
		{[]float64{nan}, 0, false},
		{nil, 0, false},
	} {
		got, ok := peakOf(tc.values)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("peakOf(%v) = %v, %v; want %v, %v", tc.values, got, ok, tc.want, tc.ok)
		}
	}
}
