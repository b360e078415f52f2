package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// BudgetPeriod is the accounting window of a budget. A period starts at 00:00 UTC of its first day;
// weeks start on Monday, months on the first day of the month.
// +kubebuilder:validation:Enum=day;week;month
type BudgetPeriod string

const (
	// BudgetPeriodDay: a UTC day.
	BudgetPeriodDay BudgetPeriod = "day"
	// BudgetPeriodWeek: Monday 00:00 UTC to the next Monday.
	BudgetPeriodWeek BudgetPeriod = "week"
	// BudgetPeriodMonth: the first day of a month 00:00 UTC to the first of the next.
	BudgetPeriodMonth BudgetPeriod = "month"
)

// EnforcementMode says what happens when a policy limit is reached.
// +kubebuilder:validation:Enum=warn;deny;scale-down
type EnforcementMode string

const (
	// EnforcementWarn records events and conditions and changes nothing else.
	EnforcementWarn EnforcementMode = "warn"
	// EnforcementDeny refuses new pods of covered workloads at admission once a limit is reached.
	EnforcementDeny EnforcementMode = "deny"
	// EnforcementScaleDown shrinks the autoscaler's target of covered workloads until back within limits.
	EnforcementScaleDown EnforcementMode = "scale-down"
)

// PolicyTarget says which pods a CostPolicy or PowerPolicy covers: pods in the listed namespaces (all
// namespaces when empty) whose labels match the selector (all pods when absent).
type PolicyTarget struct {
	// namespaces the policy covers; empty means every namespace.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespaces []string `json:"namespaces,omitempty"`

	// selector matches the labels of covered pods; absent means every pod in the namespaces.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// ConditionCarbonExceeded is true on a PowerPolicy while covered pods run on grids dirtier than
// spec.maxCarbonIntensity.
const ConditionCarbonExceeded = "CarbonIntensityExceeded"

// ConditionFiguresComplete is False on a WorkloadOptimizer, CostPolicy or PowerPolicy while some of
// the pods it covers run on nodes without a price (or, for power, without a power figure for their
// accelerators): its figures leave those pods' cost (or draw) out, and the message names them.
const ConditionFiguresComplete = "FiguresComplete"

// Reasons of ConditionFiguresComplete.
const (
	ReasonAllFiguresKnown = "AllFiguresKnown"
	ReasonUnpricedNodes   = "UnpricedNodes"
	ReasonUnpoweredNodes  = "UnpoweredNodes"
)

// ConditionSelectorInvalid is True on a WorkloadOptimizer, CostPolicy or PowerPolicy whose
// spec.selector does not parse (admission refuses such selectors; this one was stored before). A
// policy then covers, and charges, every pod its valid requirements match, and one that enforces
// refuses those pods until the selector is fixed; an optimizer finds its pods without it.
const ConditionSelectorInvalid = "SelectorInvalid"

// Reasons of ConditionSelectorInvalid.
const (
	ReasonSelectorParsed       = "SelectorParsed"
	ReasonSelectorDoesNotParse = "SelectorDoesNotParse"
)

// Condition reasons shared by the kinds of this package.
const (
	ReasonWithinBudget     = "WithinBudget"
	ReasonThresholdReached = "ThresholdReached"
	ReasonBudgetExhausted  = "BudgetExhausted"
	ReasonWithinCap        = "WithinCap"
	ReasonCapExceeded      = "CapExceeded"
	// ReasonEvictedOverBudget is the event on a pod the budget guard evicts: it was created after
	// a deny-mode budget covering it had run out, and admission did not refuse it.
	ReasonEvictedOverBudget = "EvictedOverBudget"
)

// Condition reasons of WorkloadOptimizer.
const (
	ReasonCheapestPlacement            = "CheapestPlacement"
	ReasonCheaperPlacementAvailable    = "CheaperPlacementAvailable"
	ReasonLowestPowerPlacement         = "LowestPowerPlacement"
	ReasonLowerPowerPlacementAvailable = "LowerPowerPlacementAvailable"
	ReasonNoRunningPods                = "NoRunningPods"
	ReasonNoLimits                     = "NoLimits"
	ReasonTargetNotFound               = "TargetNotFound"
)

// FinalizerAccounting holds a deleted pod that a CostPolicy, a PowerPolicy or an optimizer's budget
// charges until every one of those ledgers has accounted the pod's time up to its end, so no second
// it ran is lost to a deletion between two accountings or while the operator is down. The operator
// removes it within one accounting; see docs/designs/accounting.md to release it by hand.
const FinalizerAccounting = "kcloud.io/accounting"

// FinalizerCleanup lets the operator remove what it added to a workload (the link label on its
// pods) before a WorkloadOptimizer goes away.
const FinalizerCleanup = "kcloud.io/cleanup"
