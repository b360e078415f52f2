package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// SpotPolicy says how covered workloads use spot (preemptible) capacity.
// +kubebuilder:validation:Enum=prefer;require;avoid
type SpotPolicy string

const (
	// SpotPrefer scores spot nodes higher; on-demand nodes stay allowed.
	SpotPrefer SpotPolicy = "prefer"
	// SpotRequire places covered pods on spot nodes only.
	SpotRequire SpotPolicy = "require"
	// SpotAvoid keeps covered pods off spot nodes.
	SpotAvoid SpotPolicy = "avoid"
)

// CostPolicySpec limits what the covered workloads may cost together.
// +kubebuilder:validation:XValidation:rule="has(self.maxCostPerHour) || has(self.budget) || has(self.spotPolicy)",message="a CostPolicy must set at least one of maxCostPerHour, budget or spotPolicy"
type CostPolicySpec struct {
	PolicyTarget `json:",inline"`

	// maxCostPerHour caps the combined hourly cost of all covered pods, in USD per hour.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxCostPerHour *float64 `json:"maxCostPerHour,omitempty"`

	// budget caps what covered pods may spend over a period.
	// +optional
	Budget *CostBudget `json:"budget,omitempty"`

	// spotPolicy says whether covered pods prefer, require or avoid spot capacity.
	// +optional
	SpotPolicy SpotPolicy `json:"spotPolicy,omitempty"`

	// enforcement is what happens when a limit is reached.
	// +optional
	// +kubebuilder:default=warn
	Enforcement EnforcementMode `json:"enforcement,omitempty"`
}

// CostBudget is an amount of money per period.
type CostBudget struct {
	// amount in USD per period.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:ExclusiveMinimum=true
	Amount float64 `json:"amount"`

	// period the amount applies to; spend resets at the start of each period.
	// +optional
	// +kubebuilder:default=month
	Period BudgetPeriod `json:"period,omitempty"`

	// alertThresholds are percentages of amount at which the BudgetWarning condition turns on; the
	// highest reached is reported.
	// +optional
	// +listType=set
	// +kubebuilder:default={80,100}
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=100
	AlertThresholds []int32 `json:"alertThresholds,omitempty"`
}

// Condition types of CostPolicy and PowerPolicy.
const (
	ConditionBudgetWarning  = "BudgetWarning"
	ConditionBudgetExceeded = "BudgetExceeded"
	ConditionCapExceeded    = "CapExceeded"
)

// CostPolicyStatus is the money accounted in the current period.
type CostPolicyStatus struct {
	// periodStart is when the current period began.
	// +optional
	PeriodStart *metav1.Time `json:"periodStart,omitempty"`

	// accountedUntil is the instant up to which spend is counted, so a restarted operator continues
	// from there.
	// +optional
	AccountedUntil *metav1.Time `json:"accountedUntil,omitempty"`

	// currentSpend in the current period, in USD.
	// +optional
	CurrentSpend float64 `json:"currentSpend,omitempty"`

	// remainingBudget in the current period, in USD; absent without a budget.
	// +optional
	RemainingBudget *float64 `json:"remainingBudget,omitempty"`

	// currentCostPerHour of all covered pods now, in USD per hour.
	// +optional
	CurrentCostPerHour float64 `json:"currentCostPerHour,omitempty"`

	// coveredPods is the number of running pods the policy covers.
	// +optional
	CoveredPods int32 `json:"coveredPods,omitempty"`

	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: BudgetWarning, BudgetExceeded, CapExceeded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// CostPolicy caps and budgets the money that a set of workloads may cost.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cpol,categories=kcloud
// +kubebuilder:printcolumn:name="Cap/h",type=number,JSONPath=`.spec.maxCostPerHour`,description="USD per hour"
// +kubebuilder:printcolumn:name="Budget",type=number,JSONPath=`.spec.budget.amount`,description="USD per period"
// +kubebuilder:printcolumn:name="Period",type=string,JSONPath=`.spec.budget.period`
// +kubebuilder:printcolumn:name="Spent",type=number,JSONPath=`.status.currentSpend`,description="USD this period"
// +kubebuilder:printcolumn:name="Remaining",type=number,JSONPath=`.status.remainingBudget`
// +kubebuilder:printcolumn:name="Enforcement",type=string,JSONPath=`.spec.enforcement`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CostPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec CostPolicySpec `json:"spec"`
	// +optional
	Status CostPolicyStatus `json:"status,omitempty"`
}

// CostPolicyList is a list of CostPolicy.
// +kubebuilder:object:root=true
type CostPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CostPolicy `json:"items"`
}

func init() {
	register(&CostPolicy{}, &CostPolicyList{})
}
