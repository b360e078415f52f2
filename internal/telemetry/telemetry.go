// Package telemetry reads what GPU workloads really draw, so the operator can report measured power
// instead of the catalog model whenever a cluster runs the exporters for it. Prometheus is the one real
// source: NVIDIA's DCGM exporter for per-GPU power and utilization, Kepler's energy counters for pods that
// DCGM does not see. Callers fall back to the catalog model themselves when a pod has no reading.
package telemetry

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
)

// Where a pod's watts came from; shown in status so users know whether a figure is measured or modelled.
const (
	SourceDCGM    = "dcgm"
	SourceKepler  = "kepler"
	SourceCatalog = "catalog" // not produced here: the operator's label for its own model-based fallback
)

// Reading is what was measured for one pod.
type Reading struct {
	Watts          float64 // accelerator power attributed to the pod, W (DCGM: sum over the pod's GPUs; Kepler: rate of its energy counter)
	GPUUtilization float64 // 0..1, mean over the pod's GPUs; NaN when unknown
	Source         string  // SourceDCGM or SourceKepler (SourceCatalog is the caller's fallback)
}

// Source gives measured readings per pod. Implementations are safe for concurrent use.
type Source interface {
	// PodReadings returns a reading for each pod that has measured power. The map may be shared with
	// other callers: read it, never modify it. A partial failure returns what worked and an error.
	PodReadings(ctx context.Context) (map[types.NamespacedName]Reading, error)
	// Query evaluates a PromQL instant query that must return one scalar or a one-element vector (used by
	// the autoscaler for `prometheus`-type metrics).
	Query(ctx context.Context, promQL string) (float64, error)
}

// Static is a fixed Source, so code that consumes telemetry can be tested without a Prometheus server.
type Static struct {
	Readings map[types.NamespacedName]Reading
	Values   map[string]float64 // Query results keyed by the exact PromQL text
	Err      error              // returned by every call when set (with Readings, as a partial failure)
}

var _ Source = Static{}

// PodReadings returns s.Readings and s.Err.
func (s Static) PodReadings(context.Context) (map[types.NamespacedName]Reading, error) {
	return s.Readings, s.Err
}

// Query returns s.Values[promQL], or an error for a query it does not know.
func (s Static) Query(_ context.Context, promQL string) (float64, error) {
	if s.Err != nil {
		return 0, s.Err
	}
	v, ok := s.Values[promQL]
	if !ok {
		return 0, fmt.Errorf("static telemetry has no value for query %q", promQL)
	}
	return v, nil
}
