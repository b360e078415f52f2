package kube

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
)

func TestCoverMatcher(t *testing.T) {
	pod := func(ns string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Labels: labels}}
	}
	team := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "ml"}}
	tests := []struct {
		name   string
		target kcloudv1alpha1.PolicyTarget
		pod    *corev1.Pod
		want   bool
	}{
		{"empty target covers every pod", kcloudv1alpha1.PolicyTarget{}, pod("a", nil), true},
		{"listed namespace", kcloudv1alpha1.PolicyTarget{Namespaces: []string{"a", "b"}}, pod("b", nil), true},
		{"other namespace", kcloudv1alpha1.PolicyTarget{Namespaces: []string{"a"}}, pod("c", nil), false},
		{"selector matches", kcloudv1alpha1.PolicyTarget{Selector: team}, pod("a", map[string]string{"team": "ml"}), true},
		{"selector does not match", kcloudv1alpha1.PolicyTarget{Selector: team}, pod("a", map[string]string{"team": "web"}), false},
		{"both must hold", kcloudv1alpha1.PolicyTarget{Namespaces: []string{"a"}, Selector: team}, pod("b", map[string]string{"team": "ml"}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			covers, err := CoverMatcher(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if got := covers(tt.pod); got != tt.want {
				t.Errorf("CoverMatcher = %v, want %v", got, tt.want)
			}
			if got := Covers(tt.target, tt.pod); got != tt.want {
				t.Errorf("Covers = %v, want %v", got, tt.want)
			}
		})
	}
	// A selector stored before admission checked it fails closed: it covers what its valid parts
	// match, in its namespaces, and says why.
	bad := kcloudv1alpha1.PolicyTarget{Namespaces: []string{"a"}, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "ml"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}, {Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"gold"}}}}}
	covers, err := CoverMatcher(bad)
	if err == nil || !strings.Contains(err.Error(), `"Bogus" is not a valid label selector operator`) {
		t.Errorf("error %v, want the operator named", err)
	}
	for _, tc := range []struct {
		pod  *corev1.Pod
		want bool
	}{
		{pod("a", map[string]string{"team": "ml", "tier": "gold"}), true},
		{pod("a", map[string]string{"team": "ml", "tier": "gold", "k": "v"}), true},
		{pod("a", map[string]string{"team": "ml"}), false},                  // the valid In still holds
		{pod("a", map[string]string{"team": "web", "tier": "gold"}), false}, // so do the labels
		{pod("b", map[string]string{"team": "ml", "tier": "gold"}), false},  // and the namespaces
	} {
		if got := covers(tc.pod); got != tc.want {
			t.Errorf("invalid selector covers %s %v = %v, want %v", tc.pod.Namespace, tc.pod.Labels, got, tc.want)
		}
	}
}

func TestSelectorErrors(t *testing.T) {
	path := field.NewPath("spec", "selector")
	for _, tc := range []struct {
		name string
		sel  *metav1.LabelSelector
		want []string // each must appear in the errors, in order
	}{
		{"none", nil, nil},
		{"valid", &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "t", Operator: metav1.LabelSelectorOpExists}}}, nil},
		{"unknown operator", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "ok", Operator: "Exists"}, {Key: "k", Operator: "Bogus"}}},
			[]string{`spec.selector.matchExpressions[1].operator: Invalid value: "Bogus"`}},
		{"In without values", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: metav1.LabelSelectorOpIn}}},
			[]string{"spec.selector.matchExpressions[0].values: Required value"}},
		{"Exists with values", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: metav1.LabelSelectorOpExists, Values: []string{"x"}}}},
			[]string{"spec.selector.matchExpressions[0].values: Forbidden"}},
		{"bad label value", &metav1.LabelSelector{MatchLabels: map[string]string{"team": "not ok!"}},
			[]string{`spec.selector.matchLabels: Invalid value: "not ok!"`}},
		{"bad key", &metav1.LabelSelector{MatchLabels: map[string]string{"-x": "y"}}, []string{`spec.selector.matchLabels: Invalid value: "-x"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := SelectorErrors(tc.sel, path)
			if len(tc.want) == 0 {
				if len(errs) > 0 {
					t.Fatalf("errors %v, want none", errs)
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("no error, want %q", tc.want)
			}
			msg := errs.ToAggregate().Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("errors %q lack %q", msg, w)
				}
			}
			// Every selector admission refuses is one the controllers could not parse, and back.
			if _, err := metav1.LabelSelectorAsSelector(tc.sel); err == nil {
				t.Errorf("admission refuses a selector that parses")
			}
		})
	}
}
