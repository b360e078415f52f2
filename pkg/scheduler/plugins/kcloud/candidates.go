package kcloud

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	resourcehelper "k8s.io/component-helpers/resource"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// emptyPerShape is how many empty nodes of one shape stay candidates: identical empty nodes score
// the same, so the rest would only cost filtering time.
const emptyPerShape = 2

// request is what kube-scheduler's NodeResourcesFit filter checks against a node's free room, read
// once per cycle.
type request struct {
	cpuMilli, memory int64
	accelerators     []scalar
}

// scalar is an amount of one of kube.AcceleratorResources, by index.
type scalar struct {
	resource int
	value    int64
}

func requestOf(pod *corev1.Pod) request {
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	r := request{cpuMilli: reqs.Cpu().MilliValue(), memory: reqs.Memory().Value()}
	for i, name := range kube.AcceleratorResources {
		if q, ok := reqs[corev1.ResourceName(name)]; ok && q.Value() > 0 {
			r.accelerators = append(r.accelerators, scalar{i, q.Value()})
		}
	}
	return r
}

// free is a node's free room as the resource filters see it, at one generation of its NodeInfo.
// PreFilter reads it for every node of every cycle: kept in the node's slot, it costs no visit to
// the NodeInfo's resource maps, which is most of the time of a pass over 1,000 nodes.
type free struct {
	generation       int64
	pods, podRoom    int
	cpuMilli, memory int64
	accelerator      int   // index in kube.AcceleratorResources of the node's accelerator resource, -1 for none
	acceleratorFree  int64 // of that resource
	mixed            bool  // the node has more than one accelerator resource: ask the NodeInfo
}

func freeOf(ni fwk.NodeInfo) free {
	alloc, used := ni.GetAllocatable(), ni.GetRequested()
	fr := free{generation: ni.GetGeneration(), pods: len(ni.GetPods()), cpuMilli: alloc.GetMilliCPU() - used.GetMilliCPU(),
		memory: alloc.GetMemory() - used.GetMemory(), accelerator: -1}
	fr.podRoom = alloc.GetAllowedPodNumber() - fr.pods
	for i, name := range kube.AcceleratorResources {
		if capacity := alloc.GetScalarResources()[corev1.ResourceName(name)]; capacity > 0 {
			if fr.accelerator >= 0 {
				fr.mixed = true
			}
			fr.accelerator, fr.acceleratorFree = i, capacity-used.GetScalarResources()[corev1.ResourceName(name)]
		}
	}
	return fr
}

// room says whether the node certainly has room for the request (the NodeResourcesFit filter and
// ours would pass it on resources), and whether it certainly has none (both would reject it). A node
// without the accelerator resource at all is neither: dynamic resource allocation may still serve it.
func room(r *request, p *model.Pod, pl *Plugin, ni fwk.NodeInfo, f *nodeFacts, fr *free) (fits, full bool) {
	if fr.podRoom < 1 || r.cpuMilli > 0 && r.cpuMilli > fr.cpuMilli || r.memory > 0 && r.memory > fr.memory {
		return false, true
	}
	certain := true
	for _, a := range r.accelerators {
		has, left := false, int64(0)
		switch {
		case fr.mixed:
			name := corev1.ResourceName(kube.AcceleratorResources[a.resource])
			capacity := ni.GetAllocatable().GetScalarResources()[name]
			has, left = capacity > 0, capacity-ni.GetRequested().GetScalarResources()[name]
		case fr.accelerator == a.resource:
			has, left = true, fr.acceleratorFree
		}
		if !has {
			certain = false
			continue
		}
		if a.value > left {
			return false, true
		}
	}
	// A share needs one device with room, which only our view of the node knows.
	if p.IsShare() && f.err == nil && !model.Fits(p, &pl.view(ni, f).node) {
		return false, true
	}
	return certain, false
}

// candidateNodes narrows the nodes kube-scheduler filters to those worth considering: running nodes
// with room for the pod, and a few empty nodes with room of each distinct shape (same labels but the
// hostname, taints, capacity). Nodes left out are only those the resource filters would reject, or
// empty nodes identical to ones kept. It returns nil (all nodes):
//   - for pods whose placement may depend on a particular node: host-pinned selectors or affinity,
//     inter-pod affinity, topology spread;
//   - when no node certainly has room, so that the FailedScheduling event says why for every node
//     and preemption sees every node;
//   - for a pod that failed to schedule before, for the same reasons (it had room somewhere but
//     another filter refused those nodes).
func (pl *Plugin) candidateNodes(pod *corev1.Pod, p *model.Pod, nodes []fwk.NodeInfo) sets.Set[string] {
	if nodeSpecific(pod) || failedBefore(pod) || pod.Spec.Resources != nil {
		return nil // pod-level resources: leave the arithmetic to NodeResourcesFit
	}
	r := requestOf(pod)
	out := sets.New[string]()
	empties := map[int]int{}
	anyFits, readable := false, true
	pl.facts.each(nodes, func(ni fwk.NodeInfo, node *corev1.Node, f *nodeFacts, fr *free) bool {
		if f.err != nil {
			readable = false // a node the catalog cannot read: let the scheduler see everything
			return false
		}
		fits, full := room(&r, p, pl, ni, f, fr)
		if full {
			return true
		}
		// A node holding a rebalancing reservation is always offered: the pod it is held for
		// must be able to land there, and others must hear why it is refused.
		if fr.pods == 0 && len(f.reservations) == 0 {
			if empties[f.shape] >= emptyPerShape {
				return true
			}
			empties[f.shape]++
		}
		anyFits = anyFits || fits
		out.Insert(node.Name)
		return true
	})
	if !readable || !anyFits || out.Len() == len(nodes) {
		return nil
	}
	return out
}

// failedBefore reports whether a scheduler already found no node for the pod.
func failedBefore(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return true
		}
	}
	return false
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
