package nodeview

import (
	"math/rand"
	"strconv"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// readMostly answers like a plain map after any sequence of stores, deletes and loads, whatever
// the swaps between its read map and its written copy.
func TestReadMostlyAnswersLikeAMap(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		nodes := make([]*corev1.Node, 50)
		for i := range nodes {
			nodes[i] = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n" + strconv.Itoa(i)}}
		}
		var m readMostly
		want := map[*corev1.Node]*Facts{}
		for step := 0; step < 2000; step++ {
			n := nodes[rng.Intn(len(nodes))]
			switch r := rng.Intn(10); {
			case r < 2:
				f := &Facts{Shape: step}
				m.store(n, f)
				want[n] = f
			case r < 3:
				m.delete(n)
				delete(want, n)
			default:
				if got := m.load(n); got != want[n] {
					t.Fatalf("seed %d, step %d: load(%s) = %v, want %v", seed, step, n.Name, got, want[n])
				}
			}
		}
		for _, n := range nodes {
			if got := m.load(n); got != want[n] {
				t.Fatalf("seed %d, at the end: load(%s) = %v, want %v", seed, n.Name, got, want[n])
			}
		}
	}
}

// Readers on many goroutines while a writer replaces entries: every load returns the entry stored
// last for that object or one stored before it, never another node's (run with -race).
func TestReadMostlyConcurrentReaders(t *testing.T) {
	nodes := make([]*corev1.Node, 200)
	var m readMostly
	for i := range nodes {
		nodes[i] = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n" + strconv.Itoa(i)}}
		m.store(nodes[i], &Facts{Shape: i})
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := 0; k < 20000; k++ {
				i := (k*7 + g) % len(nodes)
				if f := m.load(nodes[i]); f == nil || f.Shape%len(nodes) != i {
					t.Errorf("load(%s) = %v", nodes[i].Name, f)
					return
				}
			}
		}(g)
	}
	for k := 1; k <= 2000; k++ {
		i := k % len(nodes)
		m.store(nodes[i], &Facts{Shape: i + k*len(nodes)})
	}
	wg.Wait()
}
