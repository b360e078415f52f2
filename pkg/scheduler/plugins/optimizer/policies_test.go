package optimizer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/model"
)

// storeOf is a policy store whose informers hold the given objects, as their transform leaves them.
func storeOf(t *testing.T, objs map[schema.GroupVersionResource][]any) *policyStore {
	t.Helper()
	s := &policyStore{informers: map[schema.GroupVersionResource]cache.SharedIndexInformer{}}
	for _, gvr := range []schema.GroupVersionResource{gvrOptimizers, gvrCostPolicies, gvrPowerPolicies} {
		inf := cache.NewSharedIndexInformer(&cache.ListWatch{}, &unstructured.Unstructured{}, 0, cache.Indexers{})
		for _, o := range objs[gvr] {
			if err := inf.GetStore().Add(o); err != nil {
				t.Fatal(err)
			}
		}
		s.informers[gvr] = inf
	}
	return s
}

// A policy's cap covers the pods its target selects: the pod itself, and the others whose usage
// counts against it; a policy that does not select the pod adds nothing, and one whose selector
// does not parse fails closed over what its valid part selects (a limit no node meets).
func TestPolicyLimitsAndWhoSharesThem(t *testing.T) {
	cap, watts := 3.0, 500.0
	target := func(key, value string) kcloudv1alpha1.PolicyTarget {
		return kcloudv1alpha1.PolicyTarget{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{key: value}}}
	}
	bad := kcloudv1alpha1.PolicyTarget{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Near"}}}}
	cost := func(name string, t kcloudv1alpha1.PolicyTarget) any {
		return &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: t, MaxCostPerHour: &cap, Enforcement: kcloudv1alpha1.EnforcementDeny}}
	}
	s := storeOf(t, map[schema.GroupVersionResource][]any{
		gvrCostPolicies: {cost("web-cap", target("app", "web")), cost("db-cap", target("app", "db")), cost("broken", bad)},
		gvrPowerPolicies: {&kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "team-a"},
			Spec: kcloudv1alpha1.PowerPolicySpec{PolicyTarget: target("team", "a"), MaxPowerWatts: &watts, Enforcement: kcloudv1alpha1.EnforcementDeny}}},
	})
	labelled := func(name string, labels map[string]string) *corev1.Pod {
		p := pod(name)
		p.Labels = labels
		return p
	}
	web := labelled("web-0", map[string]string{"app": "web", "team": "a"})
	pp := s.policyFor(web)
	var got []string
	for _, l := range pp.Limits {
		got = append(got, l.Source)
	}
	if diff := cmp.Diff([]string{"CostPolicy web-cap", "PowerPolicy team-a"}, got); diff != "" {
		t.Fatalf("limits (-want +got):\n%s", diff)
	}
	if pp.Limits[0].Kind != model.LimitCostPerHour || pp.Limits[1].Kind != model.LimitPowerWatts {
		t.Errorf("kinds: %v, %v", pp.Limits[0].Kind, pp.Limits[1].Kind)
	}
	var kinds []model.LimitKind
	for _, l := range s.policyFor(labelled("db-1", map[string]string{"app": "db"})).Limits {
		kinds = append(kinds, l.Kind)
	}
	if diff := cmp.Diff([]model.LimitKind{model.LimitCostPerHour, model.LimitCostPerHour, model.LimitInvalid}, kinds); diff != "" {
		t.Errorf("db pod's limit kinds: db-cap, then broken's cap and its invalid selector (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		pod        *corev1.Pod
		cost, team bool
	}{
		{labelled("web-1", map[string]string{"app": "web"}), true, false},
		{labelled("db-0", map[string]string{"app": "db", "team": "a"}), false, true},
		{labelled("other", nil), false, false},
	} {
		if got := pp.Limits[0].Shares(tc.pod); got != tc.cost {
			t.Errorf("%s shares the web cap: %v, want %v", tc.pod.Name, got, tc.cost)
		}
		if got := pp.Limits[1].Shares(tc.pod); got != tc.team {
			t.Errorf("%s shares the team power cap: %v, want %v", tc.pod.Name, got, tc.team)
		}
	}
}
