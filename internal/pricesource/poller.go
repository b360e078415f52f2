package pricesource

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kcloud.io/optimizer/pkg/kube"
)

// The contract with the catalog layer, which reads what the poller writes.
const (
	// DataKey holds the CSV: header CSVHeader, one row per node sorted by node name.
	DataKey = "node-prices.csv"
	// ManagedByLabel marks the ConfigMap as the operator's; one without it is never overwritten.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "kcloud-operator"
)

// DefaultInterval is how often OpenCost's series are read. OpenCost refreshes cloud prices hourly at
// most, so five minutes shows a change soon enough without loading Prometheus.
const DefaultInterval = 5 * time.Minute

// VectorQuerier runs an instant query and returns its series with their labels
// (telemetry.Prometheus is one).
type VectorQuerier interface {
	Vector(ctx context.Context, promQL string) (model.Vector, error)
}

// Poller reads OpenCost's node cost series every Interval and writes the node prices they give to
// Target's DataKey, only when the text changes. It runs on the leader only.
type Poller struct {
	Prometheus VectorQuerier
	// Nodes reads Node objects for the component formula (the manager's cache).
	Nodes client.Reader
	// ConfigMaps reads Target; an uncached reader (the manager's API reader), so that the operator
	// does not cache every ConfigMap of the cluster for one object it reads every few minutes.
	ConfigMaps client.Reader
	Writer     client.Writer
	Target     types.NamespacedName
	Interval   time.Duration // default DefaultInterval
	Clock      clock.Clock   // default the real clock
}

// PollResult is what one poll found and did.
type PollResult struct {
	Prices  []NodePrice
	Skipped []Skipped
	Written bool // the ConfigMap was created or updated
}

// NeedLeaderElection: two replicas writing the same ConfigMap would only fight over its version.
func (p *Poller) NeedLeaderElection() bool { return true }

// Start polls at once, then every Interval, until ctx ends. A failed poll is logged and leaves the
// ConfigMap as it was; the next one tries again.
func (p *Poller) Start(ctx context.Context) error {
	interval, clk := p.Interval, p.Clock
	if interval <= 0 {
		interval = DefaultInterval
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	log := ctrl.LoggerFrom(ctx).WithName("price-source").WithValues("configMap", p.Target.String(), "interval", interval)
	ctx = logr.NewContext(ctx, log)
	log.Info("Polling OpenCost for node prices")
	for {
		if _, err := p.Poll(ctx); err != nil {
			log.Error(err, "Polling OpenCost failed; the last written prices stay")
		}
		// A timer per round, not a ticker: a slow poll delays the next instead of queueing one.
		timer := clk.NewTimer(interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C():
		}
	}
}

// Poll runs one round: the queries, the prices, and a write when they changed. Any failed query fails
// the whole round before anything is written, so the ConfigMap never holds half a poll.
func (p *Poller) Poll(ctx context.Context) (PollResult, error) {
	series, err := p.query(ctx)
	if err != nil {
		sourceUp.WithLabelValues(sourceOpenCost).Set(0)
		return PollResult{}, err
	}
	sourceUp.WithLabelValues(sourceOpenCost).Set(1)
	nodes, err := p.nodeResources(ctx)
	if err != nil {
		return PollResult{}, err
	}
	prices, skipped := Compute(series, nodes)
	res := PollResult{Prices: prices, Skipped: skipped}
	if res.Written, err = p.write(ctx, CSV(prices)); err != nil {
		return res, err
	}
	sourceNodes.WithLabelValues(sourceOpenCost).Set(float64(len(prices)))
	log := logr.FromContextOrDiscard(ctx)
	if res.Written {
		log.Info("Wrote node prices", "nodes", len(prices), "skipped", skippedNames(skipped))
	}
	for _, s := range skipped {
		log.V(1).Info("Node not priced", "node", klog.KRef("", s.Node), "reason", s.Reason)
	}
	return res, nil
}

// query reads the five OpenCost metrics.
func (p *Poller) query(ctx context.Context) (Series, error) {
	var s Series
	targets := []struct {
		metric string
		into   *model.Vector
	}{
		{MetricNodeTotalHourlyCost, &s.Total},
		{MetricNodeGPUHourlyCost, &s.GPU},
		{MetricNodeCPUHourlyCost, &s.CPU},
		{MetricNodeRAMHourlyCost, &s.RAM},
		{MetricNodeGPUCount, &s.GPUCount},
	}
	var errs []error
	for _, t := range targets {
		v, err := p.Prometheus.Vector(ctx, t.metric)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*t.into = v
	}
	if err := errors.Join(errs...); err != nil {
		return Series{}, fmt.Errorf("reading OpenCost node costs: %w", err)
	}
	return s, nil
}

// nodeResources counts every Node's accelerators, vCPUs and GiB from its allocatable.
func (p *Poller) nodeResources(ctx context.Context) (map[string]NodeResources, error) {
	var list corev1.NodeList
	if err := p.Nodes.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing nodes to price them by components: %w", err)
	}
	out := make(map[string]NodeResources, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].Name] = resourcesOf(&list.Items[i])
	}
	return out, nil
}

// resourcesOf reads a Node's allocatable: what OpenCost's per-unit costs multiply when it exports no
// total for the node.
func resourcesOf(n *corev1.Node) NodeResources {
	alloc := n.Status.Allocatable
	var gpus int64
	for _, r := range kube.AcceleratorResources {
		if q, ok := alloc[corev1.ResourceName(r)]; ok {
			gpus += q.Value()
		}
	}
	return NodeResources{
		GPUs:      float64(gpus),
		VCPUs:     float64(alloc.Cpu().MilliValue()) / 1000,
		MemoryGiB: float64(alloc.Memory().Value()) / (1 << 30),
	}
}

// write puts csv under DataKey of Target, creating the ConfigMap when missing; it reports whether it
// wrote. Other keys of the ConfigMap are left alone.
func (p *Poller) write(ctx context.Context, csv string) (bool, error) {
	var cm corev1.ConfigMap
	err := p.ConfigMaps.Get(ctx, p.Target, &cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: p.Target.Namespace, Name: p.Target.Name,
				Labels: map[string]string{ManagedByLabel: ManagedByValue}},
			Data: map[string]string{DataKey: csv},
		}
		if err := p.Writer.Create(ctx, &cm); err != nil {
			return false, fmt.Errorf("creating price-source ConfigMap %s: %w", p.Target, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("reading price-source ConfigMap %s: %w", p.Target, err)
	}
	if cm.Labels[ManagedByLabel] != ManagedByValue {
		return false, fmt.Errorf("price-source ConfigMap %s exists without the label %s=%s: not overwriting a ConfigMap the operator did not create",
			p.Target, ManagedByLabel, ManagedByValue)
	}
	if current, ok := cm.Data[DataKey]; ok && current == csv {
		return false, nil
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[DataKey] = csv
	// An update, not a patch: it carries the resourceVersion read above, so a concurrent writer makes
	// it fail with a conflict instead of being overwritten blindly; the next poll retries.
	if err := p.Writer.Update(ctx, &cm); err != nil {
		return false, fmt.Errorf("updating price-source ConfigMap %s: %w", p.Target, err)
	}
	return true, nil
}

func skippedNames(skipped []Skipped) []string {
	names := make([]string, 0, len(skipped))
	for _, s := range skipped {
		names = append(names, s.Node)
	}
	return names
}
