package cluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"kcloud.io/optimizer/internal/metrics"
	"kcloud.io/optimizer/internal/telemetry"
	"kcloud.io/optimizer/pkg/model"
)

// Power sources shown in status.
const (
	SourceCatalog = telemetry.SourceCatalog
	SourceMixed   = "mixed"
)

// Figures are what one running pod costs and draws.
type Figures struct {
	Node        string
	CostPerHour float64 // USD/h: the pod's dominant share of its node's price
	// PowerWatts is the catalog model, or what telemetry measured with the model's figures for the
	// parts of the draw the measurement does not cover (telemetry.Reading.Covers).
	PowerWatts  float64 // W
	PowerSource string
	// PowerStale, when set, is when the pod's power was last measured: its reading is older than the
	// fleet's bound, so PowerWatts is the catalog model.
	PowerStale   time.Time
	CarbonPerKWh float64 // gCO2/kWh of the node's grid
	Running      model.Interval
	Pod          model.Pod
	// Unpriced and Unpowered say why the node has no price, or no power figure for its
	// accelerators (model.Economics): CostPerHour, or the accelerators' part of PowerWatts, is then
	// unknown and left at 0, and whoever sums the figures says so.
	Unpriced, Unpowered string
	// Departed says the pod's node is deleted and the figures are its last known ones.
	Departed string
}

// Readings returns telemetry readings per pod, refreshed at most once per snapshot age; nil without
// telemetry. A failed query is logged and the catalog model is used until the next refresh.
func (f *Fleet) Readings(ctx context.Context) map[types.NamespacedName]telemetry.Reading {
	if f.telemetry == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	if f.reading.m != nil || f.reading.err != nil {
		if f.fresh(f.reading.at, now) {
			return f.reading.m
		}
	}
	m, err := f.telemetry.PodReadings(ctx)
	if err != nil {
		log.FromContext(ctx).Error(err, "Reading telemetry; using the catalog power model where it is missing")
	}
	m, stale := f.splitStale(m, now)
	metrics.ObserveTelemetryRead(now, len(m), err)
	f.reading = readings{at: now, m: m, stale: stale, err: err}
	return m
}

// splitStale separates the readings older than the fleet's bound (the source's last of a pod it no
// longer measures): they are not used, only remembered so that figures can say so.
func (f *Fleet) splitStale(m map[types.NamespacedName]telemetry.Reading, now time.Time) (map[types.NamespacedName]telemetry.Reading, map[types.NamespacedName]time.Time) {
	var stale map[types.NamespacedName]time.Time
	for pod, r := range m {
		if !r.At.IsZero() && now.Sub(r.At) > f.staleAfter {
			if stale == nil {
				stale = map[types.NamespacedName]time.Time{}
			}
			stale[pod] = r.At
		}
	}
	if stale == nil {
		return m, nil
	}
	fresh := make(map[types.NamespacedName]telemetry.Reading, len(m)-len(stale))
	for pod, r := range m {
		if _, old := stale[pod]; !old {
			fresh[pod] = r
		}
	}
	return fresh, stale
}

// TelemetryState is what the fleet's last read of telemetry says.
type TelemetryState struct {
	Configured bool          // the fleet has a telemetry source
	Err        error         // of its last read (with a partial answer, what failed)
	StaleAfter time.Duration // the bound past which a measurement is stale
}

// Telemetry returns the state of the fleet's telemetry source.
func (f *Fleet) Telemetry() TelemetryState {
	if f.telemetry == nil {
		return TelemetryState{StaleAfter: f.staleAfter}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return TelemetryState{Configured: true, Err: f.reading.err, StaleAfter: f.staleAfter}
}

// lastMeasured is when a pod whose reading is stale was last measured; zero when it is not stale.
func (f *Fleet) lastMeasured(pod types.NamespacedName) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reading.stale[pod]
}

// PodFigures prices and powers a pod that has run on a node.
func (f *Fleet) PodFigures(ctx context.Context, pod *corev1.Pod, measured map[types.NamespacedName]telemetry.Reading) (Figures, error) {
	// Read-only: the cache's node is not copied (once per pod priced, thousands per second).
	node, err := f.node(ctx, pod.Spec.NodeName)
	var e *NodeEntry
	departed := ""
	switch {
	case apierrors.IsNotFound(err):
		// A deleted node's pods are charged until they are gone, at the node's last figures this
		// operator knew; one it never saw (deleted while it was down) leaves them unpriced.
		v, seen := f.nodes.Load(pod.Spec.NodeName)
		if !seen {
			why := fmt.Sprintf("node %s was deleted before this operator read it", pod.Spec.NodeName)
			return Figures{Node: pod.Spec.NodeName, Running: RunInterval(pod), Pod: f.request(pod), Unpriced: why, Unpowered: why}, nil
		}
		e, departed = v.(*NodeEntry), fmt.Sprintf("node %s is deleted: charged at its last known figures", pod.Spec.NodeName)
	case err != nil:
		return Figures{}, fmt.Errorf("pod %s/%s: reading its node %s: %w", pod.Namespace, pod.Name, pod.Spec.NodeName, err)
	default:
		e = f.Node(node)
	}
	if e.Err != nil {
		return Figures{}, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, e.Err)
	}
	p := f.request(pod)
	n := e.Capacity
	fig := Figures{
		Node:         pod.Spec.NodeName,
		Departed:     departed,
		CostPerHour:  model.AttributedCost(&p, &n, &e.Econ),
		PowerWatts:   model.AttributedPower(&p, &n, &e.Econ),
		PowerSource:  SourceCatalog,
		CarbonPerKWh: e.Econ.CarbonIntensity,
		Running:      RunInterval(pod),
		Pod:          p,
		Unpriced:     e.Econ.Unpriced,
		Unpowered:    e.Econ.Unpowered,
	}
	key := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	r, ok := measured[key]
	switch {
	case ok && r.Watts > 0:
		fig.PowerWatts = MeasuredPower(r, model.AttributedPowerParts(&p, &n, &e.Econ))
		fig.PowerSource = r.Source
		if r.Parts()&telemetry.Accelerators == telemetry.Accelerators {
			fig.Unpowered = "" // measured
		}
	case measured != nil:
		fig.PowerStale = f.lastMeasured(key)
	}
	return fig, nil
}

// MeasuredPower is a pod's draw from a reading: the measured parts, and the model's figures for the
// others. Kepler 0.10+ attributes only the power above idle to pods, so a pod it measures keeps its
// modelled share of the host's (and its devices') idle draw; DCGM measures whole devices.
func MeasuredPower(r telemetry.Reading, modelled model.PowerParts) float64 {
	w := r.Watts
	covers := r.Parts()
	for _, part := range []struct {
		p     telemetry.Parts
		watts float64
	}{
		{telemetry.HostIdle, modelled.HostIdle},
		{telemetry.HostActive, modelled.HostActive},
		{telemetry.AcceleratorIdle, modelled.AcceleratorIdle},
		{telemetry.AcceleratorActive, modelled.AcceleratorActive},
	} {
		if covers&part.p == 0 {
			w += part.watts
		}
	}
	return w
}

// CombineSources names the power source of several pods: the common one, or mixed.
func CombineSources(sources []string) string {
	out := ""
	for _, s := range sources {
		switch {
		case out == "":
			out = s
		case out != s:
			return SourceMixed
		}
	}
	return out
}
