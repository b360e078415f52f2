package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ScalingMode is how the autoscaler reads demand.
// +kubebuilder:validation:Enum=Predictive;Reactive
type ScalingMode string

const (
	// ScalingPredictive sizes for the highest of the last observation and the forecast demand until a
	// replica started now is ready (Holt-Winters with daily seasonality once two days of history
	// exist, a least-squares line before), so that capacity is there before the load.
	ScalingPredictive ScalingMode = "Predictive"
	// ScalingReactive sizes for the last observation, as the HorizontalPodAutoscaler does.
	ScalingReactive ScalingMode = "Reactive"
)

// AutoScalingBehavior says how the autoscaler reads demand and how fast it moves. It is inlined in
// autoScaling.
type AutoScalingBehavior struct {
	// mode is Predictive (default) or Reactive.
	// +optional
	// +kubebuilder:default=Predictive
	Mode ScalingMode `json:"mode,omitempty"`

	// stabilizationWindowSeconds: a scale-down goes no lower than the highest recommendation made
	// within this many seconds, against flapping; scale-ups apply at once. 0 disables it.
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	StabilizationWindowSeconds *int32 `json:"stabilizationWindowSeconds,omitempty"`

	// leadSeconds is how long a new replica takes to serve (scheduling, image pull, model load); the
	// Predictive mode covers the forecast demand over it.
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	LeadSeconds *int32 `json:"leadSeconds,omitempty"`
}

// Condition types of status.autoScaling.conditions.
const (
	// ConditionAbleToScale: the target exists and its scale subresource can be read and written.
	ConditionAbleToScale = "AbleToScale"
	// ConditionScalingActive: at least one demand metric could be read, so demand sizes the target.
	ConditionScalingActive = "ScalingActive"
	// ConditionScalingLimited: a bound (minReplicas, maxReplicas, a cost or power cap, the budget)
	// set the replica count instead of demand.
	ConditionScalingLimited = "ScalingLimited"
	// ConditionScalingDelegated: a HorizontalPodAutoscaler or a KEDA ScaledObject scales the same
	// target, so the autoscaler writes no replicas until it is gone (two writers would fight).
	ConditionScalingDelegated = "ScalingDelegated"
)

// Reasons of the autoscaling conditions and events.
const (
	ReasonTargetScalable    = "TargetScalable"
	ReasonTargetNotScalable = "TargetNotScalable"
	ReasonScaleFailed       = "ScaleFailed"
	ReasonValidMetric       = "ValidMetric"
	ReasonMetricUnavailable = "MetricUnavailable"
	ReasonNoDemandMetric    = "NoDemandMetric"
	ReasonWithinLimits      = "WithinLimits"
	// ReasonScaleLimited (an event) names the bound that held the count back; the condition's reason
	// is the bound itself (MinReplicas, MaxReplicas, MaxCostPerHour, MaxPowerUsage, Budget).
	ReasonScaleLimited = "ScaleLimited"
	ReasonScaledUp     = "ScaledUp"
	ReasonScaledDown   = "ScaledDown"
	// ReasonExternalAutoscaler (ScalingDelegated True, and a Warning event): the message names the
	// HorizontalPodAutoscaler or ScaledObject, namespace/name.
	ReasonExternalAutoscaler = "ExternalAutoscaler"
	// ReasonNoExternalAutoscaler (ScalingDelegated False): no other autoscaler scales the target.
	ReasonNoExternalAutoscaler = "NoExternalAutoscaler"
)

// AutoScalingStatus is what the autoscaler observed and decided at its last evaluation.
type AutoScalingStatus struct {
	// mode the decision was made in.
	// +optional
	Mode ScalingMode `json:"mode,omitempty"`

	// currentReplicas is the target's replica count (its scale subresource) before the decision.
	CurrentReplicas int32 `json:"currentReplicas"`

	// desiredReplicas is the count decided: demand, stabilized, within the limits.
	DesiredReplicas int32 `json:"desiredReplicas"`

	// recommendation is what demand alone asks for, before stabilization and limits.
	// +optional
	Recommendation int32 `json:"recommendation,omitempty"`

	// metric is the type of the metric that asked for the most replicas.
	// +optional
	Metric MetricType `json:"metric,omitempty"`

	// demand is the workload's total demand that metric sized for, in threshold units times replicas
	// (e.g. requests per second for throughput): replicas = ceil(demand / threshold).
	// +optional
	Demand float64 `json:"demand,omitempty"`

	// forecast is the Predictive mode's forecast of that metric's demand.
	// +optional
	Forecast *ForecastStatus `json:"forecast,omitempty"`

	// limit is the bound that set desiredReplicas instead of demand: minReplicas, maxReplicas,
	// maxCostPerHour, maxPowerUsage or budget; empty when demand did.
	// +optional
	Limit string `json:"limit,omitempty"`

	// reason explains the decision with its figures.
	// +optional
	Reason string `json:"reason,omitempty"`

	// metrics are the latest readings of every spec metric.
	// +optional
	// +listType=map
	// +listMapKey=type
	Metrics []MetricReading `json:"metrics,omitempty"`

	// lastScaleTime is when the autoscaler last changed the target's replicas.
	// +optional
	LastScaleTime *metav1.Time `json:"lastScaleTime,omitempty"`

	// lastEvaluationTime is the step the decision was made for.
	// +optional
	LastEvaluationTime *metav1.Time `json:"lastEvaluationTime,omitempty"`

	// conditions: AbleToScale, ScalingActive, ScalingLimited, ScalingDelegated.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ForecastStatus summarises a forecast.
type ForecastStatus struct {
	// method is holt-winters, linear or constant.
	// +optional
	Method string `json:"method,omitempty"`

	// peak is the highest forecast demand over the horizon.
	// +optional
	Peak float64 `json:"peak,omitempty"`

	// horizonSeconds is how far ahead the forecast reaches (the lead time plus one step).
	// +optional
	HorizonSeconds int64 `json:"horizonSeconds,omitempty"`

	// values are the forecast demand per step, nearest first.
	// +optional
	// +listType=atomic
	Values []float64 `json:"values,omitempty"`

	// historyPoints is how many known points of history the forecast was fitted on.
	// +optional
	HistoryPoints int32 `json:"historyPoints,omitempty"`
}

// MetricReading is the latest reading of one spec metric.
type MetricReading struct {
	// type of the metric.
	Type MetricType `json:"type"`

	// current is the value read, in the threshold's unit (for cost, percent of maxCostPerHour;
	// for power, watts of the whole workload). Absent when it could not be read.
	// +optional
	Current *float64 `json:"current,omitempty"`

	// threshold is the spec's target value.
	Threshold float64 `json:"threshold"`

	// error says why the metric could not be read.
	// +optional
	Error string `json:"error,omitempty"`
}
