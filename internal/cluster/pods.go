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

// RunInterval is when a pod ran: from its start to the last container's finish, or to its deletion
// (metadata.deletionTimestamp, the end of its grace period) when that comes first; End is zero while
// it still runs. A deleted pod's interval is final: the accounting finalizer keeps the pod until it
// is charged, and nothing about it changes meanwhile.
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
	if d := pod.DeletionTimestamp; d != nil && (iv.End.IsZero() || d.Time.Before(iv.End)) {
		iv.End = d.Time
	}
	if !iv.End.IsZero() && iv.End.Before(iv.Start) {
		iv.End = iv.Start // deleted before it started
	}
	return iv
}

// Deleting reports whether a pod is being deleted: it may still show Running, but it no longer
// runs on the bill (RunInterval ends at its deletion).
func Deleting(pod *corev1.Pod) bool { return pod.DeletionTimestamp != nil }
