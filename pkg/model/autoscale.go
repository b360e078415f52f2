package model

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// ScalingMode is how the replica decision reads demand.
type ScalingMode string

const (
	// ScalingReactive sizes for the last observed demand, as the HorizontalPodAutoscaler does.
	ScalingReactive ScalingMode = "reactive"
	// ScalingPredictive sizes for the peak of the forecast demand until a replica started now is
	// ready, so capacity is there before the load.
	ScalingPredictive ScalingMode = "predictive"
)

// ScalingLimit names the bound that decided the replica count when demand did not.
type ScalingLimit string

const (
	LimitNone        ScalingLimit = ""
	LimitMinReplicas ScalingLimit = "minReplicas"
	LimitMaxReplicas ScalingLimit = "maxReplicas"
	LimitCostCap     ScalingLimit = "maxCostPerHour"
	LimitPowerCap    ScalingLimit = "maxPowerUsage"
	LimitBudget      ScalingLimit = "budget"
)

// MetricDemand is one scaling metric's demand history and per-replica target.
type MetricDemand struct {
	// Metric names the metric in reasons, e.g. "gpuUtilization".
	Metric string
	// Demand is the workload's total demand per step, oldest first, one point per Step; NaN marks a
	// missing point. Record TotalDemand(observed, replicas) at each step, not the raw per-replica
	// value, so that the history does not change meaning when the replica count changes.
	Demand []float64
	// Threshold is the target value of the metric per replica (autoScaling.metrics[].threshold).
	Threshold float64
	// Params, when set, are Holt-Winters factors fitted earlier (ScaleDecision.Forecasts[i].Params) to
	// reuse instead of fitting on this history; nil fits them now.
	Params *HoltWintersParams
}

// TotalDemand is a workload's demand in units of the metric's per-replica target: the observed value
// (a per-replica mean, such as GPU utilization or requests per second per replica) times the replicas
// that produced it. Dividing it by the threshold gives the HorizontalPodAutoscaler's
// ceil(replicas x observed / target).
func TotalDemand(observed float64, replicas int32) float64 {
	return observed * float64(replicas)
}

// ReplicaLimits bound the replica count. Nil caps do not apply.
type ReplicaLimits struct {
	MinReplicas, MaxReplicas int32
	// CostPerReplicaHour is what one replica costs, in USD/h (for the cost cap and the budget).
	CostPerReplicaHour float64
	// MaxCostPerHour caps replicas x CostPerReplicaHour, in USD/h.
	MaxCostPerHour *float64
	// WattsPerReplica is one replica's draw at full load, so that the power cap holds at any load.
	WattsPerReplica float64
	// MaxPowerWatts caps replicas x WattsPerReplica.
	MaxPowerWatts *float64
	// RemainingBudget is the money left in the current budget period, in USD; the replicas must be
	// payable until the period ends, BudgetHoursLeft hours from now.
	RemainingBudget *float64
	BudgetHoursLeft float64
}

// Recommendation is a replica count recommended at a time; the caller keeps the recommendations of
// the last stabilization window and passes them back.
type Recommendation struct {
	At       time.Time
	Replicas int32
}

// ScaleInput is everything the replica decision needs. It holds no clock: Now is the caller's.
type ScaleInput struct {
	Now             time.Time
	CurrentReplicas int32
	Mode            ScalingMode
	// Metrics are the workload's scaling metrics; the one asking for the most replicas wins, as in
	// the HorizontalPodAutoscaler.
	Metrics []MetricDemand
	// Step is the spacing of the demand points; Season the number of steps in a season (288 for a day
	// of 5-minute steps).
	Step   time.Duration
	Season int
	// Lead is how long a new replica takes to become ready. Predictive mode covers the forecast
	// demand from now until a replica started now serves (LeadSteps(Lead, Step)+1 steps).
	Lead time.Duration
	// StabilizationWindow: a scale-down goes no lower than the highest recommendation within it.
	StabilizationWindow time.Duration
	// Recent are earlier decisions' Recommendation values with their times (older ones are ignored).
	Recent []Recommendation
	Limits ReplicaLimits
}

