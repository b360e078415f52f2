package kube

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"kcloud.io/optimizer/pkg/model"
)

// FuzzNodeReservations fuzzes the value of a rebalancer reservation annotation, on a node that also
// carries a well-formed reservation and an annotation of another kind with the same value.
// NodeReservations must skip what it cannot trust and keep the rest: what it returns names an
// optimizer, asks for no negative amount (Hold and the scheduler's Filter take it off a node's free
// room, so a negative one would add room), is sorted and is what its value says; the well-formed
// reservation is always there, and a node without reservation annotations has none.
func FuzzNodeReservations(f *testing.F) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	evicted := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "ns", UID: types.UID("u1")}}
	good := NewReservation(evicted, "web", model.Pod{CPUMilli: 1000, MemoryMiB: 4096, GPUCount: 1, GPUMilli: 1000}, t0, t0.Add(5*time.Minute))
	share := NewReservation(evicted, "web", model.Pod{CPUMilli: 500, MemoryMiB: 1024, GPUCount: 1, GPUMilli: 300}, t0.Add(time.Minute), t0.Add(6*time.Minute))
	share.SavingsPerHour, share.PowerSavings, share.Run = 0.4, 35, t0
	f.Add(good.Value())
	f.Add(share.Value())
	f.Add(NewReservation(evicted, "db", model.Pod{CPUMilli: 2000}, t0.Add(-time.Minute), t0).Value())
	f.Add(`{"namespace":"ns","optimizer":"web","pod":"web-2","cpuMilli":1000,"memoryMiB":512,"gpuCount":8,"gpuMilli":1000,"since":"2026-11-27T10:00:00Z","expires":"2026-11-27T10:05:00+09:00"}`)
	f.Add(`{"namespace":"ns","optimizer":"web","cpuMilli":-4000,"memoryMiB":-1,"gpuCount":-1,"gpuMilli":-500,"since":"2026-11-27T10:00:00Z","expires":"2026-11-27T10:05:00Z"}`)
	f.Add(`{"namespace":"ns","optimizer":"web","cpuMilli":100,"gpuCount":1,"gpuMilli":-2000,"expires":"2026-11-27T10:05:00Z"}`)
	f.Add(`{"namespace":"ns","optimizer":"web","cpuMilli":100}`) // no expiry: over at once
	f.Add(`{"namespace":"ns","pod":"web-1","cpuMilli":100}`)     // no optimizer: skipped
	f.Add(`{"optimizer":"web","cpuMilli":1.5}`)
	f.Add(`{"optimizer":"web","since":"yesterday"}`)
	f.Add(`null`)
	f.Add(`{`)
	f.Add(``)

	goodKey := ReservationAnnotationPrefix + "u1"
	fuzzedKey := ReservationAnnotationPrefix + "u0"
	now := t0.Add(2 * time.Minute)
	f.Fuzz(func(t *testing.T, value string) {
		if rs := NodeReservations(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"other": value}}}); len(rs) != 0 {
			t.Fatalf("a node without reservation annotations has %+v", rs)
		}
		if HasReservations(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"other": value}}}) {
			t.Fatal("HasReservations on a node without reservation annotations")
		}

		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Annotations: map[string]string{
			goodKey: good.Value(), fuzzedKey: value, "other": value}}}
		if !HasReservations(node) {
			t.Fatal("HasReservations is false")
		}
		rs := NodeReservations(node)
		if len(rs) == 0 || len(rs) > 2 {
			t.Fatalf("%d reservations, want the good one and at most the fuzzed one: %+v", len(rs), rs)
		}
		if !sort.SliceIsSorted(rs, func(i, j int) bool {
			if !rs[i].Since.Equal(rs[j].Since) {
				return rs[i].Since.Before(rs[j].Since)
			}
			return rs[i].Key < rs[j].Key
		}) {
			t.Fatalf("not sorted by time, then key: %+v", rs)
		}
		seenGood := false
		for _, r := range rs {
			switch r.Key {
			case goodKey:
				seenGood = true
				want := good
				want.Key = goodKey
				if diff := cmp.Diff(want, r); diff != "" {
					t.Fatalf("the good reservation (-want +got):\n%s", diff)
				}
			case fuzzedKey:
				// What the scheduler trusts is what the value says.
				var want Reservation
				if err := json.Unmarshal([]byte(value), &want); err != nil {
					t.Fatalf("kept a value that does not parse (%v): %+v", err, r)
				}
				want.Key = fuzzedKey
				if diff := cmp.Diff(want, r); diff != "" {
					t.Fatalf("the fuzzed reservation (-value +got):\n%s", diff)
				}
			default:
				t.Fatalf("reservation under key %q", r.Key)
			}
			if !strings.HasPrefix(r.Key, ReservationAnnotationPrefix) || r.Optimizer == "" {
				t.Fatalf("reservation without a reservation key or an optimizer: %+v", r)
			}
			if r.CPUMilli < 0 || r.MemoryMiB < 0 || r.GPUCount < 0 || r.GPUMilli < 0 {
				t.Fatalf("reservation with a negative amount: %+v", r)
			}
		}
		if !seenGood {
			t.Fatalf("the good reservation is missing: %+v", rs)
		}

		// Holding what is active takes room off a node and never adds any.
		active, over := ActiveReservations(rs, nil, now)
		if len(active)+len(over) != len(rs) {
			t.Fatalf("ActiveReservations: %d active + %d over of %d", len(active), len(over), len(rs))
		}
		n := model.NewNode("", 8000, 32768, 4)
		n.DeviceFree[1] = 400
		before := n
		Hold(&n, active, nil)
		if n.CPUFree > before.CPUFree || n.MemoryFree > before.MemoryFree || n.CPUFree < 0 || n.MemoryFree < 0 {
			t.Fatalf("Hold: CPU free %d -> %d, memory free %d -> %d", before.CPUFree, n.CPUFree, before.MemoryFree, n.MemoryFree)
		}
		for i := range n.Devices {
			if n.DeviceFree[i] > before.DeviceFree[i] || n.DeviceFree[i] < 0 {
				t.Fatalf("Hold: device %d free %d -> %d", i, before.DeviceFree[i], n.DeviceFree[i])
			}
		}
	})
}
