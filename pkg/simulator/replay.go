package simulator

import "kcloud.io/optimizer/pkg/model"

// ReplayResult is one replay run.
type ReplayResult struct {
	Pods, Scheduled  int
	Waited, NeverRan int
	NodeHours        float64
	CostUSD          float64
	EnergyKWh        float64
	CarbonKg         float64
}

func runReplay(c *Cluster, trace []Pod, types []model.PodType, policy string, w Weights, seed int64) (ReplayResult, error) {
	return ReplayResult{}, nil
}