// ScaleDecision is the replica count to set and why.
type ScaleDecision struct {
	DesiredReplicas int32
	// Recommendation is what demand asks for, before stabilization and limits; append it to Recent.
	Recommendation int32
	// Metric is the metric that asked for the most replicas; Demand the demand it sized for.
	Metric string
	Demand float64
	// Forecast is that metric's forecast demand (predictive mode), nearest step first, and Method the
	// model that produced it.
	Forecast []float64
	Method   ForecastMethod
	// Forecasts are every metric's forecasts in the order of ScaleInput.Metrics (predictive mode; a
	// metric without a usable threshold or observation has the zero value).
	Forecasts []ForecastResult
	// Limit is the bound that decided DesiredReplicas when it differs from the stabilized
	// recommendation; Stabilized tells whether the stabilization window held a scale-down back.
	Limit      ScalingLimit
	Stabilized bool
	Reason     string
}

// LeadSteps is how many whole steps a lead time spans, rounded up: a replica started now serves from
// that many steps on.
func LeadSteps(lead, step time.Duration) int {
	if lead <= 0 || step <= 0 {
		return 0
	}
	return int((lead + step - 1) / step)
}

// replicasFor is the HorizontalPodAutoscaler rule ceil(demand / threshold); the small tolerance keeps
// floating-point noise (3.0000000001) from adding a replica.
func replicasFor(demand, threshold float64) int32 {
	r := math.Ceil(demand/threshold - 1e-9)
	if r <= 0 {
		return 0
	}
	return int32(min(r, math.MaxInt32))
}

// lastKnown returns the last finite point of a series.
func lastKnown(series []float64) (float64, bool) {
	for i := len(series) - 1; i >= 0; i-- {
		if finite(series[i]) {
			return series[i], true
		}
	}
	return 0, false
}

// DecideReplicas decides a workload's replica count:
//  1. per metric, the demand to serve: reactive takes the last observation; predictive the highest of
//     the last observation and the forecast over the next LeadSteps+1 steps (the current step up to
//     the first one a replica started now can serve; the observation stays in because the replicas
//     serving it now must not be removed before the load leaves);
//  2. the recommendation, ceil(demand / threshold), the largest over the metrics;
//  3. stabilization: a scale-up applies at once; a scale-down goes only to the highest recommendation
//     within StabilizationWindow (this one included);
//  4. limits: at least MinReplicas and at most MaxReplicas, then never more than the cost cap, the
//     power cap or the remaining budget allow, which win over MinReplicas.
//
// A metric without a known point or with a non-positive threshold asks for nothing; with no usable
// metric the decision keeps the current count (within the limits).
func DecideReplicas(in ScaleInput) ScaleDecision {
	d := ScaleDecision{Recommendation: -1}
	horizon := LeadSteps(in.Lead, in.Step) + 1
	var why string
	if in.Mode == ScalingPredictive {
		d.Forecasts = make([]ForecastResult, len(in.Metrics))
	}
	for i, m := range in.Metrics {
		if !(m.Threshold > 0) {
			continue
		}
		last, ok := lastKnown(m.Demand)
		if !ok {
			continue
		}
		demand, method := last, ForecastMethod("")
		var forecast []float64
		if in.Mode == ScalingPredictive {
			var f ForecastResult
			if m.Params != nil {
				f = ForecastWithParams(m.Demand, in.Season, horizon, *m.Params)
			} else {
				f = ForecastDetail(m.Demand, in.Season, horizon)
			}
			d.Forecasts[i] = f
			forecast, method = f.Values, f.Method
			for _, v := range f.Values {
				if finite(v) {
					demand = max(demand, v)
				}
			}
		}
		demand = max(demand, 0)
		r := replicasFor(demand, m.Threshold)
		if r > d.Recommendation {
			d.Recommendation, d.Metric, d.Demand, d.Forecast, d.Method = r, m.Metric, demand, forecast, method
			if in.Mode == ScalingPredictive {
				why = fmt.Sprintf("predictive: %s demand peaks at %.4g over the next %s (%s forecast, last observed %.4g) / threshold %.4g = %d replicas",
					m.Metric, demand, time.Duration(horizon)*in.Step, method, last, m.Threshold, r)
			} else {
				why = fmt.Sprintf("reactive: %s demand %.4g / threshold %.4g = %d replicas", m.Metric, demand, m.Threshold, r)
			}
		}
	}
	if d.Recommendation < 0 {
		d.Recommendation = in.CurrentReplicas
		why = fmt.Sprintf("no usable metric: keeping %d replicas", in.CurrentReplicas)
	}

	stabilized := d.Recommendation
	if stabilized < in.CurrentReplicas {
		highest := d.Recommendation
		for _, r := range in.Recent {
			if in.Now.Sub(r.At) < in.StabilizationWindow && r.Replicas > highest {
				highest = r.Replicas
			}
		}
		if highest > stabilized {
			stabilized = min(highest, in.CurrentReplicas)
			d.Stabilized = true
			why += fmt.Sprintf("; scale-down held at %d, the highest recommendation in the last %s", stabilized, in.StabilizationWindow)
		}
	}

	desired, limit, note := ApplyLimits(stabilized, in.Limits)
	d.DesiredReplicas, d.Limit = desired, limit
	if note != "" {
		why += "; " + note
	}
	d.Reason = why
	return d
}

