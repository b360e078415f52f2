package optimizer

import (
	corev1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/scheduler/nodeview"
)

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
func room(r *request, p *model.Pod, pl *Plugin, ni fwk.NodeInfo, f *nodeview.Facts, fr *free) (fits, full bool) {
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
	if p.IsShare() && f.Err == nil && !model.Fits(p, &pl.nodes.View(ni, f).Node) {
		return false, true
	}
	return certain, false
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
