package cluster

import (
	"context"
	"fmt"

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
	Node         string
	CostPerHour  float64 // USD/h: the pod's dominant share of its node's price
	PowerWatts   float64 // W: catalog model, or measured accelerator power plus the modelled host share
	PowerSource  string
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
	metrics.ObserveTelemetryRead(now, len(m), err)
	f.reading = readings{at: now, m: m, err: err}
	return m
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
	if r, ok := measured[types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}]; ok && r.Watts > 0 {
		// Telemetry measures the accelerators; the host's share stays modelled.
		hostOnly := e.Econ
		hostOnly.Device = nil
		fig.PowerWatts = model.AttributedPower(&p, &n, &hostOnly) + r.Watts
		fig.PowerSource = r.Source
		fig.Unpowered = "" // measured
	}
	return fig, nil
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
