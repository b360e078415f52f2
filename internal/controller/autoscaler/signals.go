package autoscaler

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/internal/events"
	"kcloud.io/optimizer/internal/telemetry"
	"kcloud.io/optimizer/pkg/model"
)

// priceReplicas finds the target's pods and what its replicas cost and draw: the catalog figures of
// the running replicas' nodes (power measured when telemetry has it), or, when none runs, what one
// replica would cost and draw on the cheapest node that could hold it.
func (r *Reconciler) priceReplicas(ctx context.Context, st *state) error {
	if err := r.listPods(ctx, st); err != nil {
		return err
	}
	measured := r.Fleet.Readings(ctx)
	fig := &st.figures
	for _, p := range st.pods {
		if !cluster.Running(p) || !p.DeletionTimestamp.IsZero() {
			continue
		}
		catalogFig, err := r.Fleet.PodFigures(ctx, p, nil)
		if err != nil {
			log.FromContext(ctx).Error(err, "Pricing a replica", "workloadOptimizer", klog.KObj(st.wo), "pod", klog.KObj(p))
			continue
		}
		fig.running++
		fig.costPerReplicaHour = max(fig.costPerReplicaHour, catalogFig.CostPerHour)
		fig.wattsPerReplica = max(fig.wattsPerReplica, catalogFig.PowerWatts)
		fig.currentCost += catalogFig.CostPerHour
		fig.currentWatts += catalogFig.PowerWatts
		if measured != nil {
			if m, err := r.Fleet.PodFigures(ctx, p, measured); err == nil {
				fig.currentWatts += m.PowerWatts - catalogFig.PowerWatts
			}
		}
	}
	if fig.running > 0 {
		return nil
	}
	pod, err := r.templatePod(ctx, st)
	if err != nil {
		log.FromContext(ctx).Error(err, "Reading the target's pod template", "workloadOptimizer", klog.KObj(st.wo))
		return nil
	}
	t, ok, err := r.Fleet.Cheapest(ctx, pod)
	if err != nil {
		return fmt.Errorf("the cheapest node for a replica of %s: %w", targetName(st), err)
	}
	if ok {
		fig.costPerReplicaHour, fig.wattsPerReplica = t.CostPerHour, t.PowerWatts
	}
	return nil
}

// observation is one metric's reading at the step.
type observation struct {
	value  float64 // in the threshold's unit, as status shows it
	demand float64 // total demand recorded in the history (unused for cost and power)
	err    error
}

// readMetrics reads every spec metric: demand metrics into their histories (cost and power are
// caps, see replicaLimits), then sets ScalingActive.
func (r *Reconciler) readMetrics(ctx context.Context, st *state) {
	seen := map[kcloudv1alpha1.MetricType]bool{}
	var failed []string
	for _, m := range st.as.Metrics {
		seen[m.Type] = true
		obs := r.readMetric(ctx, st, m)
		reading := kcloudv1alpha1.MetricReading{Type: m.Type, Threshold: m.Threshold}
		if obs.err != nil {
			reading.Error = obs.err.Error()
			failed = append(failed, fmt.Sprintf("%s: %v", m.Type, obs.err))
		} else {
			v := obs.value
			reading.Current = &v
		}
		st.readings = append(st.readings, reading)
		if m.Type != kcloudv1alpha1.MetricCost && m.Type != kcloudv1alpha1.MetricPower {
			r.recordDemand(st, m, obs)
		}
	}
	for t := range st.mem.histories {
		if !seen[t] {
			delete(st.mem.histories, t) // a metric removed from the spec
		}
	}
	setScalingActive(st, failed)
}

// readMetric reads one metric at the step's start.
func (r *Reconciler) readMetric(ctx context.Context, st *state, m kcloudv1alpha1.ScalingMetric) observation {
	switch m.Type {
	case kcloudv1alpha1.MetricCost:
		return costPercent(st.figures.currentCost, st.wo.Spec.CostConstraints)
	case kcloudv1alpha1.MetricPower:
		return observation{value: st.figures.currentWatts}
	case kcloudv1alpha1.MetricGPUUtilization:
		return r.gpuUtilization(ctx, st)
	}
	return r.query(ctx, st, m, st.scale.Status.Replicas)
}

// costPercent is the replicas' cost (USD/h) as a percentage of maxCostPerHour, the unit of a cost
// metric's threshold.
func costPercent(currentCost float64, cc *kcloudv1alpha1.CostConstraints) observation {
	if cc == nil || cc.MaxCostPerHour == nil || *cc.MaxCostPerHour <= 0 {
		return observation{err: fmt.Errorf("a cost metric is a percentage of costConstraints.maxCostPerHour, which is not set")}
	}
	return observation{value: 100 * currentCost / *cc.MaxCostPerHour}
}

// recordDemand records a demand metric's observation (NaN when it failed) in its history, and the
// history in the state's demands.
func (r *Reconciler) recordDemand(st *state, m kcloudv1alpha1.ScalingMetric, obs observation) {
	h := st.mem.histories[m.Type]
	if h == nil {
		h = newHistory(r.historySize(), "")
		st.mem.histories[m.Type] = h
	}
	d := math.NaN()
	if obs.err == nil {
		d = obs.demand
	}
	h.set(st.slot, d)
	st.demands = append(st.demands, model.MetricDemand{Metric: string(m.Type), Demand: h.series(), Threshold: m.Threshold})
	st.demandTypes = append(st.demandTypes, m.Type)
}

