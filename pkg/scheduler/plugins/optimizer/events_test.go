package optimizer

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
)

// TestCustomResourceEventsParse: kube-scheduler watches a custom resource named in EventsToRegister
// only when the name reads as <plural>.<version>.<group>; one it cannot read is dropped with a log
// line, and pods refused for its limits would wait for the periodic flush.
func TestCustomResourceEventsParse(t *testing.T) {
	events, err := (&Plugin{}).EventsToRegister(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[schema.GroupVersionResource]bool{
		{Group: "kcloud.io", Version: "v1alpha1", Resource: "workloadoptimizers"}: false,
		{Group: "kcloud.io", Version: "v1alpha1", Resource: "costpolicies"}:       false,
		{Group: "kcloud.io", Version: "v1alpha1", Resource: "powerpolicies"}:      false,
	}
	for _, e := range events {
		name := string(e.Event.Resource)
		if !strings.Contains(name, ".") {
			continue // a built-in resource
		}
		gvr, _ := schema.ParseResourceArg(name)
		if gvr == nil {
			t.Errorf("%q does not parse as <plural>.<version>.<group>", name)
			continue
		}
		if _, ok := want[*gvr]; !ok {
			t.Errorf("%q reads as %v, not one of ours", name, *gvr)
		}
		want[*gvr] = true
	}
	for gvr, seen := range want {
		if !seen {
			t.Errorf("no event registered for %s", gvr)
		}
	}
}

// TestLimitsChangedHint: status writes within a budget period do not requeue waiting pods; a new,
// deleted or respecified object and a period that starts again do.
func TestLimitsChangedHint(t *testing.T) {
	start := metav1.NewTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	next := metav1.NewTime(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
	policy := func(generation int64, periodStart *metav1.Time, spent float64) *kcloudv1alpha1.CostPolicy {
		return &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Generation: generation},
			Status: kcloudv1alpha1.CostPolicyStatus{PeriodStart: periodStart, CurrentSpend: spent}}
	}
	optimizer := func(generation int64, periodStart metav1.Time) *kcloudv1alpha1.WorkloadOptimizer {
		return &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "w", Generation: generation},
			Status: kcloudv1alpha1.WorkloadOptimizerStatus{Budget: &kcloudv1alpha1.BudgetStatus{PeriodStart: periodStart}}}
	}
	unstructuredPolicy := func(periodStart string, spent float64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "p", "generation": int64(1)},
			"status": map[string]any{"periodStart": periodStart, "currentSpend": spent}}}
	}
	tests := []struct {
		name     string
		old, new any
		want     fwk.QueueingHint
	}{
		{"created", nil, policy(1, &start, 0), fwk.Queue},
		{"deleted", policy(1, &start, 0), nil, fwk.Queue},
		{"spend written", policy(1, &start, 1), policy(1, &start, 2), fwk.QueueSkip},
		{"status appears", policy(1, nil, 0), policy(1, &start, 0), fwk.Queue},
		{"spec changed", policy(1, &start, 1), policy(2, &start, 1), fwk.Queue},
		{"period rolled over", policy(1, &start, 5), policy(1, &next, 0), fwk.Queue},
		{"optimizer status written", optimizer(3, start), optimizer(3, start), fwk.QueueSkip},
		{"optimizer period rolled over", optimizer(3, start), optimizer(3, next), fwk.Queue},
		{"unstructured spend written", unstructuredPolicy("2026-12-01T00:00:00Z", 1), unstructuredPolicy("2026-12-01T00:00:00Z", 2), fwk.QueueSkip},
		{"unstructured period rolled over", unstructuredPolicy("2026-12-01T00:00:00Z", 1), unstructuredPolicy("2026-12-02T00:00:00Z", 0), fwk.Queue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := limitsChanged(klog.Background(), nil, tt.old, tt.new)
			if err != nil || got != tt.want {
				t.Errorf("limitsChanged = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
