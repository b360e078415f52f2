package optimizer

import (
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kcloud.io/optimizer/pkg/model"
)

// The handoff returns what was put for each node, the last put for a node put twice, nothing for a
// node never put, and stays correct when puts come from many goroutines at once and when the
// table has more nodes than it was made for (it then has no room for some, which Score looks up
// the slow way, and never answers for the wrong node).
func TestHandoff(t *testing.T) {
	for _, tc := range []struct {
		name         string
		madeFor, put int
	}{
		{"empty", 0, 0},
		{"one", 1, 1},
		{"as made", 5000, 5000},
		{"fewer than made", 5000, 37},
		{"more than made: full", 10, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := make([]*corev1.Node, tc.put+1)
			for i := range nodes {
				nodes[i] = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%d", i)}}
			}
			var table handoffTable
			table.next(tc.madeFor)
			stale := table.next(tc.madeFor) // a cycle before: its entries are no answer to the next
			for i := range tc.put {
				c := model.Candidate{FragDelta: -1}
				stale.put(nodes[i], &c)
			}
			h := table.next(tc.madeFor)
			cand := func(i, round int) model.Candidate {
				return model.Candidate{Marginal: model.Marginal{CostPerHour: float64(i), PowerWatts: float64(round)}}
			}
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for i := w; i < tc.put; i += 8 {
						for round := range 2 {
							c := cand(i, round)
							h.put(nodes[i], &c)
						}
					}
				})
			}
			wg.Wait()
			found := 0
			for i := range tc.put {
				c, ok := h.get(nodes[i])
				if !ok {
					continue
				}
				found++
				if *c != cand(i, 1) {
					t.Fatalf("node %d: got %+v, want the last put %+v", i, *c, cand(i, 1))
				}
			}
			if want := min(tc.put, len(h.keys)); found != want {
				t.Errorf("found %d nodes of %d put (table of %d slots), want %d", found, tc.put, len(h.keys), want)
			}
			if _, ok := h.get(nodes[tc.put]); ok {
				t.Errorf("a node never put was found")
			}
		})
	}
	var none handoff
	c := model.Candidate{}
	none.put(&corev1.Node{}, &c)
	if _, ok := none.get(&corev1.Node{}); ok {
		t.Errorf("an empty handoff answered")
	}
}

// A cycle keeps its entries when a later cycle grows the table, and no cycle sees another's, even
// across the stamp's wrap.
func TestHandoffAcrossCycles(t *testing.T) {
	var table handoffTable
	a, b := &corev1.Node{}, &corev1.Node{}
	first := table.next(1)
	ca := model.Candidate{FragDelta: 1}
	first.put(a, &ca)
	grown := table.next(1000)
	if len(grown.keys) <= len(first.keys) {
		t.Fatalf("table of %d slots for 1000 nodes, was %d", len(grown.keys), len(first.keys))
	}
	if c, ok := first.get(a); !ok || *c != ca {
		t.Errorf("the first cycle lost its entry when the table grew: %v %v", c, ok)
	}
	if _, ok := grown.get(a); ok {
		t.Errorf("the next cycle found the first cycle's entry")
	}
	grown.put(a, &ca)
	for range 1<<(64-stampShift) + 3 {
		h := table.next(1000)
		cb := model.Candidate{FragDelta: float64(h.stamp)}
		if _, ok := h.get(b); ok {
			t.Fatalf("stamp %d: found an entry of an earlier cycle", h.stamp)
		}
		if _, ok := h.get(a); ok {
			t.Fatalf("stamp %d: found the entry of the cycle after the table grew", h.stamp)
		}
		h.put(b, &cb)
		if c, ok := h.get(b); !ok || *c != cb {
			t.Fatalf("stamp %d: got %v %v, want %v", h.stamp, c, ok, cb)
		}
	}
}
