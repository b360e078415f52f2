// Package kube adapts Kubernetes objects to pkg/model: what a pod asks for, which device a GPU
// share sits on, the labels that link pods to the product, and which pods a policy covers. The
// scheduler plugin and the operator both read pods through it, so they agree on every figure.
package kube

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	resourcehelper "k8s.io/component-helpers/resource"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
)

// GPU sharing follows Alibaba's open GPU-share convention (the one the openb traces come from): a pod
// asks for part of one GPU with an annotation instead of the nvidia.com/gpu resource, and the
// scheduler writes the chosen device's index for the sharing device plugin to honour.
const (
	// AnnotationGPUMilli asks for a share of one device in 1/1000 (1..999).
	AnnotationGPUMilli = "alibabacloud.com/gpu-milli"
	// AnnotationGPUIndex is the device the scheduler chose for a share.
	AnnotationGPUIndex = "alibabacloud.com/gpu-index"
	// LabelOptimizer links a pod to its WorkloadOptimizer in the same namespace.
	LabelOptimizer = "kcloud.io/optimizer"
	// LabelGang groups the pods of a job that must be placed all together or not at all.
	LabelGang = "kcloud.io/gang"
	// AnnotationGangSize is the number of pods of the gang.
	AnnotationGangSize = "kcloud.io/gang-size"
)

// ShareMilli returns the share a pod asks for, or 0.
func ShareMilli(pod *corev1.Pod) int64 {
	v, err := strconv.ParseInt(pod.Annotations[AnnotationGPUMilli], 10, 64)
	if err != nil || v <= 0 || v >= model.MilliPerGPU {
		return 0
	}
	return v
}

// DeviceIndex returns the device written on a share pod, or -1.
func DeviceIndex(pod *corev1.Pod) int {
	v, err := strconv.Atoi(pod.Annotations[AnnotationGPUIndex])
	if err != nil || v < 0 || v >= model.MaxDevicesPerNode {
		return -1
	}
	return v
}

// PodRequest is what the model needs to know about a pod: CPU, memory and accelerators.
func PodRequest(pod *corev1.Pod) model.Pod {
	req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	p := model.Pod{CPUMilli: req.Cpu().MilliValue(), MemoryMiB: req.Memory().Value() >> 20}
	if m := ShareMilli(pod); m > 0 {
		p.GPUCount, p.GPUMilli = 1, m
		return p
	}
	for _, r := range AcceleratorResources {
		if q, ok := req[corev1.ResourceName(r)]; ok && q.Value() > 0 {
			p.GPUCount, p.GPUMilli = int(q.Value()), model.MilliPerGPU
			break
		}
	}
	return p
}

// AcceleratorResources are the extended resources the catalog knows.
var AcceleratorResources = []string{catalog.ResourceNVIDIAGPU, catalog.ResourceAMDGPU, catalog.ResourceGaudi,
	catalog.ResourceNeuron, catalog.ResourceRebellionsATOM, catalog.ResourceFuriosaRNGD}

// Covers reports whether a policy's target includes the pod.
func Covers(t kcloudv1alpha1.PolicyTarget, pod *corev1.Pod) bool {
	return Coverage(t)(pod)
}

// Coverage is Covers with the target's selector parsed once, for checking many pods: a target whose
// selector does not parse covers no pod.
func Coverage(t kcloudv1alpha1.PolicyTarget) func(*corev1.Pod) bool {
	covers, err := CoverMatcher(t)
	if err != nil {
		return func(*corev1.Pod) bool { return false }
	}
	return covers
}

// CoverMatcher is Coverage with the selector's error, for callers that report it.
func CoverMatcher(t kcloudv1alpha1.PolicyTarget) (func(*corev1.Pod) bool, error) {
	sel := labels.Everything()
	if t.Selector != nil {
		var err error
		if sel, err = metav1.LabelSelectorAsSelector(t.Selector); err != nil {
			return nil, fmt.Errorf("selector: %w", err)
		}
	}
	return func(pod *corev1.Pod) bool {
		if len(t.Namespaces) > 0 && !slices.Contains(t.Namespaces, pod.Namespace) {
			return false
		}
		return t.Selector == nil || sel.Matches(labels.Set(pod.Labels))
	}, nil
}
