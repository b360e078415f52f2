package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnnotationSafeToEvict on a training pod ("true") says it checkpoints and may be restarted, so the
// rebalancer may move it; training pods without it are never evicted. "false" on any pod keeps the
// rebalancer away from it, as do cluster-autoscaler.kubernetes.io/safe-to-evict: "false" and
// karpenter.sh/do-not-disrupt: "true".
const AnnotationSafeToEvict = "kcloud.io/safe-to-evict"

// RebalancingMode says whether the rebalancer may move a workload's pods.
// +kubebuilder:validation:Enum=Auto;Disabled
type RebalancingMode string

const (
	// RebalancingAuto: the rebalancer may evict the workload's pods to move them where they cost
	// or draw less, within its thresholds and caps, respecting PodDisruptionBudgets.
	RebalancingAuto RebalancingMode = "Auto"
	// RebalancingDisabled: the rebalancer never evicts the workload's pods.
	RebalancingDisabled RebalancingMode = "Disabled"
)

// RebalancingPolicy is the workload's say in rebalancing.
type RebalancingPolicy struct {
	// mode: Auto (the default) lets the rebalancer move the workload's pods; Disabled keeps them.
	// +optional
	// +kubebuilder:default=Auto
	Mode RebalancingMode `json:"mode,omitempty"`
}

// RebalancingStatus reports what the rebalancer planned and did for the workload.
type RebalancingStatus struct {
	// lastRun is when the rebalancer last planned moves of the workload's pods.
	// +optional
	LastRun *metav1.Time `json:"lastRun,omitempty"`

	// dryRun is true when the last run only reported its moves.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`

	// planned is the number of the workload's pods the last run chose to move.
	// +optional
	Planned int32 `json:"planned,omitempty"`

	// evicted is the number of them the last run evicted.
	// +optional
	Evicted int32 `json:"evicted,omitempty"`

	// blocked is the number of them whose eviction a PodDisruptionBudget refused in the last run.
	// +optional
	Blocked int32 `json:"blocked,omitempty"`

	// plannedSavingsPerHour is what the last run's moves of this workload save once done, in USD
	// per hour (the cluster's bill; a move shared with other workloads counts its share).
	// +optional
	PlannedSavingsPerHour float64 `json:"plannedSavingsPerHour,omitempty"`

	// plannedPowerSavings is the same in watts.
	// +optional
	PlannedPowerSavings float64 `json:"plannedPowerSavings,omitempty"`

	// totalEvictions counts the workload's pods the rebalancer has evicted.
	// +optional
	TotalEvictions int64 `json:"totalEvictions,omitempty"`

	// moves lists the last run's moves (at most 20).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	Moves []RebalanceMove `json:"moves,omitempty"`
}

// RebalanceMove is one pod the rebalancer moved or would move.
type RebalanceMove struct {
	// pod is the pod's name.
	Pod string `json:"pod"`

	// from is the node it ran on.
	From string `json:"from"`

	// to is the node room was reserved on.
	To string `json:"to"`

	// outcome: Evicted, Blocked (a PodDisruptionBudget refused), Failed, Deferred (a cap left
	// it for a later run) or Planned (dry run).
	Outcome string `json:"outcome"`

	// savingsPerHour is the move's share of its unit's saving, in USD per hour.
	// +optional
	SavingsPerHour float64 `json:"savingsPerHour,omitempty"`

	// powerSavings is the same in watts.
	// +optional
	PowerSavings float64 `json:"powerSavings,omitempty"`
}

// Outcomes of a rebalancing move.
const (
	MoveEvicted  = "Evicted"
	MoveBlocked  = "Blocked"
	MoveFailed   = "Failed"
	MoveDeferred = "Deferred"
	MovePlanned  = "Planned"
)

// Event reasons of the rebalancer.
const (
	// ReasonRebalanced: a pod was evicted to move it (on the pod and its WorkloadOptimizer).
	ReasonRebalanced = "Rebalanced"
	// ReasonRebalancePlanned: a dry run would move a pod.
	ReasonRebalancePlanned = "RebalancePlanned"
	// ReasonRebalanceBlocked: a PodDisruptionBudget refused the eviction.
	ReasonRebalanceBlocked = "RebalanceBlocked"
)
