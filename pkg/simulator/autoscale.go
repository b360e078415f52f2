package simulator

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
)

// Autoscaling policies compared by RunAutoscale.
const (
	// AutoscaleFixedAtMax holds the replicas the workload's highest demand ever needs, all the time.
	AutoscaleFixedAtMax = "fixed-at-max"
	// AutoscaleReactive follows the last observed demand (model.ScalingReactive).
	AutoscaleReactive = "reactive"
	// AutoscalePredictive follows the forecast demand over the lead time (model.ScalingPredictive).
	AutoscalePredictive = "predictive"
)

// AutoscalePolicies are the policies in the order RunAutoscale reports them.
var AutoscalePolicies = []string{AutoscaleFixedAtMax, AutoscaleReactive, AutoscalePredictive}

// AutoscaleWorkload is one workload's demand: the replicas it needs at each step (for the DLRM trace,
// the GPUs its instances hold), one point per step from the trace start.
type AutoscaleWorkload struct {
	Name   string
	Demand []float64
}

// ReplicaType is what one replica runs on: a node of an instance type to itself.
type ReplicaType struct {
	InstanceType string
	Economics    model.Economics
	Devices      int
	PriceSource  string
}

// CatalogReplicaType prices and powers a replica that runs alone on a node of a known instance type.
func CatalogReplicaType(cat *catalog.Catalog, instanceType string) (ReplicaType, error) {
	accel, count, ok := cat.InstanceAccelerator(instanceType)
	if !ok {
		return ReplicaType{}, fmt.Errorf("instance type %q: no accelerator in the catalog's price tables", instanceType)
	}
	vcpus, gib, _ := cat.InstanceShape(instanceType)
	facts := catalog.NodeFacts{
		Name: instanceType, InstanceType: instanceType, AcceleratorModel: accel, AcceleratorCount: count,
		CPUMilli: int64(vcpus * 1000), MemoryMiB: int64(gib * 1024), CapacityType: catalog.CapacityOnDemand,
	}
	e, err := cat.Economics(facts)
	if err != nil {
		return ReplicaType{}, err
	}
	price, err := cat.Price(facts)
	if err != nil {
		return ReplicaType{}, err
	}
	return ReplicaType{InstanceType: instanceType, Economics: e, Devices: count, PriceSource: price.Source}, nil
}

// AutoscaleConfig is one comparison of the autoscaling policies.
type AutoscaleConfig struct {
	// Step is the spacing of the demand points; Season the steps in a season (a day).
	Step   time.Duration
	Season int
	// Lead is how long a new replica takes to become ready, for every policy that scales; the
	// predictive policy forecasts over it.
	Lead time.Duration
	// Stabilization is the scale-down stabilization window of both scaling policies.
	Stabilization time.Duration
	// Warmup steps are history only: policies start deciding after them and only later steps count.
	Warmup int
	// History is how many of the latest steps the decision sees (the forecaster's window).
	History int
	// Refit: the predictive policy refits its Holt-Winters factors once per Refit steps and reuses them
	// in between (0 or 1: every step).
	Refit int
	// ReplicaTarget is the demand one replica serves (the metric's threshold); 1 when zero.
	ReplicaTarget float64
	// MinReplicas of every workload; MaxReplicas is the replicas of its highest demand ever.
	MinReplicas int32
	// Replica prices and powers one replica.
	Replica ReplicaType
	// MaxCostPerHour and MaxPowerWatts cap each workload (nil: no cap).
	MaxCostPerHour *float64
	MaxPowerWatts  *float64
	// Workers bounds the workloads simulated in parallel; 0 means GOMAXPROCS.
	Workers int
}

// AutoscaleResult is one policy's figures summed over the workloads (Workload empty) or for one.
type AutoscaleResult struct {
	Policy   string
	Workload string
	// Workloads and Steps (per workload) that were evaluated.
	Workloads, Steps int
	// ReplicaHours counts every replica that exists, ready or starting; CostUSD is their price.
	ReplicaHours float64
	CostUSD      float64
	// EnergyKWh: ready replicas draw at utilization demand/ready, starting ones at idle.
	EnergyKWh float64
	// SLOViolationMinutes: workload-minutes with fewer ready replicas than demand (summed over
	// workloads in a total); UnservedReplicaHours integrates the shortfall.
	SLOViolationMinutes  float64
	UnservedReplicaHours float64
	// ScaleEvents are changes of the replica count.
	ScaleEvents int
	// PeakCostPerHour and PeakPowerWatts are the highest of any one workload at any step.
	PeakCostPerHour float64
	PeakPowerWatts  float64
	// CappedSteps are steps where a cost or power cap lowered the replicas.
	CappedSteps int
}

