package autoscaler

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/telemetry"
	"kcloud.io/optimizer/pkg/model"
)

// obs is an observation as a comparable value.
type obs struct {
	Value, Demand float64
	Err           string
}

func toObs(o observation) obs {
	out := obs{Value: o.value, Demand: o.demand}
	if o.err != nil {
		out.Err = o.err.Error()
	}
	return out
}

func TestCostPercent(t *testing.T) {
	unset := "a cost metric is a percentage of costConstraints.maxCostPerHour, which is not set"
	for _, tc := range []struct {
		name string
		cc   *kcloudv1alpha1.CostConstraints
		want obs
	}{
		{"5 USD/h of 20 is 25%", &kcloudv1alpha1.CostConstraints{MaxCostPerHour: ptr.To(20.0)}, obs{Value: 25}},
		{"no cost constraints", nil, obs{Err: unset}},
		{"no maxCostPerHour", &kcloudv1alpha1.CostConstraints{BudgetLimit: ptr.To(100.0)}, obs{Err: unset}},
		{"a zero maxCostPerHour", &kcloudv1alpha1.CostConstraints{MaxCostPerHour: ptr.To(0.0)}, obs{Err: unset}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, toObs(costPercent(5, tc.cc))); diff != "" {
				t.Errorf("costPercent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMeanGPUUtilization(t *testing.T) {
	pod := func(name string, running bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ai", Name: name}}
		if running {
			p.Spec.NodeName, p.Status.Phase = "gpu-1", corev1.PodRunning
		}
		return p
	}
	key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ai", Name: name} }
	readings := map[types.NamespacedName]telemetry.Reading{
		key("a"): {GPUUtilization: 0.8}, key("b"): {GPUUtilization: 0.4},
		key("c"): {GPUUtilization: math.NaN()}, key("pending"): {GPUUtilization: 1},
	}
	none := "no GPU utilization measured for the target's running pods (needs --prometheus-url with the DCGM exporter)"
	for _, tc := range []struct {
		name string
		pods []*corev1.Pod
		want obs
	}{
		// Mean of 80% and 40%: 60%; demand 60% x 2 replicas = 120.
		{"the mean over the measured running pods", []*corev1.Pod{pod("a", true), pod("b", true), pod("c", true), pod("d", true), pod("pending", false)},
			obs{Value: 60, Demand: 120}},
		{"one pod", []*corev1.Pod{pod("a", true)}, obs{Value: 80, Demand: 80}},
		{"nothing measured", []*corev1.Pod{pod("c", true), pod("pending", false)}, obs{Err: none}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := toObs(meanGPUUtilization(tc.pods, readings))
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })); diff != "" {
				t.Errorf("meanGPUUtilization (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUsableDemands(t *testing.T) {
	nan := math.NaN()
	demands := []model.MetricDemand{
		{Metric: "throughput", Demand: []float64{nan, 3}},
		{Metric: "latency", Demand: []float64{nan, nan}},
		{Metric: "prometheus", Demand: []float64{2, nan}},
		{Metric: "gpuUtilization"},
	}
	if got := usableDemands(demands); got != 2 {
		t.Errorf("usableDemands = %d, want 2 (throughput and prometheus)", got)
	}
}
