package model

import "math"

// Totals are what a workload costs and draws in one placement.
type Totals struct {
	CostPerHour float64
	PowerWatts  float64
}

// OptimizationScore says how close the current placement is to the best one the model finds, from
// 0 to 1: the mean of best/current for cost and for power, each capped at 1 (a placement at least as
// good as the best found scores 1; one costing twice as much and drawing twice the power scores 0.5).
// A workload that costs and draws nothing scores 1.
func OptimizationScore(current, best Totals) float64 {
	ratio := func(cur, b float64) float64 {
		if cur <= 0 || b >= cur {
			return 1
		}
		if b <= 0 {
			return 0
		}
		return b / cur
	}
	return (ratio(current.CostPerHour, best.CostPerHour) + ratio(current.PowerWatts, best.PowerWatts)) / 2
}

// Round keeps digits decimals of a figure shown in status, so that status does not churn on float
// noise; NaN and infinities, which status cannot hold, become 0.
func Round(v float64, digits int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
