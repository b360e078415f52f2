package simulator

import (
	"math"
	"math/rand"
	"slices"
	"strings"

	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/traces"
)

// TypicalCoverage is the share of the trace's pods whose types form the target workload of the
// fragmentation measure (FGD uses 95%).
const TypicalCoverage = 0.95

// Tune is how far the paper's experiment inflates the workload: until the requested GPU reaches
// 130% of the cluster's capacity.
const Tune = 1.3

// toPods converts trace pods and numbers their classes.
func toPods(tp []traces.Pod) []Pod {
	classes := map[string]int{}
	out := make([]Pod, len(tp))
	for i, t := range tp {
		key := strings.Join([]string{itoa(t.CPUMilli), itoa(int64(t.NumGPU)), itoa(t.GPUMilli), strings.Join(t.Models, "|")}, "/")
		c, ok := classes[key]
		if !ok {
			c = len(classes)
			classes[key] = c
		}
		out[i] = Pod{Name: t.Name, Class: c, Pod: model.Pod{CPUMilli: t.CPUMilli, MemoryMiB: t.MemoryMiB, GPUCount: t.NumGPU, GPUMilli: t.GPUMilli, Models: t.Models}}
	}
	return out
}

func itoa(v int64) string {
	b := make([]byte, 0, 20)
	return string(appendInt(b, v))
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	if v >= 10 {
		b = appendInt(b, v/10)
	}
	return append(b, byte('0'+v%10))
}

// inflate builds the paper's arrival sequence for one seed: the trace's pods in a seeded random
// order, followed by pods drawn with replacement from the trace until the requested GPU would pass
// tune times the cluster's capacity. It returns the random source, which the run goes on using.
func inflate(pods []Pod, capacity int64, tune float64, seed int64) ([]Pod, *rand.Rand) {
	r := rand.New(rand.NewSource(seed))
	r.Int() // the reference simulator draws one number before shuffling
	pool := slices.Clone(pods)
	slices.SortStableFunc(pool, func(a, b Pod) int { return strings.Compare(a.Name, b.Name) })
	seq := slices.Clone(pool)
	r.Shuffle(len(seq), func(i, j int) { seq[i], seq[j] = seq[j], seq[i] })
	var total int64
	for i := range seq {
		total += seq[i].GPURequestMilli()
	}
	target := int64(tune * float64(capacity))
	for {
		p := pool[r.Intn(len(pool))]
		// The reference checks the per-device share, not the whole request, against the target.
		if total+p.GPUMilli > target {
			break
		}
		total += p.GPURequestMilli()
		seq = append(seq, p)
	}
	return seq, r
}

// arrivalCurve accumulates per-event observations into arrival buckets of 1% of GPU capacity.
type arrivalCurve struct {
	sum   [4][]float64 // alloc %, frag %, cost USD/h, power kW
	count []int
}

const (
	curveAlloc = iota
	curveFrag
	curveCost
	curvePower
)

func (a *arrivalCurve) add(bucket int, v [4]float64) {
	for len(a.count) <= bucket {
		a.count = append(a.count, 0)
		for k := range a.sum {
			a.sum[k] = append(a.sum[k], 0)
		}
	}
	a.count[bucket]++
	for k := range v {
		a.sum[k][bucket] += v[k]
	}
}

// at returns the mean of metric k over events in bucket x, or over x-1..x+1 when x has none; ok is
// false when none of them has events.
func (a *arrivalCurve) at(k, x int) (float64, bool) {
	s, n := 0.0, 0
	if x < len(a.count) && a.count[x] > 0 {
		s, n = a.sum[k][x], a.count[x]
	} else {
		for y := max(x-1, 0); y <= x+1 && y < len(a.count); y++ {
			s += a.sum[k][y]
			n += a.count[y]
		}
	}
	if n == 0 {
		return 0, false
	}
	return s / float64(n), true
}

// SeedResult is one inflate run.
type SeedResult struct {
	Pods, Scheduled int
	AllocPct        []float64 // GPU allocation % per arrival % (0..130), NaN where unobserved
	FragPct         []float64
	CostMean        float64 // USD/h of active nodes, mean over arrival 0..100%
	PowerKWMean     float64
}

// runInflate schedules one seed's inflated sequence with a fresh policy.
func runInflate(c *Cluster, trace []Pod, types []model.PodType, policy string, w Weights, seed int64) (SeedResult, error) {
	pol, err := NewPolicy(policy, w)
	if err != nil {
		return SeedResult{}, err
	}
	seq, r := inflate(trace, c.GPUCapacity, Tune, seed)
	s := newState(c, types, seed)
	s.rng = r
	var curve arrivalCurve
	var arrived int64
	res := SeedResult{Pods: len(seq)}
	capPct := float64(c.GPUCapacity) / 100
	for i := range seq {
		p := &seq[i]
		arrived += p.GPURequestMilli()
		if node, a := s.place(pol, p); node >= 0 {
			s.assign(node, p, a)
			res.Scheduled++
		}
		bucket := int(math.RoundToEven(float64(arrived) / capPct))
		curve.add(bucket, [4]float64{
			round2(float64(s.allocated) / capPct),
			s.totalFrag / capPct,
			s.totalCost,
			s.totalPow / 1000,
		})
	}
	for x := 0; x <= 130; x++ {
		v, ok := curve.at(curveAlloc, x)
		f, _ := curve.at(curveFrag, x)
		if !ok {
			v, f = math.NaN(), math.NaN()
		}
		res.AllocPct = append(res.AllocPct, round2(v))
		res.FragPct = append(res.FragPct, round2(f))
	}
	n := 0
	for x := 0; x <= 100; x++ {
		cst, ok := curve.at(curveCost, x)
		pw, _ := curve.at(curvePower, x)
		if ok {
			res.CostMean += cst
			res.PowerKWMean += pw
			n++
		}
	}
	if n > 0 {
		res.CostMean /= float64(n)
		res.PowerKWMean /= float64(n)
	}
	return res, nil
}

func round2(v float64) float64 { return math.RoundToEven(v*100) / 100 }
