package optimizer

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/features"

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
	workload         int // pods that are not the node's overhead (kube.NodeOverhead): DaemonSet and static pods
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
	for _, pi := range ni.GetPods() {
		if !kube.NodeOverhead(pi.GetPod()) {
			fr.workload++
		}
	}
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

// overheadKey tells apart nodes that run only their overhead (DaemonSet and static pods) by what
// that overhead is: which daemons (by controller and revision, or a static pod's name without the
// node's) and what they hold. Two empty nodes of one shape with the same key are twins: the same
// room, score and filters for any pod.
func overheadKey(ni fwk.NodeInfo, fr *free) string {
	node := ni.Node().Name
	var parts []string
	for _, pi := range ni.GetPods() {
		p := pi.GetPod()
		id := p.Namespace + "/" + strings.TrimSuffix(p.Name, "-"+node)
		// A mirror pod's controller is its node: a static pod is known by its name instead.
		if ref := metav1.GetControllerOf(p); ref != nil && (ref.Kind != "Node" || ref.APIVersion != "v1") {
			id = string(ref.UID) + "@" + p.Labels[appsv1.ControllerRevisionHashLabelKey]
		}
		parts = append(parts, id)
	}
	sort.Strings(parts)
	ports := make([]string, 0, len(ni.GetUsedPorts()))
	for ip, pp := range ni.GetUsedPorts() {
		for p := range pp {
			ports = append(ports, fmt.Sprintf("%s:%s/%d", ip, p.Protocol, p.Port))
		}
	}
	sort.Strings(ports)
	return fmt.Sprintf("%d/%d/%d/%d|%s|%s", fr.cpuMilli, fr.memory, fr.acceleratorFree, fr.pods, strings.Join(parts, ","), strings.Join(ports, ","))
}

// eligibility is what keeps a pod off whole pools whatever their room: its required node affinity
// (nodeSelector included) and the taints it does not tolerate. The candidate index asks it before
// it trusts that some node has room, so that a pod whose pools are full is offered every node (and
// preemption sees them all) on its first attempt.
type eligibility struct {
	pod      *corev1.Pod
	affinity nodeaffinity.RequiredNodeAffinity
	logger   klog.Logger
}

func eligibilityOf(pod *corev1.Pod) eligibility {
	return eligibility{pod: pod, affinity: nodeaffinity.GetRequiredNodeAffinity(pod), logger: klog.Background()}
}

func (e *eligibility) admits(n *corev1.Node) bool {
	if ok, err := e.affinity.Match(n); err != nil || !ok {
		return false
	}
	if len(n.Spec.Taints) == 0 {
		return true
	}
	_, untolerated := corev1helpers.FindMatchingUntoleratedTaint(e.logger, n.Spec.Taints, e.pod.Spec.Tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}, comparisonOperators)
	return !untolerated
}

// comparisonOperators is the TaintToleration filter's feature gate, read once.
var comparisonOperators = utilfeature.DefaultFeatureGate.Enabled(features.TaintTolerationComparisonOperators)

// hostPorts reports whether a pod asks for a host port, which the NodePorts filter checks against
// every pod of a node; such pods are offered every node.
func hostPorts(pod *corev1.Pod) bool {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort > 0 {
				return true
			}
		}
	}
	return false
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
