package rebalancer

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
)

func TestEligible(t *testing.T) {
	yes := true
	base := func() *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "ns",
			Labels: map[string]string{kube.LabelOptimizer: "web"}, Annotations: map[string]string{},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-abc", Controller: &yes}}},
			Spec: corev1.PodSpec{NodeName: "n"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	}
	serving := &kcloudv1alpha1.WorkloadOptimizer{Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadServing}}
	training := &kcloudv1alpha1.WorkloadOptimizer{Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadTraining}}
	disabled := serving.DeepCopy()
	disabled.Spec.Rebalancing = &kcloudv1alpha1.RebalancingPolicy{Mode: kcloudv1alpha1.RebalancingDisabled}
	auto := serving.DeepCopy()
	auto.Spec.Rebalancing = &kcloudv1alpha1.RebalancingPolicy{Mode: kcloudv1alpha1.RebalancingAuto}
	now := metav1.Now()
	for _, tc := range []struct {
		name   string
		change func(*corev1.Pod)
		wo     *kcloudv1alpha1.WorkloadOptimizer
		want   bool
		reason string
	}{
		{"a serving pod of a ReplicaSet", nil, serving, true, ""},
		{"mode Auto", nil, auto, true, ""},
		{"a StatefulSet's pod", func(p *corev1.Pod) { p.OwnerReferences[0].Kind = "StatefulSet" }, serving, true, ""},
		{"a Job's pod", func(p *corev1.Pod) { p.OwnerReferences[0].Kind = "Job" }, serving, true, ""},
		{"mode Disabled", nil, disabled, false, "spec.rebalancing.mode of its WorkloadOptimizer is Disabled"},
		{"no optimizer", nil, nil, false, "not linked to a WorkloadOptimizer"},
		{"being deleted", func(p *corev1.Pod) { p.DeletionTimestamp = &now }, serving, false, "being deleted"},
		{"pending", func(p *corev1.Pod) { p.Spec.NodeName, p.Status.Phase = "", corev1.PodPending }, serving, false, "not running on a node"},
		{"a bare pod", func(p *corev1.Pod) { p.OwnerReferences = nil }, serving, false, "not controlled by a ReplicaSet, StatefulSet or Job that would replace it"},
		{"a DaemonSet's pod", func(p *corev1.Pod) { p.OwnerReferences[0].Kind = "DaemonSet" }, serving, false, "not controlled by a ReplicaSet, StatefulSet or Job that would replace it"},
		{"an owner that is not the controller", func(p *corev1.Pod) { p.OwnerReferences[0].Controller = nil }, serving, false, "not controlled by a ReplicaSet, StatefulSet or Job that would replace it"},
		{"a gang member", func(p *corev1.Pod) { p.Labels[kube.LabelGang] = "g" }, serving, false, "a gang member"},
		{"training", nil, training, false, `a training pod without kcloud.io/safe-to-evict: "true"`},
		{"training by the pod's annotation", func(p *corev1.Pod) { p.Annotations["kcloud.io/workload-type"] = "training" }, serving, false, `a training pod without kcloud.io/safe-to-evict: "true"`},
		{"training that checkpoints", func(p *corev1.Pod) { p.Annotations["kcloud.io/safe-to-evict"] = "true" }, training, true, ""},
		{"opted out", func(p *corev1.Pod) { p.Annotations["kcloud.io/safe-to-evict"] = "false" }, serving, false, `annotated kcloud.io/safe-to-evict: "false"`},
		{"cluster-autoscaler opt-out", func(p *corev1.Pod) { p.Annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] = "false" }, serving, false, `annotated cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`},
		{"karpenter opt-out", func(p *corev1.Pod) { p.Annotations["karpenter.sh/do-not-disrupt"] = "true" }, serving, false, `annotated karpenter.sh/do-not-disrupt: "true"`},
	} {
		p := base()
		if tc.change != nil {
			tc.change(p)
		}
		got, reason := Eligible(p, tc.wo)
		if got != tc.want || reason != tc.reason {
			t.Errorf("%s: Eligible = %v %q, want %v %q", tc.name, got, reason, tc.want, tc.reason)
		}
	}
}
