package rebalancer

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/pkg/kube"
)

// Annotations of other disruption tools the rebalancer honours.
const (
	annotationCASafeToEvict   = "cluster-autoscaler.kubernetes.io/safe-to-evict"
	annotationKarpenterNoMove = "karpenter.sh/do-not-disrupt"
)

// recreatingOwners are the controllers that make a replacement when one of their pods is evicted.
var recreatingOwners = map[string]bool{"ReplicaSet": true, "StatefulSet": true, "Job": true}

// Eligible says whether the rebalancer may evict a pod of a workload (wo, nil when the pod is
// linked to none), and why not:
//   - it runs on a node and is not being deleted;
//   - it is linked to a WorkloadOptimizer (label kcloud.io/optimizer) whose spec.rebalancing.mode
//     is not Disabled;
//   - a ReplicaSet, StatefulSet or Job controls it, so a replacement will be made;
//   - it is no gang member: moving one member would break the gang's all-or-nothing placement;
//   - it is not training, unless annotated kcloud.io/safe-to-evict: "true" (it checkpoints);
//     training is the optimizer's workloadType or the pod's kcloud.io/workload-type annotation;
//   - nothing opts it out: kcloud.io/safe-to-evict: "false",
//     cluster-autoscaler.kubernetes.io/safe-to-evict: "false", karpenter.sh/do-not-disrupt: "true".
func Eligible(pod *corev1.Pod, wo *kcloudv1alpha1.WorkloadOptimizer) (bool, string) {
	switch {
	case pod.DeletionTimestamp != nil:
		return false, "being deleted"
	case !cluster.Running(pod):
		return false, "not running on a node"
	case wo == nil:
		return false, "not linked to a WorkloadOptimizer"
	case wo.Spec.Rebalancing != nil && wo.Spec.Rebalancing.Mode == kcloudv1alpha1.RebalancingDisabled:
		return false, "spec.rebalancing.mode of its WorkloadOptimizer is Disabled"
	case pod.Annotations[kcloudv1alpha1.AnnotationSafeToEvict] == "false":
		return false, "annotated " + kcloudv1alpha1.AnnotationSafeToEvict + `: "false"`
	case pod.Annotations[annotationCASafeToEvict] == "false":
		return false, "annotated " + annotationCASafeToEvict + `: "false"`
	case pod.Annotations[annotationKarpenterNoMove] == "true":
		return false, "annotated " + annotationKarpenterNoMove + `: "true"`
	case pod.Labels[kube.LabelGang] != "":
		return false, "a gang member"
	}
	if owner := metav1.GetControllerOfNoCopy(pod); owner == nil || !recreatingOwners[owner.Kind] {
		return false, "not controlled by a ReplicaSet, StatefulSet or Job that would replace it"
	}
	training := wo.Spec.WorkloadType == kcloudv1alpha1.WorkloadTraining ||
		pod.Annotations[kube.AnnotationWorkloadType] == string(kcloudv1alpha1.WorkloadTraining)
	if training && pod.Annotations[kcloudv1alpha1.AnnotationSafeToEvict] != "true" {
		return false, "a training pod without " + kcloudv1alpha1.AnnotationSafeToEvict + `: "true"`
	}
	return true, ""
}
