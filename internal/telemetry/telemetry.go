// Package telemetry reads what GPU workloads really draw, so the operator can report measured power
// instead of the catalog model whenever a cluster runs the exporters for it. Prometheus is the one real
// source: NVIDIA's DCGM exporter for per-GPU power (its energy counter where present) and utilization,
// Kepler's energy counters for the host's part of a pod's draw (and for GPUs DCGM does not see). Each
// reading says which parts of the draw it measures; callers model the rest, and fall back to the
// catalog model themselves when a pod has no reading.
package telemetry

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Where a pod's watts came from; shown in status so users know whether a figure is measured or modelled.
const (
	SourceDCGM       = "dcgm"
	SourceKepler     = "kepler"
	SourceDCGMKepler = "dcgm+kepler" // accelerators from DCGM, the host's activity from Kepler
	SourceCatalog    = "catalog"     // not produced here: the operator's label for its own model-based fallback
)

// Parts are the parts of a pod's draw that a reading measures; the caller models the others (see
// model.PowerParts), so that nothing is counted twice and nothing is left out.
type Parts uint8

const (
	// AcceleratorIdle is the idle draw of the pod's accelerators (DCGM reports whole devices).
	AcceleratorIdle Parts = 1 << iota
	// AcceleratorActive is the accelerators' draw above idle (DCGM; Kepler's GPU counters, which
	// attribute only the power above a device's idle to the pods using it).
	AcceleratorActive
	// HostIdle is the pod's share of the host's idle draw (Kepler 0.9's container counter counts it).
	HostIdle
	// HostActive is the host's draw that the pod's CPU use causes: Kepler's CPU package and DRAM
	// zones, which Kepler 0.10+ attributes to pods by CPU time, without the idle part.
	HostActive

	Accelerators = AcceleratorIdle | AcceleratorActive
	AllParts     = Accelerators | HostIdle | HostActive
)

// Reading is what was measured for one pod.
type Reading struct {
	// Watts is the measured power of the Parts named in Covers, W.
	Watts float64
	// Covers says which parts of the pod's draw Watts measures; zero means Accelerators (as DCGM
	// measures), so that a Reading written without it keeps its older meaning.
	Covers Parts
	// GPUUtilization is 0..1, the mean over the pod's GPUs; NaN when unknown.
	GPUUtilization float64
	// Source is SourceDCGM, SourceKepler or SourceDCGMKepler (SourceCatalog is the caller's fallback).
	Source string
	// At is when the pod was last measured (the refresh that saw it). A source may keep serving a
	// pod's last reading after its exporter stops reporting it; the caller decides how old a reading
	// may be (zero: measured now).
	At time.Time
}

// Parts returns r.Covers, or Accelerators when it is zero.
func (r Reading) Parts() Parts {
	if r.Covers == 0 {
		return Accelerators
	}
	return r.Covers
}

// Source gives measured readings per pod. Implementations are safe for concurrent use.
type Source interface {
	// PodReadings returns a reading for each pod that has measured power, recently or (with an
	// older At) earlier. The map may be shared with other callers: read it, never modify it. A
	// partial failure returns what worked and an error.
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
