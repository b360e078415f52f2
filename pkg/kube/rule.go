package kube

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	v1helper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	"kcloud.io/optimizer/pkg/model"
)

// Rule is where a pod may run, as the operator judges placements (best placement, rebalancing):
// nodes offering its accelerator resources, matching its node selector and required affinity,
// whose NoSchedule and NoExecute taints it tolerates, and within the spot rule of the CostPolicies
// covering it (PodPolicy.Spot).
type Rule struct {
	resources []corev1.ResourceName
	affinity  nodeaffinity.RequiredNodeAffinity
	pod       *corev1.Pod
	spot      model.SpotRule
}

// NewRule is the rule of a pod under spot, the spot rule of the policies covering it
// (Policies.For's PodPolicy.Spot). The pod is read, not copied, and must outlive the rule.
func NewRule(pod *corev1.Pod, spot model.SpotRule) Rule {
	rule := Rule{affinity: nodeaffinity.GetRequiredNodeAffinity(pod), pod: pod, spot: spot}
	for _, c := range pod.Spec.Containers {
		for name, q := range c.Resources.Requests {
			if slices.Contains(AcceleratorResources, string(name)) && !q.IsZero() && !slices.Contains(rule.resources, name) {
				rule.resources = append(rule.resources, name)
			}
		}
	}
	return rule
}

// Allows reports whether the pod may run on the node, whose economics are e.
func (r Rule) Allows(node *corev1.Node, e *model.Economics) bool {
	for _, res := range r.resources {
		if q, ok := node.Status.Allocatable[res]; !ok || q.IsZero() {
			return false
		}
	}
	if model.CheckSpot(r.spot, "", e.Spot) != nil {
		return false
	}
	if match, _ := r.affinity.Match(node); !match {
		return false
	}
	_, untolerated := v1helper.FindMatchingUntoleratedTaint(klog.Background(), node.Spec.Taints, r.pod.Spec.Tolerations,
		func(t *corev1.Taint) bool {
			return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
		}, false)
	return !untolerated
}
