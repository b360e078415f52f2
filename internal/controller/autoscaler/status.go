package autoscaler

import (
	"context"
	"fmt"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/model"
)

// figureDigits are the decimals status keeps of demand and forecasts, so it does not churn on float
// noise.
const figureDigits = 4

// buildStatus is status.autoScaling after this evaluation.
func (r *Reconciler) buildStatus(st *state) *kcloudv1alpha1.AutoScalingStatus {
	old := st.wo.Status.AutoScaling
	s := &kcloudv1alpha1.AutoScalingStatus{Mode: st.as.Mode, Conditions: st.conds, Metrics: st.readings,
		LastEvaluationTime: &metav1.Time{Time: st.now}}
	if s.Mode == "" {
		s.Mode = kcloudv1alpha1.ScalingPredictive
	}
	if old != nil {
		s.LastScaleTime = old.LastScaleTime
	}
	if st.scale == nil {
		if old != nil {
			s.CurrentReplicas, s.DesiredReplicas = old.CurrentReplicas, old.DesiredReplicas
		}
		return s
	}
	if st.delegated != "" {
		// Nothing was decided: the count is the other autoscaler's.
		s.CurrentReplicas, s.DesiredReplicas, s.Recommendation, s.Reason = st.scale.Spec.Replicas, st.scale.Spec.Replicas, st.scale.Spec.Replicas, st.delegated
		return s
	}
	d := st.decision
	s.CurrentReplicas = st.scale.Spec.Replicas
	s.DesiredReplicas = d.DesiredReplicas
	s.Recommendation = d.Recommendation
	s.Metric = kcloudv1alpha1.MetricType(d.Metric)
	s.Demand = model.Round(d.Demand, figureDigits)
	s.Limit = string(d.Limit)
	s.Reason = d.Reason
	if st.scaled {
		s.LastScaleTime = &metav1.Time{Time: st.now}
	}
	if len(d.Forecast) > 0 {
		s.Forecast = forecastStatus(d, r.step())
		if h := st.mem.histories[s.Metric]; h != nil {
			s.Forecast.HistoryPoints = int32(h.known())
		}
	}
	return s
}

// forecastStatus is the deciding metric's forecast over the lead time, rounded (NaN points left
// out), with its peak (0 when every point is NaN).
func forecastStatus(d model.ScaleDecision, step time.Duration) *kcloudv1alpha1.ForecastStatus {
	f := &kcloudv1alpha1.ForecastStatus{Method: string(d.Method),
		HorizonSeconds: int64(time.Duration(len(d.Forecast)) * step / time.Second)}
	f.Peak = math.Inf(-1)
	for _, v := range d.Forecast {
		if !math.IsNaN(v) {
			rounded := model.Round(v, figureDigits)
			f.Values = append(f.Values, rounded)
			f.Peak = max(f.Peak, rounded)
		}
	}
	if math.IsInf(f.Peak, -1) {
		f.Peak = 0
	}
	return f
}

// patchStatus writes status.autoScaling alone, with a merge patch, when it changed.
func (r *Reconciler) patchStatus(ctx context.Context, wo *kcloudv1alpha1.WorkloadOptimizer, s *kcloudv1alpha1.AutoScalingStatus) error {
	if equality.Semantic.DeepEqual(wo.Status.AutoScaling, s) {
		return nil
	}
	before := wo.DeepCopy()
	wo.Status.AutoScaling = s
	if err := r.Client.Status().Patch(ctx, wo, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("writing status.autoScaling of WorkloadOptimizer %s/%s: %w", wo.Namespace, wo.Name, err)
	}
	return nil
}

// observe exports the decision as metrics.
func (r *Reconciler) observe(st *state, s *kcloudv1alpha1.AutoScalingStatus) {
	ns, name := st.wo.Namespace, st.wo.Name
	if st.scale == nil {
		return
	}
	metricCurrentReplicas.WithLabelValues(ns, name).Set(float64(s.CurrentReplicas))
	metricDesiredReplicas.WithLabelValues(ns, name).Set(float64(s.DesiredReplicas))
	for i, t := range st.demandTypes {
		series := st.demands[i].Demand
		if v := series[len(series)-1]; !math.IsNaN(v) {
			metricDemand.WithLabelValues(ns, name, string(t)).Set(v)
		}
		if i < len(st.decision.Forecasts) {
			if peak, ok := peakOf(st.decision.Forecasts[i].Values); ok {
				metricForecastPeak.WithLabelValues(ns, name, string(t)).Set(peak)
			}
		}
	}
}

// peakOf is the highest value that is not NaN; false when there is none.
func peakOf(values []float64) (float64, bool) {
	peak, ok := math.Inf(-1), false
	for _, v := range values {
		if !math.IsNaN(v) && v >= peak {
			peak, ok = v, true
		}
	}
	return peak, ok
}
