package kube

import (
	"encoding/json"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"kcloud.io/optimizer/pkg/model"
)

// Rebalancing reservations. Before the rebalancer evicts a pod to move it, it writes a
// reservation on the destination node, one annotation per move:
//
//	reservation.kcloud.io/<evicted pod UID>: {"namespace":"ns","optimizer":"wo","pod":"web-1",...}
//
// kcloud-scheduler honours it: other pods may not take the reserved room, and the workload's next
// pod scores the reserved node highest, so the replacement lands where the saving was computed.
// A reservation ends when it expires or when a pod of its workload created at or after the
// reservation runs on the node (the replacement); the rebalancer then removes the annotation.
// One key per move lets the rebalancer add and remove reservations with merge patches that never
// overwrite each other.
const ReservationAnnotationPrefix = "reservation.kcloud.io/"

// Reservation is room held on a node for the replacement of an evicted pod.
type Reservation struct {
	// Key is the annotation key (not serialised).
	Key       string    `json:"-"`
	Namespace string    `json:"namespace"`
	Optimizer string    `json:"optimizer"`
	Pod       string    `json:"pod"` // the evicted pod, for people reading the node
	CPUMilli  int64     `json:"cpuMilli"`
	MemoryMiB int64     `json:"memoryMiB"`
	GPUCount  int       `json:"gpuCount,omitempty"`
	GPUMilli  int64     `json:"gpuMilli,omitempty"`
	Since     time.Time `json:"since"`
	Expires   time.Time `json:"expires"`
	// Run is when the rebalancing run that made the reservation started: the moves of one run
	// share it.
	Run time.Time `json:"run,omitempty"`
	// SavingsPerHour and PowerSavings are the move's predicted saving (USD/h, W).
	SavingsPerHour float64 `json:"savingsPerHour,omitempty"`
	PowerSavings   float64 `json:"powerSavings,omitempty"`
}

// NewReservation is a reservation for the replacement of pod, a pod of optimizer.
func NewReservation(pod *corev1.Pod, optimizer string, p model.Pod, since, expires time.Time) Reservation {
	return Reservation{Key: ReservationAnnotationPrefix + string(pod.UID), Namespace: pod.Namespace, Optimizer: optimizer, Pod: pod.Name,
		CPUMilli: p.CPUMilli, MemoryMiB: p.MemoryMiB, GPUCount: p.GPUCount, GPUMilli: p.GPUMilli,
		Since: since.UTC().Truncate(time.Second), Expires: expires.UTC().Truncate(time.Second)}
}

// Value is the annotation value.
func (r Reservation) Value() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// Request is what the reservation holds, as the model sees a pod.
func (r Reservation) Request() model.Pod {
	return model.Pod{CPUMilli: r.CPUMilli, MemoryMiB: r.MemoryMiB, GPUCount: r.GPUCount, GPUMilli: r.GPUMilli}
}

// Workload names the reserved workload: namespace/optimizer.
func (r Reservation) Workload() string { return r.Namespace + "/" + r.Optimizer }

// For reports whether a pod belongs to the reserved workload.
func (r Reservation) For(pod *corev1.Pod) bool {
	return pod.Namespace == r.Namespace && pod.Labels[LabelOptimizer] == r.Optimizer
}

// NodeReservations reads the reservations written on a node, sorted by the time they were made
// (then key); values that do not parse, name no optimizer or ask for a negative amount (which
// holding would add to the node's free room) are skipped. One without an expiry is over at once
// (ActiveReservations).
func NodeReservations(node *corev1.Node) []Reservation {
	var out []Reservation
	for k, v := range node.Annotations {
		if !strings.HasPrefix(k, ReservationAnnotationPrefix) {
			continue
		}
		var r Reservation
		if err := json.Unmarshal([]byte(v), &r); err != nil || r.Optimizer == "" {
			continue
		}
		if r.CPUMilli < 0 || r.MemoryMiB < 0 || r.GPUCount < 0 || r.GPUMilli < 0 {
			continue
		}
		r.Key = k
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// ActiveReservations splits a node's reservations (as NodeReservations returns them) into those
// still holding room at now and those that are over: expired, or consumed by a replacement. Each
// pod of a workload on the node that was created at or after a reservation of that workload, and
// is not being deleted, consumes one of them, the oldest first.
func ActiveReservations(rs []Reservation, pods []*corev1.Pod, now time.Time) (active, over []Reservation) {
	if len(rs) == 0 {
		return nil, nil
	}
	taken := map[*corev1.Pod]bool{}
	for _, r := range rs {
		if !now.Before(r.Expires) {
			over = append(over, r)
			continue
		}
		consumed := false
		for _, p := range pods {
			if taken[p] || p.DeletionTimestamp != nil || !r.For(p) || p.CreationTimestamp.Time.Before(r.Since) {
				continue
			}
			taken[p], consumed = true, true
			break
		}
		if consumed {
			over = append(over, r)
		} else {
			active = append(active, r)
		}
	}
	return active, over
}

// HasReservations reports whether a node carries any reservation annotation, without parsing.
func HasReservations(node *corev1.Node) bool {
	for k := range node.Annotations {
		if strings.HasPrefix(k, ReservationAnnotationPrefix) {
			return true
		}
	}
	return false
}

// Hold counts the room of active reservations as taken on n, the oldest first, and returns those it
// held; a reservation whose room is already gone holds nothing. skip leaves out the reservations of
// the workload being placed (nil: none).
func Hold(n *model.Node, active []Reservation, skip func(Reservation) bool) []Reservation {
	var held []Reservation
	for _, r := range active {
		if skip != nil && skip(r) {
			continue
		}
		p := r.Request()
		if !model.Fits(&p, n) {
			continue
		}
		model.Assign(&p, n, model.Allocation{Device: model.BestFitDevice(&p, n)})
		held = append(held, r)
	}
	return held
}
