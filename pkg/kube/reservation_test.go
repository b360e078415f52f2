package kube

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"kcloud.io/optimizer/pkg/model"
)

func TestReservations(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	evicted := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "ns", UID: types.UID("u1")}}
	r1 := NewReservation(evicted, "web", model.Pod{CPUMilli: 1000, MemoryMiB: 4096, GPUCount: 1, GPUMilli: 1000}, t0, t0.Add(5*time.Minute))
	evicted2 := evicted.DeepCopy()
	evicted2.UID, evicted2.Name = "u2", "web-2"
	r2 := NewReservation(evicted2, "web", model.Pod{CPUMilli: 1000}, t0.Add(time.Minute), t0.Add(6*time.Minute))
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Annotations: map[string]string{
		r2.Key: r2.Value(), r1.Key: r1.Value(), ReservationAnnotationPrefix + "bad": "{", "other": "x",
		ReservationAnnotationPrefix + "negative": `{"namespace":"ns","optimizer":"web","cpuMilli":-1000,"expires":"2026-11-27T10:05:00Z"}`}}}
	rs := NodeReservations(node)
	if diff := cmp.Diff([]Reservation{r1, r2}, rs); diff != "" {
		t.Fatalf("reservations (-want +got):\n%s", diff)
	}
	if r1.Key != "reservation.kcloud.io/u1" || !cmp.Equal(r1.Request(), model.Pod{CPUMilli: 1000, MemoryMiB: 4096, GPUCount: 1, GPUMilli: 1000}) {
		t.Errorf("reservation %+v", r1)
	}

	pod := func(name, wo string, created time.Time, deleting bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{LabelOptimizer: wo},
			CreationTimestamp: metav1.NewTime(created)}}
		if deleting {
			now := metav1.NewTime(created)
			p.DeletionTimestamp = &now
		}
		return p
	}
	keys := func(rs []Reservation) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Key)
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		pods         []*corev1.Pod
		now          time.Time
		active, over []string
	}{
		{"nothing landed yet", []*corev1.Pod{pod("old", "web", t0.Add(-time.Hour), false)}, t0.Add(2 * time.Minute), []string{r1.Key, r2.Key}, nil},
		{"one replacement consumes the oldest", []*corev1.Pod{pod("new", "web", t0.Add(90*time.Second), false)}, t0.Add(2 * time.Minute), []string{r2.Key}, []string{r1.Key}},
		{"a pod created between the two consumes only the first", []*corev1.Pod{pod("new", "web", t0.Add(30*time.Second), false)}, t0.Add(2 * time.Minute), []string{r2.Key}, []string{r1.Key}},
		{"two replacements consume both", []*corev1.Pod{pod("a", "web", t0.Add(2*time.Minute), false), pod("b", "web", t0.Add(2*time.Minute), false)}, t0.Add(3 * time.Minute), nil, []string{r1.Key, r2.Key}},
		{"another workload's pod and a terminating one consume nothing", []*corev1.Pod{pod("x", "db", t0.Add(2*time.Minute), false), pod("y", "web", t0.Add(2*time.Minute), true)}, t0.Add(3 * time.Minute), []string{r1.Key, r2.Key}, nil},
		{"expiry", nil, t0.Add(5 * time.Minute), []string{r2.Key}, []string{r1.Key}},
	} {
		active, over := ActiveReservations(rs, tc.pods, tc.now)
		if diff := cmp.Diff(tc.active, keys(active)); diff != "" {
			t.Errorf("%s: active (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.over, keys(over)); diff != "" {
			t.Errorf("%s: over (-want +got):\n%s", tc.name, diff)
		}
	}
	if !HasReservations(node) || HasReservations(&corev1.Node{}) {
		t.Error("HasReservations")
	}
}
