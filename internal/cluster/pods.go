package cluster

import (
	corev1 "k8s.io/api/core/v1"

	"kcloud.io/optimizer/pkg/model"
)

// Running reports whether a pod runs on a node now: bound and in phase Running.
func Running(pod *corev1.Pod) bool {
	return pod.Spec.NodeName != "" && pod.Status.Phase == corev1.PodRunning
}

// Ran reports whether a pod has run on a node at all (running or finished after starting), so its
// time there is paid for.
func Ran(pod *corev1.Pod) bool {
	if pod.Spec.NodeName == "" || pod.Status.StartTime == nil {
		return false
	}
	switch pod.Status.Phase {
	case corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed:
		return true
	}
	return false
}

// RunInterval is when a pod ran: from its start to the last container's finish, or still running.
func RunInterval(pod *corev1.Pod) model.Interval {
	iv := model.Interval{Start: pod.CreationTimestamp.Time}
	if pod.Status.StartTime != nil {
		iv.Start = pod.Status.StartTime.Time
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		for _, cs := range pod.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.FinishedAt.After(iv.End) {
				iv.End = t.FinishedAt.Time
			}
		}
		if iv.End.IsZero() {
			iv.End = iv.Start // finished with no record of when: count nothing rather than forever
		}
	}
	return iv
}
