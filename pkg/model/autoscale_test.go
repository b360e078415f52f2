package model

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ptr(v float64) *float64 { return &v }

func TestDecideReplicas(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const season = 24
	// Two days of a daily load in replica units rising towards its peak at the end of the history:
	// the forecast over the next steps is higher than the last observation.
	rising := daily(2*season+season/4-2, season, 10, 8, 0)
	base := ScaleInput{
		Now: now, CurrentReplicas: 4, Mode: ScalingReactive, Step: 5 * time.Minute, Season: season,
		Lead: 10 * time.Minute, StabilizationWindow: 5 * time.Minute,
		Limits: ReplicaLimits{MinReplicas: 1, MaxReplicas: 100, CostPerReplicaHour: 2, WattsPerReplica: 300},
	}
	metric := func(threshold float64, demand ...float64) []MetricDemand {
		return []MetricDemand{{Metric: "throughput", Demand: demand, Threshold: threshold}}
	}
	type want struct {
		Desired, Recommendation int32
		Limit                   ScalingLimit
		Stabilized              bool
		Method                  ForecastMethod
	}
	tests := []struct {
		name   string
		edit   func(*ScaleInput)
		want   want
		reason []string
	}{
		{"reactive: the HPA rule on the last observation", func(in *ScaleInput) { in.Metrics = metric(100, 900, 250) },
			want{Desired: 3, Recommendation: 3}, []string{"reactive: throughput demand 250 / threshold 100 = 3 replicas"}},
		{"exact multiple needs no extra replica", func(in *ScaleInput) { in.Metrics = metric(0.1, 0.3) },
			want{Desired: 3, Recommendation: 3}, nil},
		{"missing last point: the last known one", func(in *ScaleInput) { in.Metrics = metric(100, 250, math.NaN()) },
			want{Desired: 3, Recommendation: 3}, nil},
		{"scale-up at once", func(in *ScaleInput) { in.Metrics = metric(1, 9) }, want{Desired: 9, Recommendation: 9}, nil},
		{"scale-down held by a recommendation inside the window", func(in *ScaleInput) {
			in.Metrics = metric(1, 2)
			in.Recent = []Recommendation{{At: now.Add(-4 * time.Minute), Replicas: 3}, {At: now.Add(-10 * time.Minute), Replicas: 8}}
		}, want{Desired: 3, Recommendation: 2, Stabilized: true}, []string{"scale-down held at 3"}},
		{"stabilization never raises above the current count", func(in *ScaleInput) {
			in.Metrics = metric(1, 2)
			in.Recent = []Recommendation{{At: now.Add(-time.Minute), Replicas: 8}}
		}, want{Desired: 4, Recommendation: 2, Stabilized: true}, nil},
		{"scale-down once the window has passed", func(in *ScaleInput) {
			in.Metrics = metric(1, 2)
			in.Recent = []Recommendation{{At: now.Add(-5 * time.Minute), Replicas: 8}}
		}, want{Desired: 2, Recommendation: 2}, nil},
		// The load peaks at 18 three steps ahead while the last observation is 15.7: 4 replicas of 4
		// would do now, 5 are needed by then.
		{"predictive sizes for the coming peak", func(in *ScaleInput) {
			in.Mode, in.Metrics = ScalingPredictive, metric(4, rising...)
		}, want{Desired: 5, Recommendation: 5, Method: ForecastHoltWinters},
			[]string{"predictive: throughput demand peaks at", "over the next 15m0s (holt-winters forecast, last observed 15.66)"}},
		{"reactive lags the same load", func(in *ScaleInput) { in.Metrics = metric(4, rising...) },
			want{Desired: 4, Recommendation: 4}, nil},
		{"predictive keeps what the last observation needs", func(in *ScaleInput) {
			in.Mode, in.Metrics = ScalingPredictive, metric(1, 10, 8, 6, 4)
		}, want{Desired: 4, Recommendation: 4, Method: ForecastLinear}, nil},
		{"the metric asking most wins", func(in *ScaleInput) {
			in.Metrics = append(metric(1, 3), MetricDemand{Metric: "gpuUtilization", Demand: []float64{350}, Threshold: 70})
		}, want{Desired: 5, Recommendation: 5}, []string{"gpuUtilization demand 350 / threshold 70 = 5"}},
		{"no usable metric keeps the count", func(in *ScaleInput) {
			in.Metrics = append(metric(0, 3), MetricDemand{Metric: "latency", Demand: []float64{math.NaN()}, Threshold: 10})
		}, want{Desired: 4, Recommendation: 4}, []string{"no usable metric"}},
		{"minReplicas", func(in *ScaleInput) { in.Metrics = metric(1, 0) },
			want{Desired: 1, Recommendation: 0, Limit: LimitMinReplicas}, []string{"raised to minReplicas 1"}},
		{"maxReplicas", func(in *ScaleInput) { in.Metrics = metric(1, 500) },
			want{Desired: 100, Recommendation: 500, Limit: LimitMaxReplicas}, []string{"lowered to maxReplicas 100"}},
		{"cost cap", func(in *ScaleInput) { in.Metrics, in.Limits.MaxCostPerHour = metric(1, 9), ptr(13) },
			want{Desired: 6, Recommendation: 9, Limit: LimitCostCap}, []string{"cost cap 13 USD/h allows 6 replicas at 2 USD/h each"}},
		{"cost cap of exactly the replicas' cost", func(in *ScaleInput) { in.Metrics, in.Limits.MaxCostPerHour = metric(1, 9), ptr(18) },
			want{Desired: 9, Recommendation: 9}, nil},
		{"power cap below the cost cap", func(in *ScaleInput) {
			in.Metrics, in.Limits.MaxCostPerHour, in.Limits.MaxPowerWatts = metric(1, 9), ptr(13), ptr(1000)
		}, want{Desired: 3, Recommendation: 9, Limit: LimitPowerCap}, []string{"power cap 1000 W allows 3 replicas at 300 W each"}},
		{"remaining budget until the period ends", func(in *ScaleInput) {
			in.Metrics, in.Limits.RemainingBudget, in.Limits.BudgetHoursLeft = metric(1, 9), ptr(50), 5
		}, want{Desired: 5, Recommendation: 9, Limit: LimitBudget}, []string{"remaining budget 50 USD pays 5 replicas at 2 USD/h for the 5 h left"}},
		{"caps win over minReplicas", func(in *ScaleInput) {
			in.Metrics, in.Limits.MinReplicas, in.Limits.MaxCostPerHour = metric(1, 1), 3, ptr(4.5)
		}, want{Desired: 2, Recommendation: 1, Limit: LimitCostCap}, []string{"below minReplicas 3"}},
		{"an exhausted budget allows nothing", func(in *ScaleInput) {
			in.Metrics, in.Limits.RemainingBudget, in.Limits.BudgetHoursLeft = metric(1, 9), ptr(0), 5
		}, want{Desired: 0, Recommendation: 9, Limit: LimitBudget}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			tc.edit(&in)
			d := DecideReplicas(in)
			got := want{d.DesiredReplicas, d.Recommendation, d.Limit, d.Stabilized, d.Method}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s\nreason: %s", diff, d.Reason)
			}
			for _, s := range tc.reason {
				if !strings.Contains(d.Reason, s) {
					t.Errorf("reason %q does not say %q", d.Reason, s)
				}
			}
			if in.Mode == ScalingPredictive && len(d.Forecast) != LeadSteps(in.Lead, in.Step)+1 {
				t.Errorf("forecast of %d steps, want %d", len(d.Forecast), LeadSteps(in.Lead, in.Step)+1)
			}
		})
	}
}

