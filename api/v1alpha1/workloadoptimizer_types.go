package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkloadType is the kind of AI workload an optimizer governs; it decides defaults such as whether
// pods may be restarted to move them.
// +kubebuilder:validation:Enum=training;serving;inference;batch
type WorkloadType string

const (
	WorkloadTraining  WorkloadType = "training"
	WorkloadServing   WorkloadType = "serving"
	WorkloadInference WorkloadType = "inference"
	WorkloadBatch     WorkloadType = "batch"
)

// WorkloadOptimizerSpec declares how one workload should be placed and sized.
// +kubebuilder:validation:XValidation:rule="!has(self.autoScaling) || !has(self.autoScaling.metrics) || !self.autoScaling.metrics.exists(m, m.type == 'cost') || (has(self.costConstraints) && has(self.costConstraints.maxCostPerHour))",message="autoScaling.metrics: a metric of type cost is a percentage of costConstraints.maxCostPerHour, which must be set",fieldPath=".autoScaling.metrics"
type WorkloadOptimizerSpec struct {
	// workloadType is the kind of workload: training, serving, inference or batch.
	// +required
	WorkloadType WorkloadType `json:"workloadType"`

	// priority ranks this workload against others when capacity, budget or power is short;
	// 0 is lowest, 100 highest. kcloud-scheduler takes pending pods of a higher-priority
	// optimizer first (after the pods' own PriorityClass), so they get what is left of a budget
	// or cap before lower ones; under a CostPolicy in scale-down enforcement, the autoscaler
	// shrinks lower-priority targets to make room for higher-priority pods that wait, and never
	// the other way round; when the rebalancer can move only some pods of a node, it moves those
	// of lower-priority optimizers first.
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Priority *int32 `json:"priority,omitempty"`

	// targetRef names the workload whose pods this optimizer governs and, with autoScaling, resizes.
	// +optional
	TargetRef *TargetReference `json:"targetRef,omitempty"`

	// selector matches the labels of the governed pods, for workloads without a controller or in
	// addition to targetRef. Without targetRef and selector, pods are linked by the label
	// kcloud.io/optimizer=<name>.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// resources each replica needs.
	// +optional
	Resources WorkloadResources `json:"resources,omitempty"`

	// costConstraints limit what the workload may cost.
	// +optional
	CostConstraints *CostConstraints `json:"costConstraints,omitempty"`

	// powerConstraints limit what the workload may draw.
	// +optional
	PowerConstraints *PowerConstraints `json:"powerConstraints,omitempty"`

	// placementPolicy narrows and steers where replicas run.
	// +optional
	PlacementPolicy *PlacementPolicy `json:"placementPolicy,omitempty"`

	// autoScaling sizes the target workload between minReplicas and maxReplicas.
	// +optional
	AutoScaling *AutoScaling `json:"autoScaling,omitempty"`

	// rebalancing says whether the rebalancer may move the workload's pods (Auto when unset).
	// +optional
	Rebalancing *RebalancingPolicy `json:"rebalancing,omitempty"`
}

// TargetReference names a workload in the optimizer's namespace.
type TargetReference struct {
	// apiVersion of the workload; defaults to the usual group of kind (apps/v1, batch/v1).
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// kind of the workload.
	// +required
	// +kubebuilder:validation:Enum=Deployment;StatefulSet;ReplicaSet;Job
	Kind string `json:"kind"`

	// name of the workload.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// WorkloadResources are the per-replica resources of a workload.
// +kubebuilder:validation:XValidation:rule="!has(self.cpu) || !isQuantity(string(self.cpu)) || !quantity(string(self.cpu)).isLessThan(quantity('0'))",message="resources.cpu must not be negative",fieldPath=".cpu"
// +kubebuilder:validation:XValidation:rule="!has(self.memory) || !isQuantity(string(self.memory)) || !quantity(string(self.memory)).isLessThan(quantity('0'))",message="resources.memory must not be negative",fieldPath=".memory"
type WorkloadResources struct {
	// cpu cores per replica, as a Kubernetes quantity ("16", "500m").
	// +optional
	CPU *resource.Quantity `json:"cpu,omitempty"`

	// memory per replica, as a Kubernetes quantity ("64Gi").
	// +optional
	Memory *resource.Quantity `json:"memory,omitempty"`

	// gpu is the number of whole GPUs per replica.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=64
	GPU int32 `json:"gpu,omitempty"`

	// npu is the number of NPU devices per replica, mapped to the NPU resource the fleet offers.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=64
	NPU int32 `json:"npu,omitempty"`
}

// CostConstraints limit what a workload may cost.
type CostConstraints struct {
	// maxCostPerHour is the most the whole workload may cost, in USD per hour.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxCostPerHour *float64 `json:"maxCostPerHour,omitempty"`

	// preferSpot favours spot (preemptible) capacity when it fits.
	// +optional
	PreferSpot bool `json:"preferSpot,omitempty"`

	// budgetLimit is the most the workload may spend per budgetPeriod, in USD.
	// +optional
	// +kubebuilder:validation:Minimum=0
	BudgetLimit *float64 `json:"budgetLimit,omitempty"`

	// budgetPeriod is the window budgetLimit applies to.
	// +optional
	// +kubebuilder:default=month
	BudgetPeriod BudgetPeriod `json:"budgetPeriod,omitempty"`
}

// PowerConstraints limit what a workload may draw.
type PowerConstraints struct {
	// maxPowerUsage is the most the whole workload may draw, in watts.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxPowerUsage *float64 `json:"maxPowerUsage,omitempty"`

	// preferGreen favours nodes in regions of low carbon intensity or labelled as green energy.
	// +optional
	PreferGreen bool `json:"preferGreen,omitempty"`
}

// PlacementPolicy narrows and steers where replicas run.
type PlacementPolicy struct {
	// nodeSelector is required of every node a replica runs on.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// affinity lists weighted node preferences.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Affinity []AffinityRule `json:"affinity,omitempty"`
}

// AffinityRule prefers nodes whose label key has value (or merely exists, when value is empty).
type AffinityRule struct {
	// type names what the rule is for, in lower snake case (gpu_workload, npu_workload, zone, ...).
	// +required
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9_]*$`
	Type string `json:"type"`

	// key is the node label key.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=317
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`
	Key string `json:"key"`

	// value the label must have; empty means the label only has to exist.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Value string `json:"value,omitempty"`

	// weight of the preference, 1-100, as in a preferred node affinity term.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Weight int32 `json:"weight,omitempty"`
}

