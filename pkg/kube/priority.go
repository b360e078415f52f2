package kube

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/model"
)

// DefaultOptimizerPriority is a WorkloadOptimizer's spec.priority when it sets none, and the rank
// of a pod no optimizer governs: a workload ranks below unmanaged pods only by asking to.
const DefaultOptimizerPriority int32 = 50

// OptimizerPriority is the rank of the pod's WorkloadOptimizer, from AnnotationPriority: 0 is
// lowest, 100 highest. A pod without the annotation, or with one that is not a whole number in
// 0..100, ranks at DefaultOptimizerPriority.
func OptimizerPriority(pod *corev1.Pod) int32 {
	v, ok := pod.Annotations[AnnotationPriority]
	if !ok {
		return DefaultOptimizerPriority
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 || n > 100 {
		return DefaultOptimizerPriority
	}
	return int32(n)
}

// PriorityAnnotation is the AnnotationPriority value for an optimizer's spec.priority.
func PriorityAnnotation(priority int32) string { return strconv.FormatInt(int64(priority), 10) }

// SpecPriority is the optimizer's spec.priority, DefaultOptimizerPriority when unset (the API
// server defaults it; an object built in code may not have been through it).
func SpecPriority(wo *kcloudv1alpha1.WorkloadOptimizer) int32 {
	if wo.Spec.Priority == nil {
		return DefaultOptimizerPriority
	}
	return *wo.Spec.Priority
}

// PodRank is the pod's model.Rank: its PriorityClass value (spec.priority, 0 when unset, as the
// API server resolves it) and its optimizer priority.
func PodRank(pod *corev1.Pod) model.Rank {
	r := model.Rank{Optimizer: OptimizerPriority(pod)}
	if pod.Spec.Priority != nil {
		r.Class = *pod.Spec.Priority
	}
	return r
}
