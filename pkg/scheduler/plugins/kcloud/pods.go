package kcloud

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"

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

// shareMilli returns the share a pod asks for, or 0.
func shareMilli(pod *corev1.Pod) int64 {
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
	if m := shareMilli(pod); m > 0 {
		p.GPUCount, p.GPUMilli = 1, m
		return p
	}
	for _, r := range acceleratorResources {
		if q, ok := req[corev1.ResourceName(r)]; ok && q.Value() > 0 {
			p.GPUCount, p.GPUMilli = int(q.Value()), model.MilliPerGPU
			break
		}
	}
	return p
}

// acceleratorResources are the extended resources the catalog knows.
var acceleratorResources = []string{catalog.ResourceNVIDIAGPU, catalog.ResourceAMDGPU, catalog.ResourceGaudi,
	catalog.ResourceNeuron, catalog.ResourceRebellionsATOM, catalog.ResourceFuriosaRNGD}
