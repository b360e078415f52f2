package kcloud

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	fwk "k8s.io/kube-scheduler/framework"
	"kcloud.io/optimizer/pkg/kube"
)

// emptyPerShape is how many empty nodes of one shape stay candidates: identical empty nodes score
// the same, so the rest would only cost filtering time.
const emptyPerShape = 2

// candidateNodes narrows the nodes kube-scheduler filters to those worth considering: every running
// node (those where the pod does not fit stay, so that Filter says why in the pod's events), and a
// few empty nodes of each distinct shape (same labels but the hostname, taints, capacity). It returns nil (all nodes) for pods whose placement may depend on a particular
// node: host-pinned selectors or affinity, inter-pod affinity, topology spread.
func (pl *Plugin) candidateNodes(pod *corev1.Pod, nodes []fwk.NodeInfo) sets.Set[string] {
	if nodeSpecific(pod) {
		return nil
	}
	out := sets.New[string]()
	empties := map[string]int{}
	for _, ni := range nodes {
		node := ni.Node()
		if node == nil {
			continue
		}
		f := pl.facts.get(node)
		if f.err != nil {
			return nil // a node the catalog cannot read: let the scheduler see everything
		}
		if len(ni.GetPods()) > 0 {
			out.Insert(node.Name)
			continue
		}
		if empties[f.shape] < emptyPerShape {
			empties[f.shape]++
			out.Insert(node.Name)
		}
	}
	if out.Len() == len(nodes) {
		return nil
	}
	return out
}

func nodeSpecific(pod *corev1.Pod) bool {
	if pod.Spec.NodeName != "" || pod.Spec.Affinity != nil && (pod.Spec.Affinity.PodAffinity != nil || pod.Spec.Affinity.PodAntiAffinity != nil) ||
		len(pod.Spec.TopologySpreadConstraints) > 0 {
		return true
	}
	if _, ok := pod.Spec.NodeSelector[corev1.LabelHostname]; ok {
		return true
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			if len(t.MatchFields) > 0 {
				return true
			}
			for _, e := range t.MatchExpressions {
				if e.Key == corev1.LabelHostname {
					return true
				}
			}
		}
	}
	return false
}

// shapeKey identifies nodes that no scheduling rule tells apart but by name.
func shapeKey(n *corev1.Node) string {
	var b strings.Builder
	keys := make([]string, 0, len(n.Labels))
	for k := range n.Labels {
		if k != corev1.LabelHostname {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s,", k, n.Labels[k])
	}
	for _, t := range n.Spec.Taints {
		fmt.Fprintf(&b, "|%s=%s:%s", t.Key, t.Value, t.Effect)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods} {
		q := n.Status.Allocatable[r]
		fmt.Fprintf(&b, "|%s", q.String())
	}
	for _, r := range kube.AcceleratorResources {
		if q, ok := n.Status.Allocatable[corev1.ResourceName(r)]; ok {
			fmt.Fprintf(&b, "|%s=%s", r, q.String())
		}
	}
	b.WriteString("|" + fmt.Sprint(n.Spec.Unschedulable))
	return b.String()
}