// MaxAffordableReplicas is the most replicas the cost cap, the power cap and the remaining budget
// allow, with the cap that sets it (LimitNone and MaxInt32 when none applies) and its figures.
func MaxAffordableReplicas(l ReplicaLimits) (int32, ScalingLimit, string) {
	best, limit, note := int32(math.MaxInt32), LimitNone, ""
	consider := func(n float64, which ScalingLimit, explain func(int32) string) {
		r := int32(math.MaxInt32)
		if n < float64(math.MaxInt32) {
			r = int32(max(n, 0))
		}
		if r < best {
			best, limit, note = r, which, explain(r)
		}
	}
	// floor with a tolerance, so a cap of exactly 3 replicas' cost allows 3.
	floor := func(x float64) float64 { return math.Floor(x + 1e-9) }
	if l.MaxCostPerHour != nil && l.CostPerReplicaHour > 0 {
		consider(floor(*l.MaxCostPerHour/l.CostPerReplicaHour), LimitCostCap, func(r int32) string {
			return fmt.Sprintf("cost cap %.4g USD/h allows %d replicas at %.4g USD/h each", *l.MaxCostPerHour, r, l.CostPerReplicaHour)
		})
	}
	if l.MaxPowerWatts != nil && l.WattsPerReplica > 0 {
		consider(floor(*l.MaxPowerWatts/l.WattsPerReplica), LimitPowerCap, func(r int32) string {
			return fmt.Sprintf("power cap %.4g W allows %d replicas at %.4g W each", *l.MaxPowerWatts, r, l.WattsPerReplica)
		})
	}
	if l.RemainingBudget != nil && l.CostPerReplicaHour > 0 && l.BudgetHoursLeft > 0 {
		consider(floor(*l.RemainingBudget/(l.CostPerReplicaHour*l.BudgetHoursLeft)), LimitBudget, func(r int32) string {
			return fmt.Sprintf("remaining budget %.4g USD pays %d replicas at %.4g USD/h for the %.3g h left in the period",
				*l.RemainingBudget, r, l.CostPerReplicaHour, l.BudgetHoursLeft)
		})
	}
	return best, limit, note
}

// ApplyLimits bounds a replica count by MinReplicas and MaxReplicas, then by the caps, which win over
// MinReplicas. It returns the bounded count, the bound that changed it (LimitNone if none did) and a
// note naming the bound and its figures.
func ApplyLimits(replicas int32, l ReplicaLimits) (int32, ScalingLimit, string) {
	out, limit := replicas, LimitNone
	var notes []string
	if out < l.MinReplicas {
		out, limit = l.MinReplicas, LimitMinReplicas
		notes = append(notes, fmt.Sprintf("raised to minReplicas %d", l.MinReplicas))
	}
	if l.MaxReplicas > 0 && out > l.MaxReplicas {
		out, limit = l.MaxReplicas, LimitMaxReplicas
		notes = append(notes, fmt.Sprintf("lowered to maxReplicas %d", l.MaxReplicas))
	}
	if capped, which, note := MaxAffordableReplicas(l); out > capped {
		out, limit = capped, which
		notes = append(notes, "lowered to "+note)
		if capped < l.MinReplicas {
			notes = append(notes, fmt.Sprintf("below minReplicas %d", l.MinReplicas))
		}
	}
	return out, limit, strings.Join(notes, ", ")
}

// ReplicaPower is the draw in watts of a replica that has a node of economics e to itself with
// devices accelerators, at a utilization between 0 and 1 of both its accelerators and its host (a
// serving replica's CPU work follows its requests).
func ReplicaPower(e *Economics, devices int, utilization float64) float64 {
	u := min(max(utilization, 0), 1)
	if math.IsNaN(utilization) {
		u = 0
	}
	return e.HostIdleWatts + (e.HostMaxWatts-e.HostIdleWatts)*u + float64(devices)*e.Device.WattsAt(u)
}
