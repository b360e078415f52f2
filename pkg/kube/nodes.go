package kube

import (
	"cmp"
	"fmt"
	"iter"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
)

// NodeEconomics reads a node's catalog facts from its labels and annotations and prices and powers
// them with the catalog.
func NodeEconomics(cat *catalog.Catalog, node *corev1.Node) (catalog.NodeFacts, model.Economics, error) {
	facts, err := cat.FactsFromNode(node)
	if err != nil {
		return facts, model.Economics{}, fmt.Errorf("node %s: %w", node.Name, err)
	}
	econ, err := cat.Economics(facts)
	if err != nil {
		return facts, model.Economics{}, fmt.Errorf("node %s: %w", node.Name, err)
	}
	return facts, econ, nil
}

// NodeCapacity is the model's view of an empty node: its allocatable CPU and memory and its
// accelerator devices.
func NodeCapacity(node *corev1.Node, facts catalog.NodeFacts) model.Node {
	alloc := node.Status.Allocatable
	return model.NewNode(facts.AcceleratorModel, alloc.Cpu().MilliValue(), alloc.Memory().Value()>>20, facts.AcceleratorCount)
}

// NodeReady reports whether a node's Ready condition is True.
func NodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// AnnotationDaemonSetPod is the cluster autoscaler's annotation that makes it treat a pod as a
// DaemonSet pod (one that does not keep a node up) when set to "true".
const AnnotationDaemonSetPod = "cluster-autoscaler.kubernetes.io/daemonset-pod"

// NodeOverhead reports whether a pod belongs to its node rather than to a workload on it, by the rule
// the cluster autoscaler and Karpenter use to decide that a node is empty: a pod a DaemonSet
// controls, a static pod (its mirror carries kubernetes.io/config.mirror, or the Node owns it), or a
// pod annotated cluster-autoscaler.kubernetes.io/daemonset-pod=true. Such a pod takes room on the
// node but never keeps it up, is nobody's workload, and no policy charges it.
func NodeOverhead(pod *corev1.Pod) bool {
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return true
	}
	if pod.Annotations[AnnotationDaemonSetPod] == "true" {
		return true
	}
	for i := range pod.OwnerReferences {
		ref := &pod.OwnerReferences[i]
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		if (ref.Kind == "DaemonSet" && strings.HasPrefix(ref.APIVersion, "apps/")) || (ref.Kind == "Node" && ref.APIVersion == "v1") {
			return true
		}
	}
	return false
}

// CompareAdmission orders pods as a node admitted them: by creation time, then namespace and name,
// so that the order is total and does not depend on how a store lists them.
func CompareAdmission(a, b *corev1.Pod) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// Terminal reports whether a pod has finished (Succeeded or Failed): it holds nothing on its node.
func Terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// OccupyOptions adapt Occupy to its caller.
type OccupyOptions struct {
	// Request is what a pod asks for; nil: PodRequest. The operator passes a cached PodRequest.
	Request func(*corev1.Pod) model.Pod
	// PendingDevice is the device a share was given but does not carry yet (the scheduler's own
	// reservations, before PreBind writes the annotation); nil: none.
	PendingDevice func(*corev1.Pod) (int, bool)
	// Counted, when set, is called for each workload pod counted (not for the node's overhead, see
	// NodeOverhead), with where its devices were counted.
	Counted func(pod *corev1.Pod, p model.Pod, a model.Allocation)
}

// Occupy counts a node's pods on n, the node's empty capacity (NodeCapacity), and returns how many
// pods it could not count: a share with no device that holds it, a whole-device pod with too few
// whole devices left (an overcommitted node). Finished pods hold nothing and are skipped. Shares go
// first, on the device written on the pod (or pending for it), else on the best-fit device; whole
// devices are the device plugin's to pick, so whole-device pods then take devices without shares.
// Shares whose device is known count before those on the best-fit device. When a node is
// overcommitted, which pods count depends on their order: callers that list pods from a map-backed
// store sort them with CompareAdmission first, so the earliest pods hold the devices, as the kubelet
// admitted them.
// The node's own pods (NodeOverhead: DaemonSets, static pods) take room but leave the node empty
// (model.AssignOverhead): a node that runs only them is asleep.
// It is the one rule for a node's occupancy: the scheduler's node view, the operator's fleet
// snapshot and the rebalancer's confirmation all call it.
func Occupy(n *model.Node, pods iter.Seq[*corev1.Pod], o OccupyOptions) (uncounted int) {
	request := o.Request
	if request == nil {
		request = PodRequest
	}
	// Three passes, so that the outcome does not depend on the pods' order: shares whose device is
	// known, then shares on the best-fit device, then everything else.
	for pass := range 3 {
		for pod := range pods {
			if Terminal(pod) || occupyPass(pod, o.PendingDevice) != pass {
				continue
			}
			p := request(pod)
			a := model.Allocation{Device: -1}
			switch {
			case p.IsShare():
				a.Device = shareDevice(pod, &p, n, o.PendingDevice)
				if a.Device < 0 {
					uncounted++
					continue
				}
			case p.GPUCount > 0 && n.WholeFreeDevices() < p.GPUCount:
				uncounted++
				continue
			}
			if NodeOverhead(pod) {
				model.AssignOverhead(&p, n, a)
				continue
			}
			a = model.Assign(&p, n, a)
			if o.Counted != nil {
				o.Counted(pod, p, a)
			}
		}
	}
	return uncounted
}

// occupyPass is the pass of Occupy that counts a pod: 0 for a share whose device is written or
// pending, 1 for any other share, 2 for the rest.
func occupyPass(pod *corev1.Pod, pending func(*corev1.Pod) (int, bool)) int {
	if !isShare(pod) {
		return 2
	}
	if DeviceIndex(pod) >= 0 {
		return 0
	}
	if pending != nil {
		if _, ok := pending(pod); ok {
			return 0
		}
	}
	return 1
}

// shareDevice is where a share pod's milli-GPUs are counted: the device written on it, or pending
// for it, when that device exists and has room; otherwise the best-fit device; -1 when none holds it.
func shareDevice(pod *corev1.Pod, p *model.Pod, n *model.Node, pending func(*corev1.Pod) (int, bool)) int {
	dev := DeviceIndex(pod)
	if dev < 0 && pending != nil {
		if d, ok := pending(pod); ok {
			dev = d
		}
	}
	if dev >= 0 && dev < n.Devices && n.DeviceFree[dev] >= p.GPUMilli {
		return dev
	}
	return model.BestFitDevice(p, n)
}

// isShare is ShareMilli(pod) > 0 without parsing (and allocating an error for) the missing
// annotation of every pod that asks for no share.
func isShare(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[AnnotationGPUMilli]
	return ok && ShareMilli(pod) > 0
}

// IsShare reports whether a pod asks for a share of one GPU.
func IsShare(pod *corev1.Pod) bool { return isShare(pod) }
