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
			h := newHandoff(tc.madeFor)
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
	var none *handoff
	c := model.Candidate{}
	none.put(&corev1.Node{}, &c)
	if _, ok := none.get(&corev1.Node{}); ok {
		t.Errorf("a nil handoff answered")
	}
}
