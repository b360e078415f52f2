package accounting

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/events"
)

func TestPolicyConditionsBudget(t *testing.T) {
	amount := 100.0
	tests := []struct {
		name       string
		was        []metav1.Condition
		amount     *float64
		used       float64
		want       map[string]string // condition type -> status/reason
		wantEvents []events.Event
	}{{
		name: "within budget, below every threshold", amount: &amount, used: 10,
		want: map[string]string{kcloudv1alpha1.ConditionBudgetExceeded: "False/WithinBudget", kcloudv1alpha1.ConditionBudgetWarning: "False/WithinBudget"},
	}, {
		name: "a threshold reached: one warning event", amount: &amount, used: 85,
		want: map[string]string{kcloudv1alpha1.ConditionBudgetExceeded: "False/WithinBudget", kcloudv1alpha1.ConditionBudgetWarning: "True/ThresholdReached"},
		wantEvents: []events.Event{{Type: corev1.EventTypeWarning, Reason: kcloudv1alpha1.ConditionBudgetWarning, Action: "Account",
			Note: "used: the 80% threshold is reached; enforcement: warn"}},
	}, {
		name: "exhausted, already warned: only the new condition's event", amount: &amount, used: 100,
		was:  []metav1.Condition{{Type: kcloudv1alpha1.ConditionBudgetWarning, Status: metav1.ConditionTrue, Reason: "ThresholdReached"}},
		want: map[string]string{kcloudv1alpha1.ConditionBudgetExceeded: "True/BudgetExhausted", kcloudv1alpha1.ConditionBudgetWarning: "True/ThresholdReached"},
		wantEvents: []events.Event{{Type: corev1.EventTypeWarning, Reason: kcloudv1alpha1.ConditionBudgetExceeded, Action: "Account",
			Note: "used; enforcement: warn"}},
	}, {
		name: "no budget: the conditions go",
		was:  []metav1.Condition{{Type: kcloudv1alpha1.ConditionBudgetWarning, Status: metav1.ConditionTrue, Reason: "ThresholdReached"}},
		want: map[string]string{},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list := append([]metav1.Condition(nil), tc.was...)
			pc := NewPolicyConditions(&list, 3, "")
			pc.Budget(tc.amount, []int32{50, 80}, tc.used, "used")
			got := map[string]string{}
			for _, c := range list {
				got[c.Type] = string(c.Status) + "/" + c.Reason
				if c.ObservedGeneration != 3 {
					t.Errorf("%s: observedGeneration %d, want 3", c.Type, c.ObservedGeneration)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantEvents, pc.Events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFiguresComplete(t *testing.T) {
	missing := []string{"ml/a on n1: no price", "ml/b on n1: no price", "ml/c on n2: no price", "ml/d on n2: no price", "ml/e on n3: no price", "ml/f on n3: no price"}
	tests := []struct {
		name       string
		was        metav1.ConditionStatus
		missing    []string
		want       string // status/reason
		wantMsg    string
		wantEvents int
	}{
		{"all known", "", nil, "True/AllFiguresKnown", "every covered pod runs on a node with a known price", 0},
		{"two pods unpriced: a warning", metav1.ConditionTrue, missing[:2], "False/UnpricedNodes",
			"2 covered pod(s) run on nodes without a price, left out of the figures: ml/a on n1: no price; ml/b on n1: no price", 1},
		{"still unpriced: no new event; the first five named", metav1.ConditionFalse, missing, "False/UnpricedNodes",
			"6 covered pod(s) run on nodes without a price, left out of the figures: ml/a on n1: no price; ml/b on n1: no price; ml/c on n2: no price; ml/d on n2: no price; ml/e on n3: no price; and 1 more", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var conds []metav1.Condition
			if tc.was != "" {
				conds = []metav1.Condition{{Type: kcloudv1alpha1.ConditionFiguresComplete, Status: tc.was, Reason: "x"}}
			}
			pc := NewPolicyConditions(&conds, 1, kcloudv1alpha1.EnforcementWarn)
			pc.FiguresComplete(kcloudv1alpha1.ReasonUnpricedNodes, "price", tc.missing)
			c := conds[0]
			if got := string(c.Status) + "/" + c.Reason; got != tc.want || c.Message != tc.wantMsg {
				t.Errorf("condition %s %q, want %s %q", got, c.Message, tc.want, tc.wantMsg)
			}
			if len(pc.Events) != tc.wantEvents {
				t.Errorf("%d events, want %d: %v", len(pc.Events), tc.wantEvents, pc.Events)
			}
		})
	}
}
