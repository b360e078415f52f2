package optimizer

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/scheduler/nodeview"
)

// Rebalancing reservations (kube.Reservation): the rebalancer holds room on a destination node for
// the replacement of a pod it evicts. Filter keeps that room from every other pod; PreScore makes
// the reserved node the only one the workload's next pod scores, so the replacement lands where
// the rebalancer computed the saving. Reservations end on expiry or once a replacement runs there.

// activeReservations are the node's reservations still holding room now.
func (pl *Plugin) activeReservations(ni fwk.NodeInfo, f *nodeview.Facts) []kube.Reservation {
	if len(f.Reservations) == 0 {
		return nil
	}
	pods := make([]*corev1.Pod, 0, len(ni.GetPods()))
	for _, pi := range ni.GetPods() {
		pods = append(pods, pi.GetPod())
	}
	active, _ := kube.ActiveReservations(f.Reservations, pods, pl.now())
	return active
}

// reservedRoom checks that the pod fits the node once the room reserved for other workloads is
// taken off; nil when it does (or nothing is reserved against it).
func (pl *Plugin) reservedRoom(pod *corev1.Pod, p *model.Pod, ni fwk.NodeInfo, f *nodeview.Facts, node model.Node) *fwk.Status {
	var held []string
	for _, r := range pl.activeReservations(ni, f) {
		if r.For(pod) {
			continue
		}
		rp := r.Request()
		if !model.Fits(&rp, &node) {
			continue // the room is gone already: nothing left to hold
		}
		model.Assign(&rp, &node, model.Allocation{Device: model.BestFitDevice(&rp, &node)})
		held = append(held, fmt.Sprintf("%s until %s", r.Workload(), r.Expires.Format("15:04:05Z")))
	}
	if len(held) == 0 || model.Fits(p, &node) {
		return nil
	}
	return fwk.NewStatus(fwk.Unschedulable, "room reserved by the rebalancer for WorkloadOptimizer "+strings.Join(held, ", "))
}

// reservedFor reports whether the node holds a reservation for the pod's workload.
func (pl *Plugin) reservedFor(pod *corev1.Pod, ni fwk.NodeInfo) bool {
	if pod.Labels[kube.LabelOptimizer] == "" || ni.Node() == nil {
		return false
	}
	f := pl.nodes.Facts(ni.Node())
	for _, r := range pl.activeReservations(ni, f) {
		if r.For(pod) {
			return true
		}
	}
	return false
}
