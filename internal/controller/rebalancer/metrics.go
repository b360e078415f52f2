package rebalancer

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
)

var (
	runsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kcloud_rebalance_runs_total",
		Help: "Rebalancing runs, by mode (live or dry-run).",
	}, []string{"mode"})
	movesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kcloud_rebalance_evictions_total",
		Help: "Moves the rebalancer chose, by namespace and outcome: Evicted, Blocked (a PodDisruptionBudget refused), Failed, Planned (dry run).",
	}, []string{"namespace", "outcome"})
	plannedCost = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kcloud_rebalance_planned_savings_usd_per_hour_total",
		Help: "Sum of the predicted savings of the moves evicted, USD per hour (each move counts its share of its unit's saving).",
	})
	plannedPower = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kcloud_rebalance_planned_savings_watts_total",
		Help: "Sum of the predicted power savings of the moves evicted, watts.",
	})
	realisedCost = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kcloud_rebalance_realised_savings_usd_per_hour_total",
		Help: "Sum of the predicted savings of the moves whose replacement landed on its reserved node, USD per hour.",
	})
	realisedPower = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kcloud_rebalance_realised_savings_watts_total",
		Help: "Sum of the predicted power savings of the moves whose replacement landed on its reserved node, watts.",
	})
	lastRunMoves = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_rebalance_last_run_moves",
		Help: "Moves of the last completed rebalancing run, by outcome: Evicted, Blocked (a PodDisruptionBudget refused), Failed, Planned (dry run), Deferred (held back by the per-node, per-namespace or total limits).",
	}, []string{"outcome"})
	runFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kcloud_rebalance_run_failures_total",
		Help: "Rebalancing runs that ended in an error before deciding their moves (listing pods, building the snapshot, writing status).",
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(runsTotal, movesTotal, plannedCost, plannedPower, realisedCost, realisedPower, lastRunMoves, runFailures)
}

// lastRunOutcomes are the outcomes kcloud_rebalance_last_run_moves always has a series for.
var lastRunOutcomes = []string{kcloudv1alpha1.MoveEvicted, kcloudv1alpha1.MoveBlocked, kcloudv1alpha1.MoveFailed,
	kcloudv1alpha1.MovePlanned, kcloudv1alpha1.MoveDeferred}

func observeRun(rep Report) {
	mode := "live"
	if rep.DryRun {
		mode = "dry-run"
	}
	runsTotal.WithLabelValues(mode).Inc()
	for _, o := range lastRunOutcomes {
		n := rep.Count(o)
		if o == kcloudv1alpha1.MoveDeferred {
			n = rep.Deferred
		}
		lastRunMoves.WithLabelValues(o).Set(float64(n))
	}
	for _, m := range rep.Moves {
		movesTotal.WithLabelValues(m.Pod.Namespace, m.Outcome).Inc()
		if m.Outcome == kcloudv1alpha1.MoveEvicted {
			plannedCost.Add(max(0, m.Saving.CostPerHour))
			plannedPower.Add(max(0, m.Saving.PowerWatts))
		}
	}
}

func observeRealised(res kube.Reservation) {
	realisedCost.Add(max(0, res.SavingsPerHour))
	realisedPower.Add(max(0, res.PowerSavings))
}
