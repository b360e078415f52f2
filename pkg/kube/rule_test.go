package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
)

func TestRuleAllows(t *testing.T) {
	gpuPod := func(mutate func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "p", Labels: map[string]string{"team": "vision"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("1")}}}}}}
		if mutate != nil {
			mutate(p)
		}
		return p
	}
	gpuNode := func(mutate func(*corev1.Node)) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"zone": "a"}},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("4")}}}
		if mutate != nil {
			mutate(n)
		}
		return n
	}
	spotPolicy := func(name string, rule kcloudv1alpha1.SpotPolicy, namespaces ...string) kcloudv1alpha1.CostPolicy {
		return kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: namespaces}, SpotPolicy: rule}}
	}
	noSchedule := corev1.Taint{Key: "dedicated", Value: "infer", Effect: corev1.TaintEffectNoSchedule}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		policies []kcloudv1alpha1.CostPolicy
		node     *corev1.Node
		spot     bool
		want     bool
	}{
		{"a GPU node", gpuPod(nil), nil, gpuNode(nil), false, true},
		{"a node without the pod's accelerator resource", gpuPod(nil), nil,
			gpuNode(func(n *corev1.Node) { n.Status.Allocatable = corev1.ResourceList{} }), false, false},
		{"a covering policy requires spot: on-demand refused", gpuPod(nil), []kcloudv1alpha1.CostPolicy{spotPolicy("req", kcloudv1alpha1.SpotRequire)},
			gpuNode(nil), false, false},
		{"a covering policy requires spot: spot allowed", gpuPod(nil), []kcloudv1alpha1.CostPolicy{spotPolicy("req", kcloudv1alpha1.SpotRequire)},
			gpuNode(nil), true, true},
		{"a covering policy avoids spot", gpuPod(nil), []kcloudv1alpha1.CostPolicy{spotPolicy("avoid", kcloudv1alpha1.SpotAvoid)},
			gpuNode(nil), true, false},
		{"preferring spot is no rule", gpuPod(nil), []kcloudv1alpha1.CostPolicy{spotPolicy("prefer", kcloudv1alpha1.SpotPrefer)},
			gpuNode(nil), false, true},
		{"a policy of another namespace does not cover the pod", gpuPod(nil),
			[]kcloudv1alpha1.CostPolicy{spotPolicy("req", kcloudv1alpha1.SpotRequire, "web")}, gpuNode(nil), false, true},
		{"node selector mismatch", gpuPod(func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "b"} }), nil,
			gpuNode(nil), false, false},
		{"an untolerated NoSchedule taint", gpuPod(nil), nil, gpuNode(func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{noSchedule} }), false, false},
		{"a tolerated taint", gpuPod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "infer", Effect: corev1.TaintEffectNoSchedule}}
		}), nil, gpuNode(func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{noSchedule} }), false, true},
		{"a PreferNoSchedule taint does not forbid", gpuPod(nil), nil, gpuNode(func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectPreferNoSchedule}}
		}), false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NewRule(tc.pod, PoliciesOf(tc.policies, nil).For(tc.pod, nil).Spot).Allows(tc.node, &model.Economics{Spot: tc.spot}); got != tc.want {
				t.Errorf("Allows = %v, want %v", got, tc.want)
			}
		})
	}
}