func (r *AutoscaleResult) add(o AutoscaleResult) {
	r.Workloads += o.Workloads
	r.Steps = max(r.Steps, o.Steps)
	r.ReplicaHours += o.ReplicaHours
	r.CostUSD += o.CostUSD
	r.EnergyKWh += o.EnergyKWh
	r.SLOViolationMinutes += o.SLOViolationMinutes
	r.UnservedReplicaHours += o.UnservedReplicaHours
	r.ScaleEvents += o.ScaleEvents
	r.PeakCostPerHour = max(r.PeakCostPerHour, o.PeakCostPerHour)
	r.PeakPowerWatts = max(r.PeakPowerWatts, o.PeakPowerWatts)
	r.CappedSteps += o.CappedSteps
}

func (cfg *AutoscaleConfig) validate(workloads []AutoscaleWorkload) error {
	switch {
	case cfg.Step <= 0:
		return fmt.Errorf("autoscale: step must be positive, got %s", cfg.Step)
	case cfg.Season < 2:
		return fmt.Errorf("autoscale: season must be at least 2 steps, got %d", cfg.Season)
	case cfg.Warmup < 1:
		return fmt.Errorf("autoscale: warm-up must be at least 1 step, got %d", cfg.Warmup)
	case cfg.History < 1:
		return fmt.Errorf("autoscale: history must be at least 1 step, got %d", cfg.History)
	case cfg.Lead < 0 || cfg.Stabilization < 0:
		return fmt.Errorf("autoscale: lead time and stabilization window must not be negative")
	case cfg.ReplicaTarget < 0 || math.IsNaN(cfg.ReplicaTarget):
		return fmt.Errorf("autoscale: replica target must be positive, got %v", cfg.ReplicaTarget)
	case len(workloads) == 0:
		return fmt.Errorf("autoscale: no workloads")
	}
	for _, w := range workloads {
		if len(w.Demand) <= cfg.Warmup {
			return fmt.Errorf("autoscale: workload %s has %d steps, not more than the %d warm-up steps", w.Name, len(w.Demand), cfg.Warmup)
		}
	}
	return nil
}

// RunAutoscale runs every policy over every workload and returns the totals per policy (in the order
// of AutoscalePolicies) and the figures of each workload (policy by policy, workloads in input order).
func RunAutoscale(workloads []AutoscaleWorkload, cfg AutoscaleConfig) (totals, perWorkload []AutoscaleResult, err error) {
	if cfg.ReplicaTarget == 0 {
		cfg.ReplicaTarget = 1
	}
	if err := cfg.validate(workloads); err != nil {
		return nil, nil, err
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	results := make([][]AutoscaleResult, len(workloads))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				for _, p := range AutoscalePolicies {
					results[i] = append(results[i], simulateAutoscale(workloads[i], p, &cfg))
				}
			}
		})
	}
	for i := range workloads {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for pi, p := range AutoscalePolicies {
		total := AutoscaleResult{Policy: p}
		for i := range workloads {
			total.add(results[i][pi])
			perWorkload = append(perWorkload, results[i][pi])
		}
		totals = append(totals, total)
	}
	return totals, perWorkload, nil
}

// startingReplicas are replicas asked for at some step that serve from step ready on.
type startingReplicas struct {
	ready int
	count int32
}

