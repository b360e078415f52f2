package autoscaler

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The autoscaler's metrics, served on the manager's metrics endpoint beside the operator's.
var (
	metricCurrentReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_autoscaler_current_replicas",
		Help: "The target workload's replicas (scale subresource) at the autoscaler's last evaluation.",
	}, []string{"namespace", "name"})
	metricDesiredReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_autoscaler_desired_replicas",
		Help: "Replicas the autoscaler decided at its last evaluation.",
	}, []string{"namespace", "name"})
	metricDemand = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_autoscaler_demand",
		Help: "A scaling metric's total demand at the last step (threshold units times replicas), as recorded in the autoscaler's history.",
	}, []string{"namespace", "name", "metric"})
	metricForecastPeak = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_autoscaler_forecast_peak",
		Help: "The highest forecast total demand of a scaling metric over the lead time (Predictive mode).",
	}, []string{"namespace", "name", "metric"})
	metricScaleEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kcloud_autoscaler_scale_events_total",
		Help: "Changes of a target's replicas by the autoscaler, by direction (up, down).",
	}, []string{"namespace", "name", "direction"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(metricCurrentReplicas, metricDesiredReplicas, metricDemand, metricForecastPeak, metricScaleEvents)
}

func forgetMetrics(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "name": name}
	metricCurrentReplicas.DeletePartialMatch(l)
	metricDesiredReplicas.DeletePartialMatch(l)
	metricDemand.DeletePartialMatch(l)
	metricForecastPeak.DeletePartialMatch(l)
	metricScaleEvents.DeletePartialMatch(l)
}