func TestLeadSteps(t *testing.T) {
	tests := []struct {
		lead, step time.Duration
		want       int
	}{
		{0, time.Minute, 0},
		{10 * time.Minute, 5 * time.Minute, 2},
		{11 * time.Minute, 5 * time.Minute, 3},
		{time.Minute, 0, 0},
	}
	for _, tc := range tests {
		if got := LeadSteps(tc.lead, tc.step); got != tc.want {
			t.Errorf("LeadSteps(%s, %s) = %d, want %d", tc.lead, tc.step, got, tc.want)
		}
	}
}

func TestReplicaPower(t *testing.T) {
	e := Economics{HostIdleWatts: 50, HostMaxWatts: 150, Device: PowerCurve{{0, 20}, {1, 150}}}
	tests := []struct {
		u, want float64
	}{{0, 70}, {0.5, 50 + 50 + 85}, {1, 300}, {2, 300}, {math.NaN(), 70}}
	for _, tc := range tests {
		if got := ReplicaPower(&e, 1, tc.u); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("ReplicaPower(u=%v) = %v, want %v", tc.u, got, tc.want)
		}
	}
}

// TestDecideReplicasReusesFactors: factors passed in are the ones the forecast used and returned.
func TestDecideReplicasReusesFactors(t *testing.T) {
	p := HoltWintersParams{Alpha: 0.9, Beta: 0, Gamma: 0.05}
	in := ScaleInput{Mode: ScalingPredictive, Step: time.Minute, Season: 24, CurrentReplicas: 1,
		Metrics: []MetricDemand{{Metric: "m", Demand: daily(60, 24, 10, 3, 0), Threshold: 1, Params: &p}},
		Limits:  ReplicaLimits{MaxReplicas: 100}}
	d := DecideReplicas(in)
	if d.Forecasts[0].Params != p || d.Method != ForecastHoltWinters {
		t.Errorf("forecast %+v, want Holt-Winters with %+v", d.Forecasts[0], p)
	}
}
