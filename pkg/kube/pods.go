// Package kube is the one translation from Kubernetes objects to pkg/model's inputs: the labels and
// annotations the product uses (labels.go), what a pod asks for (PodRequest), a node's facts,
// economics and occupancy (NodeEconomics, NodeCapacity, Occupy), a pod's limits and preferences
// under its WorkloadOptimizer and the policies covering it (Policies), and rebalancing
// reservations. The scheduler plugins, the operator's controllers, the rebalancer, the autoscaler,
// the webhooks and the simulator all read Kubernetes objects through it, so they agree on every
// figure.
package kube

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	resourcehelper "k8s.io/component-helpers/resource"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
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
	catalog.ResourceNeuron, catalog.ResourceRebellionsATOM, catalog.ResourceFuriosaRNGD, catalog.ResourceGoogleTPU}

// Covers reports whether a policy's target includes the pod. No target includes the node's overhead
// (NodeOverhead): DaemonSets and static pods are nobody's workload.
func Covers(t kcloudv1alpha1.PolicyTarget, pod *corev1.Pod) bool {
	return Coverage(t)(pod)
}

// Coverage is Covers with the target's selector parsed once, for checking many pods. A target whose
// selector does not parse covers what CoverMatcher says: the pods its valid parts match.
func Coverage(t kcloudv1alpha1.PolicyTarget) func(*corev1.Pod) bool {
	covers, _ := CoverMatcher(t)
	return covers
}

// CoverMatcher is Coverage with the selector's error, for callers that report it. When the selector
// does not parse, the matcher fails closed: it covers every pod of the target's namespaces that the
// selector's valid requirements match (a superset of what was meant), never fewer.
func CoverMatcher(t kcloudv1alpha1.PolicyTarget) (func(*corev1.Pod) bool, error) {
	sel, err := SelectorOrSuperset(t.Selector)
	if err != nil {
		err = fmt.Errorf("selector: %w", err)
	}
	return func(pod *corev1.Pod) bool {
		if NodeOverhead(pod) {
			return false
		}
		if len(t.Namespaces) > 0 && !slices.Contains(t.Namespaces, pod.Namespace) {
			return false
		}
		return sel.Matches(labels.Set(pod.Labels))
	}, err
}

// SelectorOrSuperset parses a label selector (nil selects everything). One that does not parse
// gives the selector of its requirements that do, with the error naming the ones that do not: a
// caller that must fail closed matches at least every object the selector was meant to.
func SelectorOrSuperset(ls *metav1.LabelSelector) (labels.Selector, error) {
	if ls == nil {
		return labels.Everything(), nil
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err == nil {
		return sel, nil
	}
	superset := labels.NewSelector()
	for k, v := range ls.MatchLabels {
		if one, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: map[string]string{k: v}}); err == nil {
			reqs, _ := one.Requirements()
			superset = superset.Add(reqs...)
		}
	}
	for _, e := range ls.MatchExpressions {
		if one, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{e}}); err == nil {
			reqs, _ := one.Requirements()
			superset = superset.Add(reqs...)
		}
	}
	return superset, err
}

// SelectorErrors checks a label selector as admission does, each error naming its field under path
// (e.g. spec.selector.matchExpressions[0].operator).
func SelectorErrors(ls *metav1.LabelSelector, path *field.Path) field.ErrorList {
	if ls == nil {
		return nil
	}
	errs := metavalidation.ValidateLabelSelector(ls, metavalidation.LabelSelectorValidationOptions{}, path)
	if len(errs) == 0 {
		if _, err := metav1.LabelSelectorAsSelector(ls); err != nil {
			errs = append(errs, field.Invalid(path, ls.String(), err.Error()))
		}
	}
	return errs
}

// DefaultAPIVersion is the API version of a kind spec.targetRef may name without one (the CRD's
// enum: Deployment, StatefulSet, ReplicaSet, Job); "" for any other kind.
func DefaultAPIVersion(kind string) string {
	switch kind {
	case "Deployment", "StatefulSet", "ReplicaSet":
		return "apps/v1"
	case "Job":
		return "batch/v1"
	}
	return ""
}
