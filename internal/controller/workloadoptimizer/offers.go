package workloadoptimizer

import (
	"slices"
	"strings"
	"sync"

	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/pkg/model"
)

// offers caches what each node of one snapshot offers a pod of each shape (model.OfferOf), for
// every workload judged on that snapshot: the best placement of one workload then works out
// candidates only on the nodes it runs on. A new snapshot starts a new cache.
type offers struct {
	mu     sync.Mutex
	snap   *cluster.Snapshot
	frag   []float64
	shapes map[offerShape]*shapeOffers
}

// offerShape is what an offer depends on besides the node: the pod's request.
type offerShape struct {
	cpu, mem, milli int64
	count           int
	models          string
}

type shapeOffers struct {
	once   sync.Once
	cands  []model.Candidate
	allocs []model.Allocation
	fits   []bool
}

// forSnapshot returns the Offer function of model.Scoring over snap.
func (o *offers) forSnapshot(snap *cluster.Snapshot, types []model.PodType) func(j int, p *model.Pod) (model.Candidate, model.Allocation, bool) {
	o.mu.Lock()
	if o.snap != snap {
		o.snap, o.shapes = snap, map[offerShape]*shapeOffers{}
		o.frag = make([]float64, len(snap.Nodes))
		for j := range snap.Nodes {
			o.frag[j] = model.Fragmentation(&snap.Nodes[j], types)
		}
	}
	shapes, frag := o.shapes, o.frag
	o.mu.Unlock()
	return func(j int, p *model.Pod) (model.Candidate, model.Allocation, bool) {
		key := offerShape{cpu: p.CPUMilli, mem: p.MemoryMiB, milli: p.GPUMilli, count: p.GPUCount, models: strings.Join(p.Models, ",")}
		o.mu.Lock()
		so := shapes[key]
		if so == nil {
			so = &shapeOffers{}
			shapes[key] = so
		}
		o.mu.Unlock()
		so.once.Do(func() {
			pod := *p
			pod.Models = slices.Clone(p.Models)
			so.cands = make([]model.Candidate, len(snap.Nodes))
			so.allocs = make([]model.Allocation, len(snap.Nodes))
			so.fits = make([]bool, len(snap.Nodes))
			for k := range snap.Nodes {
				so.cands[k], so.allocs[k], so.fits[k] = model.OfferOf(&pod, &snap.Nodes[k], snap.Econ[k], types, frag[k])
			}
		})
		return so.cands[j], so.allocs[j], so.fits[j]
	}
}