// simulateAutoscale runs one policy over one workload. At each step t after the warm-up, the policy
// sees the demand of the steps before t and sets the replica count; replicas it adds serve from step
// t + LeadSteps(Lead, Step), replicas it removes stop at once (starting ones first). Step t is then
// scored against its own demand.
func simulateAutoscale(w AutoscaleWorkload, policy string, cfg *AutoscaleConfig) AutoscaleResult {
	res := AutoscaleResult{Policy: policy, Workload: w.Name, Workloads: 1, Steps: len(w.Demand) - cfg.Warmup}
	limits := autoscaleLimits(w, cfg)
	lag := model.LeadSteps(cfg.Lead, cfg.Step)
	epoch := time.Unix(0, 0).UTC()

	// The scaling policies start from the replicas the last warm-up step needed, all ready.
	var running int32
	if policy == AutoscaleFixedAtMax {
		var limit model.ScalingLimit
		running, limit, _ = model.ApplyLimits(limits.MaxReplicas, limits)
		if limit == model.LimitCostCap || limit == model.LimitPowerCap {
			res.CappedSteps = res.Steps
		}
	} else {
		running, _, _ = model.ApplyLimits(replicasFor(max(w.Demand[cfg.Warmup-1], 0), cfg.ReplicaTarget), limits)
	}
	var (
		starting []startingReplicas
		recent   []model.Recommendation
		params   *model.HoltWintersParams
		fittedAt int
	)
	for t := cfg.Warmup; t < len(w.Demand); t++ {
		if policy != AutoscaleFixedAtMax {
			now := epoch.Add(time.Duration(t) * cfg.Step)
			metric := model.MetricDemand{Metric: "gpu-instances", Demand: w.Demand[max(0, t-cfg.History):t], Threshold: cfg.ReplicaTarget}
			mode := model.ScalingReactive
			if policy == AutoscalePredictive {
				mode = model.ScalingPredictive
				if params != nil && t-fittedAt < max(cfg.Refit, 1) {
					metric.Params = params
				}
			}
			d := model.DecideReplicas(model.ScaleInput{
				Now: now, CurrentReplicas: running, Mode: mode, Metrics: []model.MetricDemand{metric},
				Step: cfg.Step, Season: cfg.Season, Lead: cfg.Lead, StabilizationWindow: cfg.Stabilization,
				Recent: recent, Limits: limits,
			})
			if mode == model.ScalingPredictive && metric.Params == nil && d.Forecasts[0].Method == model.ForecastHoltWinters {
				p := d.Forecasts[0].Params
				params, fittedAt = &p, t
			}
			recent = append(recent, model.Recommendation{At: now, Replicas: d.Recommendation})
			for len(recent) > 0 && now.Sub(recent[0].At) >= cfg.Stabilization {
				recent = recent[1:]
			}
			if d.Limit == model.LimitCostCap || d.Limit == model.LimitPowerCap {
				res.CappedSteps++
			}
			target := d.DesiredReplicas
			switch {
			case target > running:
				starting = append(starting, startingReplicas{ready: t + lag, count: target - running})
				res.ScaleEvents++
			case target < running:
				drop := running - target
				for drop > 0 && len(starting) > 0 { // cancel the latest starting replicas first
					last := &starting[len(starting)-1]
					n := min(drop, last.count)
					last.count -= n
					drop -= n
					if last.count == 0 {
						starting = starting[:len(starting)-1]
					}
				}
				res.ScaleEvents++
			}
			running = target
		}
		starting = slices.DeleteFunc(starting, func(s startingReplicas) bool { return s.ready <= t })
		ready := running
		for _, s := range starting {
			ready -= s.count
		}
		scoreAutoscaleStep(&res, cfg, w.Demand[t], running, ready)
	}
	return res
}

// autoscaleLimits are the replica limits of a workload: at least one replica, at most what its
// peak demand needs, and the config's cost and power caps.
func autoscaleLimits(w AutoscaleWorkload, cfg *AutoscaleConfig) model.ReplicaLimits {
	peak := 0.0
	for _, d := range w.Demand {
		if !math.IsNaN(d) {
			peak = max(peak, d)
		}
	}
	rep := &cfg.Replica
	return model.ReplicaLimits{
		MinReplicas: cfg.MinReplicas, MaxReplicas: max(cfg.MinReplicas, replicasFor(peak, cfg.ReplicaTarget), 1),
		CostPerReplicaHour: rep.Economics.PricePerHour, MaxCostPerHour: cfg.MaxCostPerHour,
		WattsPerReplica: model.ReplicaPower(&rep.Economics, rep.Devices, 1), MaxPowerWatts: cfg.MaxPowerWatts,
	}
}

// scoreAutoscaleStep adds one step to res: running replicas cost and draw power (idle while they
// start), ready ones serve the step's demand, and demand they cannot serve counts against the SLO.
func scoreAutoscaleStep(res *AutoscaleResult, cfg *AutoscaleConfig, stepDemand float64, running, ready int32) {
	rep := &cfg.Replica
	price := rep.Economics.PricePerHour
	hours := cfg.Step.Hours()
	demand := max(stepDemand, 0)
	if math.IsNaN(stepDemand) {
		demand = 0
	}
	need := demand / cfg.ReplicaTarget
	if float64(ready) < need-1e-9 {
		res.SLOViolationMinutes += cfg.Step.Minutes()
		res.UnservedReplicaHours += (need - float64(ready)) * hours
	}
	util := 0.0
	if ready > 0 {
		util = min(need/float64(ready), 1)
	}
	watts := float64(ready)*model.ReplicaPower(&rep.Economics, rep.Devices, util) +
		float64(running-ready)*model.ReplicaPower(&rep.Economics, rep.Devices, 0)
	res.ReplicaHours += float64(running) * hours
	res.CostUSD += float64(running) * price * hours
	res.EnergyKWh += watts * hours / 1000
	res.PeakCostPerHour = max(res.PeakCostPerHour, float64(running)*price)
	res.PeakPowerWatts = max(res.PeakPowerWatts, watts)
}

// replicasFor is the replicas a demand needs at a per-replica target, rounded up.
func replicasFor(demand, target float64) int32 {
	return int32(math.Ceil(demand/target - 1e-9))
}
