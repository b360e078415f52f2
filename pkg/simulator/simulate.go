package simulator

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/traces"
)

// Mode is the kind of experiment.
type Mode string

const (
	// ModeInflate is the FGD paper's experiment: arrivals until 130% of GPU capacity, no departures.
	ModeInflate Mode = "inflate"
	// ModeReplay follows the trace's own creation and deletion times.
	ModeReplay Mode = "replay"
)

// FirstSeed is the first seed of the paper's experiments (42..51).
const FirstSeed = 42

// Config is one simulation: a cluster, a trace, the policies and the seeds.
type Config struct {
	Nodes     []traces.Node
	Pods      []traces.Pod
	Mode      Mode
	Policies  []string
	Seeds     int
	Economics EconomicsFunc
	// Daemons, when set, are the DaemonSet pods each node runs (RunDaemons); nil: bare nodes.
	Daemons DaemonsFunc
	Weights model.Weights
	// Workers bounds the runs in flight; 0 means GOMAXPROCS.
	Workers int
}

// Result is one policy's figures over all seeds. Fields a mode does not fill are NaN.
type Result struct {
	Policy      string
	Mode        Mode
	Seeds       int
	Pods        float64 // mean per seed
	Scheduled   float64
	AllocPct100 float64
	AllocPct130 float64
	AllocStd100 float64
	FragPct100  float64
	CostMean    float64 // USD/h, mean over arrival 0..100%
	PowerKWMean float64
	NodeHours   float64
	CostUSD     float64
	EnergyKWh   float64
	CarbonKg    float64
	Waited      float64 // pods that waited for room before running
	NeverRan    float64 // pods that never ran
	WallSeconds float64
	AllocCurve  []float64 // mean GPU allocation % per arrival % 0..130 (inflate)
}

// Run runs every policy over every seed, in parallel, and returns one result per policy in the
// order given.
func Run(cfg Config) ([]Result, error) {
	if cfg.Seeds <= 0 {
		cfg.Seeds = 1
	}
	in, err := prepareRun(cfg)
	if err != nil {
		return nil, err
	}
	outs := runSeeds(cfg, in)
	var results []Result
	for p, name := range cfg.Policies {
		r, err := summarize(cfg, name, outs[p])
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	return results, nil
}

// runInputs are what every run of a policy over a seed starts from, derived once from a Config.
type runInputs struct {
	base  *Cluster
	trace []Pod
	times [][2]int64 // creation and deletion time of each pod (replay)
	types []model.PodType
}

// seedOutcome is one policy's run over one seed.
type seedOutcome struct {
	inflate SeedResult
	replay  ReplayResult
	wall    float64
	err     error
}

// prepareRun checks the policies and the mode, and builds the cluster and the trace.
func prepareRun(cfg Config) (runInputs, error) {
	for _, p := range cfg.Policies {
		if _, err := NewPolicy(p, cfg.Weights); err != nil {
			return runInputs{}, err
		}
	}
	if cfg.Mode != ModeInflate && cfg.Mode != ModeReplay {
		return runInputs{}, fmt.Errorf("unknown mode %q; known modes: inflate, replay", cfg.Mode)
	}
	base, err := NewCluster(cfg.Nodes, cfg.Economics)
	if err != nil {
		return runInputs{}, err
	}
	if cfg.Daemons != nil {
		if err := base.RunDaemons(cfg.Nodes, cfg.Daemons); err != nil {
			return runInputs{}, err
		}
	}
	trace := toPods(cfg.Pods)
	times := make([][2]int64, len(cfg.Pods))
	for i, p := range cfg.Pods {
		times[i] = [2]int64{p.Created, p.Deleted}
	}
	modelPods := make([]model.Pod, len(trace))
	for i := range trace {
		modelPods[i] = trace[i].Pod
	}
	return runInputs{base: base, trace: trace, times: times, types: model.TypicalPodTypes(modelPods, TypicalCoverage)}, nil
}

// runSeeds runs every policy over every seed on cfg.Workers workers (GOMAXPROCS by default), each
// on its own clone of the cluster; outs[policy][seed] is the outcome.
func runSeeds(cfg Config, in runInputs) [][]seedOutcome {
	type job struct{ policy, seed int }
	outs := make([][]seedOutcome, len(cfg.Policies))
	for i := range outs {
		outs[i] = make([]seedOutcome, cfg.Seeds)
	}
	jobs := make(chan job)
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := in.base.clone()
			for j := range jobs {
				start := time.Now()
				o := &outs[j.policy][j.seed]
				seed := int64(FirstSeed + j.seed)
				if cfg.Mode == ModeInflate {
					o.inflate, o.err = runInflate(c, in.trace, in.types, cfg.Policies[j.policy], cfg.Weights, seed)
				} else {
					o.replay, o.err = runReplay(c, in.trace, in.times, in.types, cfg.Policies[j.policy], cfg.Weights, seed)
				}
				o.wall = time.Since(start).Seconds()
			}
		}()
	}
	for p := range cfg.Policies {
		for s := 0; s < cfg.Seeds; s++ {
			jobs <- job{p, s}
		}
	}
	close(jobs)
	wg.Wait()
	return outs
}