// setScalingActive says whether demand sizes the target: ScalingActive is True when at least one
// demand metric has a known point in its history.
func setScalingActive(st *state, failed []string) {
	switch {
	case len(st.demands) == 0:
		st.setCondition(kcloudv1alpha1.ConditionScalingActive, metav1.ConditionFalse, kcloudv1alpha1.ReasonNoDemandMetric,
			"no latency, throughput, gpuUtilization or prometheus metric: the replica count stays as it is, within the limits", nil)
	case usableDemands(st.demands) == 0:
		msg := fmt.Sprintf("no demand metric could be read: %s", strings.Join(failed, "; "))
		st.setCondition(kcloudv1alpha1.ConditionScalingActive, metav1.ConditionFalse, kcloudv1alpha1.ReasonMetricUnavailable, msg,
			&events.Event{Type: corev1.EventTypeWarning, Reason: kcloudv1alpha1.ReasonMetricUnavailable, Action: actionAutoscale, Note: msg})
	default:
		msg := "demand sizes the target"
		if len(failed) > 0 {
			msg += "; unavailable: " + strings.Join(failed, "; ")
		}
		st.setCondition(kcloudv1alpha1.ConditionScalingActive, metav1.ConditionTrue, kcloudv1alpha1.ReasonValidMetric, msg, nil)
	}
}

// usableDemands counts the demands with at least one known (not NaN) point.
func usableDemands(demands []model.MetricDemand) int {
	n := 0
	for _, d := range demands {
		for _, v := range d.Demand {
			if !math.IsNaN(v) {
				n++
				break
			}
		}
	}
	return n
}

// query reads a PromQL metric at the step's start. Throughput and prometheus queries return the
// workload's total; latency is a per-replica figure and counts times the replicas that produced it.
// A history met for the first time (or whose query changed) is seeded from a range query over its
// length.
func (r *Reconciler) query(ctx context.Context, st *state, m kcloudv1alpha1.ScalingMetric, replicas int32) observation {
	q, err := r.Queries.For(m, st.args)
	if err != nil {
		return observation{err: err}
	}
	h := st.mem.histories[m.Type]
	if h == nil || h.query != q {
		h = newHistory(r.historySize(), q)
		st.mem.histories[m.Type] = h
		r.seed(ctx, st, h, m)
	}
	if r.Prometheus == nil {
		return observation{err: fmt.Errorf("needs Prometheus (--prometheus-url)")}
	}
	v, err := r.Prometheus.QueryAt(ctx, q, st.now)
	if err != nil {
		return observation{err: err}
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return observation{err: fmt.Errorf("query `%s` returned %v", q, v)}
	}
	if m.Type == kcloudv1alpha1.MetricLatency {
		return observation{value: v, demand: model.TotalDemand(v, replicas)}
	}
	return observation{value: v, demand: v}
}

// gpuUtilization is the mean measured GPU utilization of the running replicas, in percent.
func (r *Reconciler) gpuUtilization(ctx context.Context, st *state) observation {
	if st.mem.histories[kcloudv1alpha1.MetricGPUUtilization] == nil {
		h := newHistory(r.historySize(), "")
		st.mem.histories[kcloudv1alpha1.MetricGPUUtilization] = h
		r.seed(ctx, st, h, kcloudv1alpha1.ScalingMetric{Type: kcloudv1alpha1.MetricGPUUtilization})
	}
	return meanGPUUtilization(st.pods, r.Fleet.Readings(ctx))
}

// meanGPUUtilization is the mean utilization (in percent) measured for the running pods, and their
// total demand; an error when none has a measurement.
func meanGPUUtilization(pods []*corev1.Pod, readings map[types.NamespacedName]telemetry.Reading) observation {
	var sum float64
	var n int32
	for _, p := range pods {
		if !cluster.Running(p) {
			continue
		}
		if rd, ok := readings[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}]; ok && !math.IsNaN(rd.GPUUtilization) {
			sum += 100 * rd.GPUUtilization
			n++
		}
	}
	if n == 0 {
		return observation{err: fmt.Errorf("no GPU utilization measured for the target's running pods (needs --prometheus-url with the DCGM exporter)")}
	}
	mean := sum / float64(n)
	return observation{value: mean, demand: model.TotalDemand(mean, n)}
}

// seed fills a new history from Prometheus: a total-valued metric from its own query, the others
// from the demand this operator exported (kcloud_autoscaler_demand), when Prometheus scrapes it.
func (r *Reconciler) seed(ctx context.Context, st *state, h *history, m kcloudv1alpha1.ScalingMetric) {
	if r.Prometheus == nil {
		return
	}
	q := h.query
	if m.Type == kcloudv1alpha1.MetricLatency || m.Type == kcloudv1alpha1.MetricGPUUtilization {
		q = demandQuery(st.args, m.Type)
	}
	step := r.step()
	end := st.now.Add(-step)
	start := st.now.Add(-time.Duration(h.size-1) * step)
	samples, err := r.Prometheus.QueryRange(ctx, q, start, end, step)
	if err != nil {
		log.FromContext(ctx).Error(err, "Seeding the demand history; starting empty", "workloadOptimizer", klog.KObj(st.wo), "metric", m.Type)
		return
	}
	h.seed(samples, step)
	log.FromContext(ctx).Info("Seeded the demand history from Prometheus", "workloadOptimizer", klog.KObj(st.wo), "metric", m.Type,
		"points", h.known(), "from", start, "to", end)
}
