package accounting

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/events"
	"kcloud.io/optimizer/pkg/model"
)

// PolicyConditions sets a CostPolicy's or PowerPolicy's conditions and collects, as values, a
// Warning event for each condition that turns true, to be recorded once status is written.
type PolicyConditions struct {
	list        *[]metav1.Condition
	generation  int64
	was         map[string]metav1.ConditionStatus
	enforcement kcloudv1alpha1.EnforcementMode
	// Events are the Warning events of the conditions that turned true (reason: the condition's type).
	Events []events.Event
}

// NewPolicyConditions works on a policy's status conditions.
func NewPolicyConditions(list *[]metav1.Condition, generation int64, enforcement kcloudv1alpha1.EnforcementMode) *PolicyConditions {
	if enforcement == "" {
		enforcement = kcloudv1alpha1.EnforcementWarn
	}
	was := map[string]metav1.ConditionStatus{}
	for _, c := range *list {
		was[c.Type] = c.Status
	}
	return &PolicyConditions{list: list, generation: generation, was: was, enforcement: enforcement}
}

// Set sets one condition; a true one says the enforcement mode.
func (pc *PolicyConditions) Set(typ string, status metav1.ConditionStatus, reason, msg string) {
	if status == metav1.ConditionTrue {
		msg += "; enforcement: " + string(pc.enforcement)
	}
	meta.SetStatusCondition(pc.list, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: pc.generation})
	if status == metav1.ConditionTrue && pc.was[typ] != metav1.ConditionTrue {
		pc.Events = append(pc.Events, events.Event{Type: corev1.EventTypeWarning, Reason: typ, Action: "Account", Note: msg})
	}
}

// Selector sets SelectorInvalid from why the policy's selector does not parse (nil: it parses), or
// removes it when the policy has no selector.
func (pc *PolicyConditions) Selector(set bool, err error) {
	if !set {
		meta.RemoveStatusCondition(pc.list, kcloudv1alpha1.ConditionSelectorInvalid)
		return
	}
	if err == nil {
		pc.Set(kcloudv1alpha1.ConditionSelectorInvalid, metav1.ConditionFalse, kcloudv1alpha1.ReasonSelectorParsed, "spec.selector parses")
		return
	}
	msg := fmt.Sprintf("spec.%v: the policy covers and charges every pod its valid requirements match", err)
	if pc.enforcement != kcloudv1alpha1.EnforcementWarn {
		msg += ", and refuses them all until the selector is fixed"
	}
	pc.Set(kcloudv1alpha1.ConditionSelectorInvalid, metav1.ConditionTrue, kcloudv1alpha1.ReasonSelectorDoesNotParse, msg)
}

// Budget sets BudgetExceeded and BudgetWarning for used against amount (nil budget: removes them).
// usage describes the figures, e.g. "spent 12.5 of 100 USD in the month since ...".
func (pc *PolicyConditions) Budget(amount *float64, thresholds []int32, used float64, usage string) {
	if amount == nil {
		meta.RemoveStatusCondition(pc.list, kcloudv1alpha1.ConditionBudgetExceeded)
		meta.RemoveStatusCondition(pc.list, kcloudv1alpha1.ConditionBudgetWarning)
		return
	}
	if used >= *amount {
		pc.Set(kcloudv1alpha1.ConditionBudgetExceeded, metav1.ConditionTrue, kcloudv1alpha1.ReasonBudgetExhausted, usage)
	} else {
		pc.Set(kcloudv1alpha1.ConditionBudgetExceeded, metav1.ConditionFalse, kcloudv1alpha1.ReasonWithinBudget, usage)
	}
	if top := model.ThresholdsReached(used, *amount, thresholds); top > 0 {
		pc.Set(kcloudv1alpha1.ConditionBudgetWarning, metav1.ConditionTrue, kcloudv1alpha1.ReasonThresholdReached, fmt.Sprintf("%s: the %d%% threshold is reached", usage, top))
	} else {
		pc.Set(kcloudv1alpha1.ConditionBudgetWarning, metav1.ConditionFalse, kcloudv1alpha1.ReasonWithinBudget, usage)
	}
}

// Cap sets a cap condition (CapExceeded, CarbonIntensityExceeded) from whether it is exceeded, or
// removes it when the policy sets no such cap.
func (pc *PolicyConditions) Cap(typ string, set, exceeded bool, msg string) {
	switch {
	case !set:
		meta.RemoveStatusCondition(pc.list, typ)
	case exceeded:
		pc.Set(typ, metav1.ConditionTrue, kcloudv1alpha1.ReasonCapExceeded, msg)
	default:
		pc.Set(typ, metav1.ConditionFalse, kcloudv1alpha1.ReasonWithinCap, msg)
	}
}

// FiguresComplete sets ConditionFiguresComplete: True when no covered pod runs where a figure is
// missing; False with the reason and the first pods of missing ("namespace/name on node: why")
// otherwise, and a Warning event when it turns False. what names the figure ("price", "power").
func (pc *PolicyConditions) FiguresComplete(reason, what string, missing []string) {
	SetFiguresComplete(pc.list, pc.generation, pc.was[kcloudv1alpha1.ConditionFiguresComplete], reason, what, missing, &pc.Events)
}

// Departed adds to FiguresComplete's message the covered pods whose node is deleted and which are
// charged at its last known figures (cluster.Figures.Departed), so the figures say which they are.
func (pc *PolicyConditions) Departed(pods []string) {
	c := meta.FindStatusCondition(*pc.list, kcloudv1alpha1.ConditionFiguresComplete)
	if c == nil || len(pods) == 0 {
		return
	}
	shown := pods
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(pods)-5))
	}
	c.Message += fmt.Sprintf("; %d covered pod(s) on deleted nodes, charged at the last figures known for them: %s", len(pods), strings.Join(shown, "; "))
}

// SetFiguresComplete is FiguresComplete for any kind's conditions (the WorkloadOptimizer's too):
// was is the condition's status before this reconcile; events gets the Warning of a turn to False.
func SetFiguresComplete(list *[]metav1.Condition, generation int64, was metav1.ConditionStatus, reason, what string, missing []string, evs *[]events.Event) {
	if len(missing) == 0 {
		meta.SetStatusCondition(list, metav1.Condition{Type: kcloudv1alpha1.ConditionFiguresComplete, Status: metav1.ConditionTrue,
			Reason: kcloudv1alpha1.ReasonAllFiguresKnown, Message: "every covered pod runs on a node with a known " + what, ObservedGeneration: generation})
		return
	}
	shown := missing
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(missing)-5))
	}
	msg := fmt.Sprintf("%d covered pod(s) run on nodes without a %s, left out of the figures: %s", len(missing), what, strings.Join(shown, "; "))
	meta.SetStatusCondition(list, metav1.Condition{Type: kcloudv1alpha1.ConditionFiguresComplete, Status: metav1.ConditionFalse,
		Reason: reason, Message: msg, ObservedGeneration: generation})
	if was != metav1.ConditionFalse {
		*evs = append(*evs, events.Event{Type: corev1.EventTypeWarning, Reason: reason, Action: "Account", Note: msg})
	}
}
