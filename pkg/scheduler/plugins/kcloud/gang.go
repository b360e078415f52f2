package kcloud

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"kcloud.io/optimizer/pkg/kube"
)

// gangOf returns the pod's gang and its size, or "" when it has none.
func gangOf(pod *corev1.Pod) (string, int) {
	g := pod.Labels[kube.LabelGang]
	if g == "" {
		return "", 0
	}
	n, err := strconv.Atoi(pod.Annotations[kube.AnnotationGangSize])
	if err != nil {
		return g, 0
	}
	return g, n
}

// placedInGang counts the gang's other pods already bound or assumed on a node.
func (pl *Plugin) placedInGang(pod *corev1.Pod, gang string) int {
	nodes, err := pl.handle.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		return 0
	}
	n := 0
	for _, ni := range nodes {
		for _, pi := range ni.GetPods() {
			p := pi.GetPod()
			if p.UID != pod.UID && p.Namespace == pod.Namespace && p.Labels[kube.LabelGang] == gang {
				n++
			}
		}
	}
	return n
}
