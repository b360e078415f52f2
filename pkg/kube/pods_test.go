package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	bad := kcloudv1alpha1.PolicyTarget{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}}
	if _, err := CoverMatcher(bad); err == nil {
		t.Error("an invalid selector was accepted")
	}
	if Covers(bad, pod("a", nil)) {
		t.Error("an invalid selector covers a pod")
	}
}
