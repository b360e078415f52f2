package v1alpha1

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/model"
)

// TestCheckPodInvalidSelector: an enforcing policy stored with a selector that does not parse
// refuses the pods its valid parts match (it fails closed), names the field, and leaves the rest
// alone; in warn mode it refuses nothing.
func TestCheckPodInvalidSelector(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "ml"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Bogus"}}}
	policy := func(mode kcloudv1alpha1.EnforcementMode) kcloudv1alpha1.CostPolicy {
		return kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "ml"}, Spec: kcloudv1alpha1.CostPolicySpec{
			PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{"ai"}, Selector: sel}, Enforcement: mode}}
	}
	pod := func(ns, team string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p", Labels: map[string]string{"team": team}}}
	}
	least := func() (model.Totals, bool) { return model.Totals{CostPerHour: 1}, true }
	for _, tc := range []struct {
		name string
		mode kcloudv1alpha1.EnforcementMode
		pod  *corev1.Pod
		want string // "" admitted
	}{
		{"deny, matched by the valid part", kcloudv1alpha1.EnforcementDeny, pod("ai", "ml"),
			`CostPolicy ml: spec.selector: "Bogus" is not a valid label selector operator; the policy enforces, so it refuses every pod it may cover until the selector is fixed`},
		{"deny, other labels", kcloudv1alpha1.EnforcementDeny, pod("ai", "web"), ""},
		{"deny, other namespace", kcloudv1alpha1.EnforcementDeny, pod("web", "ml"), ""},
		{"warn", kcloudv1alpha1.EnforcementWarn, pod("ai", "ml"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(CheckPod(tc.pod, []kcloudv1alpha1.CostPolicy{policy(tc.mode)}, nil, least, nil), "; ")
			if got != tc.want {
				t.Errorf("problems %q, want %q", got, tc.want)
			}
		})
	}
}
