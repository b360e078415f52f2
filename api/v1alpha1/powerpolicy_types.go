package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// PowerPolicySpec limits what the covered workloads may draw together.
// +kubebuilder:validation:XValidation:rule="has(self.maxPowerWatts) || has(self.energyBudget) || has(self.maxCarbonIntensity) || (has(self.preferGreen) && self.preferGreen)",message="a PowerPolicy must set at least one of maxPowerWatts, energyBudget, maxCarbonIntensity or preferGreen"
type PowerPolicySpec struct {
	PolicyTarget `json:",inline"`

	// maxPowerWatts caps the combined draw of all covered pods, in watts.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxPowerWatts *float64 `json:"maxPowerWatts,omitempty"`

	// energyBudget caps the energy covered pods may use over a period.
	// +optional
	EnergyBudget *EnergyBudget `json:"energyBudget,omitempty"`

	// preferGreen favours nodes in regions of low carbon intensity or labelled as green energy.
	// +optional
	PreferGreen bool `json:"preferGreen,omitempty"`

	// maxCarbonIntensity keeps covered pods off nodes whose grid is dirtier than this, in gCO2/kWh.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2000
	MaxCarbonIntensity *float64 `json:"maxCarbonIntensity,omitempty"`

	// enforcement is what happens when a limit is reached.
	// +optional
	// +kubebuilder:default=warn
	Enforcement EnforcementMode `json:"enforcement,omitempty"`
}

// EnergyBudget is an amount of energy per period.
type EnergyBudget struct {
	// kilowattHours per period.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:ExclusiveMinimum=true
	KilowattHours float64 `json:"kilowattHours"`

	// period the amount applies to; energy resets at the start of each period.
	// +optional
	// +kubebuilder:default=month
	Period BudgetPeriod `json:"period,omitempty"`

	// alertThresholds are percentages of kilowattHours at which the BudgetWarning condition turns on.
	// +optional
	// +listType=set
	// +kubebuilder:default={80,100}
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=100
	AlertThresholds []int32 `json:"alertThresholds,omitempty"`
}

// PowerPolicyStatus is the power and energy accounted in the current period.
type PowerPolicyStatus struct {
	// periodStart is when the current period began.
	// +optional
	PeriodStart *metav1.Time `json:"periodStart,omitempty"`

	// accountedUntil is the instant up to which energy is counted, so a restarted operator continues
	// from there.
	// +optional
	AccountedUntil *metav1.Time `json:"accountedUntil,omitempty"`

	// currentPowerWatts of all covered pods now.
	// +optional
	CurrentPowerWatts float64 `json:"currentPowerWatts,omitempty"`

	// energyThisPeriodKWh used by covered pods in the current period.
	// +optional
	EnergyThisPeriodKWh float64 `json:"energyThisPeriodKWh,omitempty"`

	// carbonThisPeriodKg emitted by covered pods in the current period, in kg CO2.
	// +optional
	CarbonThisPeriodKg float64 `json:"carbonThisPeriodKg,omitempty"`

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

// PowerPolicy caps the power, energy and carbon of a set of workloads.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ppol,categories=kcloud
// +kubebuilder:printcolumn:name="Cap W",type=number,JSONPath=`.spec.maxPowerWatts`
// +kubebuilder:printcolumn:name="Budget kWh",type=number,JSONPath=`.spec.energyBudget.kilowattHours`
// +kubebuilder:printcolumn:name="Power W",type=number,JSONPath=`.status.currentPowerWatts`
// +kubebuilder:printcolumn:name="Energy kWh",type=number,JSONPath=`.status.energyThisPeriodKWh`
// +kubebuilder:printcolumn:name="Enforcement",type=string,JSONPath=`.spec.enforcement`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PowerPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PowerPolicySpec `json:"spec"`
	// +optional
	Status PowerPolicyStatus `json:"status,omitempty"`
}

// PowerPolicyList is a list of PowerPolicy.
// +kubebuilder:object:root=true
type PowerPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PowerPolicy `json:"items"`
}

func init() {
	register(&PowerPolicy{}, &PowerPolicyList{})
}