// summarize folds one policy's outcomes over the seeds into its Result: means (and the allocation's
// standard deviation) of the figures the mode fills, NaN for the others.
func summarize(cfg Config, name string, outs []seedOutcome) (Result, error) {
	r := Result{Policy: name, Mode: cfg.Mode, Seeds: cfg.Seeds}
	nan := math.NaN()
	r.AllocPct100, r.AllocPct130, r.AllocStd100, r.FragPct100, r.CostMean, r.PowerKWMean = nan, nan, nan, nan, nan, nan
	r.NodeHours, r.CostUSD, r.EnergyKWh, r.CarbonKg, r.Waited, r.NeverRan = nan, nan, nan, nan, nan, nan
	var a100, a130, f100, cost, pow, pods, sched, wall []float64
	var nh, usd, kwh, kg, waited, never []float64
	curve := make([]float64, 131)
	for s := 0; s < cfg.Seeds; s++ {
		o := outs[s]
		if o.err != nil {
			return Result{}, fmt.Errorf("policy %s seed %d: %w", name, FirstSeed+s, o.err)
		}
		wall = append(wall, o.wall)
		if cfg.Mode == ModeInflate {
			ir := o.inflate
			pods, sched = append(pods, float64(ir.Pods)), append(sched, float64(ir.Scheduled))
			a100, a130, f100 = append(a100, ir.AllocPct[100]), append(a130, ir.AllocPct[130]), append(f100, ir.FragPct[100])
			cost, pow = append(cost, ir.CostMean), append(pow, ir.PowerKWMean)
			for x := range curve {
				curve[x] += ir.AllocPct[x] / float64(cfg.Seeds)
			}
		} else {
			rr := o.replay
			pods, sched = append(pods, float64(rr.Pods)), append(sched, float64(rr.Scheduled))
			nh, usd, kwh, kg = append(nh, rr.NodeHours), append(usd, rr.CostUSD), append(kwh, rr.EnergyKWh), append(kg, rr.CarbonKg)
			waited, never = append(waited, float64(rr.Waited)), append(never, float64(rr.NeverRan))
		}
	}
	r.Pods, r.Scheduled, r.WallSeconds = mean(pods), mean(sched), sum(wall)
	if cfg.Mode == ModeInflate {
		r.AllocPct100, r.AllocStd100 = mean(a100), std(a100)
		r.AllocPct130, r.FragPct100 = mean(a130), mean(f100)
		r.CostMean, r.PowerKWMean = mean(cost), mean(pow)
		r.AllocCurve = curve
	} else {
		r.NodeHours, r.CostUSD, r.EnergyKWh, r.CarbonKg = mean(nh), mean(usd), mean(kwh), mean(kg)
		r.Waited, r.NeverRan = mean(waited), mean(never)
	}
	return r, nil
}

func (c *Cluster) clone() *Cluster {
	return &Cluster{Names: c.Names, Nodes: slices.Clone(c.Nodes), Econ: c.Econ, GPUCapacity: c.GPUCapacity, empty: c.empty}
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	return sum(v) / float64(len(v))
}

func std(v []float64) float64 {
	if len(v) < 2 {
		return 0
	}
	m, s := mean(v), 0.0
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(v)-1))
}

// Totals are a cluster's state after a run: allocated accelerators and what the active nodes cost
// and draw, and where each pod went.
type Totals struct {
	Pods, Scheduled int
	AllocatedGPU    int64 // milli-GPUs
	CostPerHour     float64
	PowerWatts      float64
	// Placements are the pods' placements, in the order given.
	Placements []Placement
}

// Placement is where one pod went: the index of its node in the node list (-1 when no node had
// room) and, for a GPU share, the device it took (-1 otherwise).
type Placement struct {
	Node, Device int
}

// PlaceInOrder schedules pods one after another, in the given order and without departures, with
// one policy, the way kcloud-scheduler receives them from its queue; the fragmentation measure's
// target workload is typical's pod types (the scheduler's targetWorkload).
func PlaceInOrder(nodes []traces.Node, econ EconomicsFunc, pods, typical []traces.Pod, policy string, w model.Weights, seed int64) (Totals, error) {
	c, err := NewCluster(nodes, econ)
	if err != nil {
		return Totals{}, err
	}
	pol, err := NewPolicy(policy, w)
	if err != nil {
		return Totals{}, err
	}
	target := toPods(typical)
	modelPods := make([]model.Pod, len(target))
	for i := range target {
		modelPods[i] = target[i].Pod
	}
	s := newState(c, model.TypicalPodTypes(modelPods, TypicalCoverage), seed)
	seq := toPods(pods)
	t := Totals{Pods: len(seq), Placements: make([]Placement, len(seq))}
	for i := range seq {
		t.Placements[i] = Placement{Node: -1, Device: -1}
		if node, a := s.place(pol, &seq[i]); node >= 0 {
			a = s.assign(node, &seq[i], a)
			t.Scheduled++
			t.Placements[i].Node = node
			if seq[i].IsShare() {
				t.Placements[i].Device = a.Device
			}
		}
	}
	t.AllocatedGPU, t.CostPerHour, t.PowerWatts = s.allocated, s.totalCost, s.totalPow
	return t, nil
}
