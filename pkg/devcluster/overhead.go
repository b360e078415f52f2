package devcluster

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	"kcloud.io/optimizer/pkg/catalog"
)

// runsOn reports whether the scheduler may put a pod of the template on the node: the node selector
// and required node affinity match, and the pod tolerates the node's NoSchedule and NoExecute taints.
func runsOn(spec corev1.PodSpec, n *corev1.Node) bool {
	pod := &corev1.Pod{Spec: spec}
	if ok, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(n); !ok {
		return false
	}
	_, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), n.Spec.Taints, spec.Tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}, false)
	return !untolerated
}

// DaemonPods are the pods the production-like profile's DaemonSets run on a node of group g, owned
// by their DaemonSet as the DaemonSet controller makes them: what kube-system, monitoring and the
// accelerator vendor's daemons ask of such a node. The simulator runs them on trace nodes.
func DaemonPods(g NodeGroup, cat *catalog.Catalog) ([]*corev1.Pod, error) {
	var dev catalog.DeviceSpec
	if g.Model != "" {
		var err error
		if dev, err = cat.Device(g.Model); err != nil {
			return nil, err
		}
	}
	node := buildNode("daemon-host", "default", g, dev, g.CPUs, g.MemoryGiB)
	if err := labelLikeProduction(&node, g, dev); err != nil {
		// Which daemons run depends only on the accelerator's vendor: a model the profile has no
		// feature-discovery figures for (an openb model, say) runs those of a model of its vendor.
		standIn, ok := vendorStandIn[dev.Resource]
		if !ok {
			return nil, fmt.Errorf("labelling a %s node: %w", g.Model, err)
		}
		like := g
		like.Model = standIn
		if dev, err = cat.Device(standIn); err != nil {
			return nil, err
		}
		node = buildNode("daemon-host", "default", like, dev, g.CPUs, g.MemoryGiB)
		if err := labelLikeProduction(&node, like, dev); err != nil {
			return nil, fmt.Errorf("labelling a %s node: %w", standIn, err)
		}
	}
	controller := true
	var pods []*corev1.Pod
	for _, ds := range ClusterAddons().DaemonSets {
		if !runsOn(ds.Spec.Template.Spec, &node) {
			continue
		}
		pods = append(pods, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ds.Namespace, Name: ds.Name + "-" + node.Name, Labels: ds.Spec.Template.Labels,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, Controller: &controller}}},
			Spec: *ds.Spec.Template.Spec.DeepCopy(),
		})
	}
	return pods, nil
}

// vendorStandIn is, per accelerator resource, a model of that vendor the profile labels.
var vendorStandIn = map[string]string{catalog.ResourceNVIDIAGPU: "T4", catalog.ResourceAMDGPU: "MI300X"}