// AutoScaling sizes the target workload.
// +kubebuilder:validation:XValidation:rule="self.minReplicas <= self.maxReplicas",message="autoScaling.minReplicas must be less than or equal to autoScaling.maxReplicas",fieldPath=".minReplicas"
type AutoScaling struct {
	// minReplicas is the fewest replicas the autoscaler keeps.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	MinReplicas int32 `json:"minReplicas"`

	// maxReplicas is the most replicas the autoscaler sets, before cost and power caps lower it.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MaxReplicas int32 `json:"maxReplicas"`

	// metrics the autoscaler follows; each type at most once.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Metrics []ScalingMetric `json:"metrics,omitempty"`

	AutoScalingBehavior `json:",inline"`
}

// MetricType is what a scaling metric measures, and decides the unit of its threshold.
// +kubebuilder:validation:Enum=cost;power;latency;gpuUtilization;throughput;prometheus
type MetricType string

const (
	// MetricCost: percent of costConstraints.maxCostPerHour (0-100).
	MetricCost MetricType = "cost"
	// MetricPower: watts for the whole workload.
	MetricPower MetricType = "power"
	// MetricLatency: request latency in milliseconds.
	MetricLatency MetricType = "latency"
	// MetricGPUUtilization: mean GPU utilization of the replicas in percent (0-100).
	MetricGPUUtilization MetricType = "gpuUtilization"
	// MetricThroughput: requests per second per replica.
	MetricThroughput MetricType = "throughput"
	// MetricPrometheus: the value of query, in the query's own unit.
	MetricPrometheus MetricType = "prometheus"
)

// ScalingMetric is one signal of the autoscaler and its target value.
// +kubebuilder:validation:XValidation:rule="!(self.type in ['cost', 'gpuUtilization']) || self.threshold <= 100.0",message="threshold of a cost or gpuUtilization metric is a percentage and must be at most 100",fieldPath=".threshold"
// +kubebuilder:validation:XValidation:rule="self.type == 'prometheus' ? has(self.query) && size(self.query) > 0 : !has(self.query)",message="query is required for a metric of type prometheus and not allowed for other types",fieldPath=".query"
type ScalingMetric struct {
	// type of the metric; the threshold's unit follows from it (see docs/API.md).
	// +required
	Type MetricType `json:"type"`

	// threshold is the target value of the metric per the unit of its type.
	// +required
	// +kubebuilder:validation:Minimum=0
	Threshold float64 `json:"threshold"`

	// query is the PromQL expression of a prometheus metric.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Query string `json:"query,omitempty"`
}

// WorkloadPhase summarises the optimizer's state; conditions carry the detail.
// +kubebuilder:validation:Enum=Pending;Optimizing;Optimized;Failed
type WorkloadPhase string

const (
	// PhasePending: no pod of the workload is running yet.
	PhasePending WorkloadPhase = "Pending"
	// PhaseOptimizing: pods run and a better placement or size is being applied.
	PhaseOptimizing WorkloadPhase = "Optimizing"
	// PhaseOptimized: pods run where the model finds no worthwhile improvement.
	PhaseOptimized WorkloadPhase = "Optimized"
	// PhaseFailed: the optimizer cannot act (missing target, unsatisfiable limits).
	PhaseFailed WorkloadPhase = "Failed"
)

// BudgetStatus is spend over an accounting period, counted up to accountedUntil so a restarted
// operator continues from there.
type BudgetStatus struct {
	// periodStart is when the current period began.
	PeriodStart metav1.Time `json:"periodStart"`

	// accountedUntil is the instant up to which spend is counted.
	AccountedUntil metav1.Time `json:"accountedUntil"`

	// spend in the current period, in USD.
	Spend float64 `json:"spend"`

	// remaining budget in the current period, in USD (negative once exceeded).
	Remaining float64 `json:"remaining"`
}

// Condition types of a WorkloadOptimizer.
const (
	ConditionCostOptimized  = "CostOptimized"
	ConditionPowerOptimized = "PowerOptimized"
	ConditionWithinBudget   = "WithinBudget"
	// ConditionTelemetryFresh says whether the power of the running pods is measured now (with
	// --prometheus-url; absent without it): False when a pod's measurement is older than the
	// operator's bound or reading Prometheus fails, so that its power is the catalog model again.
	ConditionTelemetryFresh = "TelemetryFresh"
)

// Reasons of ConditionTelemetryFresh.
const (
	ReasonMeasuredPowerFresh = "MeasuredPowerFresh"
	ReasonMeasuredPowerStale = "MeasuredPowerStale"
	ReasonTelemetryFailing   = "TelemetryFailing"
	ReasonNotMeasured        = "NotMeasured"
)

// WorkloadOptimizerStatus is what the operator observed and decided.
type WorkloadOptimizerStatus struct {
	// phase summarises the state.
	// +optional
	Phase WorkloadPhase `json:"phase,omitempty"`

	// currentCost of all running replicas, in USD per hour.
	// +optional
	CurrentCost float64 `json:"currentCost,omitempty"`

	// currentPower of all running replicas, in watts.
	// +optional
	CurrentPower float64 `json:"currentPower,omitempty"`

	// assignedNode is the node of the first running replica.
	// +optional
	AssignedNode string `json:"assignedNode,omitempty"`

	// assignedNodes lists the nodes of every running replica, sorted.
	// +optional
	// +listType=atomic
	AssignedNodes []string `json:"assignedNodes,omitempty"`

	// replicas is the number of the workload's pods; runningReplicas of them run on a node.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// runningReplicas is the number of the workload's pods running on a node.
	// +optional
	RunningReplicas int32 `json:"runningReplicas,omitempty"`

	// powerSource says where currentPower comes from: catalog (the power model of the nodes'
	// devices), dcgm, kepler or dcgm+kepler (measured through Prometheus, with the model's figures
	// for the parts of the draw the exporters do not measure), or mixed.
	// +optional
	PowerSource string `json:"powerSource,omitempty"`

	// bestCost is what the running replicas would cost on the cheapest nodes they could run on now,
	// within their limits, in USD per hour.
	// +optional
	BestCost float64 `json:"bestCost,omitempty"`

	// bestPower is what the running replicas would draw on the most frugal nodes they could run on
	// now, in watts (catalog model).
	// +optional
	BestPower float64 `json:"bestPower,omitempty"`

	// potentialSavings is currentCost minus bestCost: what moving would save, in USD per hour.
	// +optional
	PotentialSavings float64 `json:"potentialSavings,omitempty"`

	// budget accounts spend against costConstraints.budgetLimit over costConstraints.budgetPeriod.
	// +optional
	Budget *BudgetStatus `json:"budget,omitempty"`

	// autoScaling is the autoscaler's last decision; only the autoscaler writes it.
	// +optional
	AutoScaling *AutoScalingStatus `json:"autoScaling,omitempty"`

	// lastOptimized is when the operator last evaluated the placement.
	// +optional
	LastOptimized *metav1.Time `json:"lastOptimized,omitempty"`

	// optimizationScore is how close the current placement is to the best the model finds: 1 is optimal.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1
	OptimizationScore float64 `json:"optimizationScore,omitempty"`

	// rebalancing reports the rebalancer's last run for this workload.
	// +optional
	Rebalancing *RebalancingStatus `json:"rebalancing,omitempty"`

	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: CostOptimized, PowerOptimized, WithinBudget, FiguresComplete, SelectorInvalid,
	// TelemetryFresh.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// WorkloadOptimizer declares cost, power and placement goals for one AI workload.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wo,categories=kcloud
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.workloadType`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Cost/h",type=number,JSONPath=`.status.currentCost`,description="USD per hour"
// +kubebuilder:printcolumn:name="Power",type=number,JSONPath=`.status.currentPower`,description="Watts"
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.assignedNode`
// +kubebuilder:printcolumn:name="Score",type=number,JSONPath=`.status.optimizationScore`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WorkloadOptimizer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec WorkloadOptimizerSpec `json:"spec"`
	// +optional
	Status WorkloadOptimizerStatus `json:"status,omitempty"`
}

// WorkloadOptimizerList is a list of WorkloadOptimizer.
// +kubebuilder:object:root=true
type WorkloadOptimizerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkloadOptimizer `json:"items"`
}

func init() {
	register(&WorkloadOptimizer{}, &WorkloadOptimizerList{})
}
