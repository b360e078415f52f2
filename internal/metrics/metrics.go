// Package metrics defines the operator's Prometheus metrics, registered in controller-runtime's
// registry so the manager's authenticated metrics endpoint serves them beside the
// controller_runtime_* ones (reconcile counts, errors and latencies per controller).
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// NodePriced is 1 for a node the catalog prices, 0 for one it cannot (an accelerator model it
	// does not list and no price set): pods under cost limits do not go there.
	NodePriced = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_node_priced",
		Help: "1 when the node has a price, 0 when it has none (see the node's NodeUnpriced event).",
	}, []string{"node"})

	// NodePowered is 1 for a node whose accelerators have a power figure, 0 otherwise.
	NodePowered = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_node_powered",
		Help: "1 when the node's accelerators have a power figure, 0 when they have none (see the node's NodeUnpowered event).",
	}, []string{"node"})

	// NodePrice is the node's hourly price and the rule that gave it, for priced nodes.
	NodePrice = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_node_price_usd_per_hour",
		Help: "The node's price while it is up, USD per hour (absent for an unpriced node).",
	}, []string{"node"})

	// OptimizationsTotal counts evaluations of a workload's placement.
	OptimizationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kcloud_workload_optimizations_total",
		Help: "Evaluations of a WorkloadOptimizer's placement, by namespace and outcome phase.",
	}, []string{"namespace", "phase"})

	// CostSavingsTotal integrates, over time, what workloads cost less than a cost-blind placement
	// would: the mean attributed cost over the nodes each pod could run on, minus what it costs.
	CostSavingsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kcloud_cost_savings_total",
		Help: "USD saved against a cost-blind placement (the mean over the nodes each pod could run on), accumulated while the workloads run.",
	}, []string{"namespace", "name"})

	// PowerSavingsWatts is what workloads draw less than a power-blind placement would.
	PowerSavingsWatts = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_power_savings_watts",
		Help: "Watts a workload draws less than a power-blind placement would (the mean over the nodes each pod could run on).",
	}, []string{"namespace", "name"})

	// OptimizationScore is status.optimizationScore.
	OptimizationScore = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_optimization_score",
		Help: "How close a workload's placement is to the best the model finds (1 is optimal).",
	}, []string{"namespace", "name"})

	// WorkloadCost is status.currentCost.
	WorkloadCost = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_workload_cost_usd_per_hour",
		Help: "What a workload's running pods cost, USD per hour.",
	}, []string{"namespace", "name"})

	// WorkloadPower is status.currentPower.
	WorkloadPower = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_workload_power_watts",
		Help: "What a workload's running pods draw, watts.",
	}, []string{"namespace", "name", "source"})

	// PolicySpend is a CostPolicy's spend in its current period.
	PolicySpend = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_policy_spend_usd",
		Help: "A CostPolicy's spend in its current period, USD.",
	}, []string{"policy"})

	// PolicyCost is a CostPolicy's covered cost rate.
	PolicyCost = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_policy_cost_usd_per_hour",
		Help: "What a CostPolicy's covered pods cost now, USD per hour.",
	}, []string{"policy"})

	// PolicyEnergy is a PowerPolicy's energy in its current period.
	PolicyEnergy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_policy_energy_kwh",
		Help: "A PowerPolicy's energy in its current period, kWh.",
	}, []string{"policy"})

	// PolicyPower is a PowerPolicy's covered power.
	PolicyPower = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_policy_power_watts",
		Help: "What a PowerPolicy's covered pods draw now, watts.",
	}, []string{"policy"})

	// PolicyCarbon is a PowerPolicy's emissions in its current period.
	PolicyCarbon = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_policy_carbon_kg",
		Help: "A PowerPolicy's emissions in its current period, kg CO2.",
	}, []string{"policy"})

	// CoreSchedulerUp says whether CORE_SCHEDULER_URL answered its health check.
	CoreSchedulerUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kcloud_core_scheduler_up",
		Help: "1 when the kcloud-scheduler at CORE_SCHEDULER_URL answers /healthz, 0 when not (absent when unset).",
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(NodePriced, NodePowered, NodePrice,
		OptimizationsTotal, CostSavingsTotal, PowerSavingsWatts, OptimizationScore,
		WorkloadCost, WorkloadPower, PolicySpend, PolicyCost, PolicyEnergy, PolicyPower, PolicyCarbon, CoreSchedulerUp)
}

// ForgetWorkload drops a deleted WorkloadOptimizer's series.
func ForgetWorkload(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "name": name}
	CostSavingsTotal.DeletePartialMatch(l)
	PowerSavingsWatts.DeletePartialMatch(l)
	OptimizationScore.DeletePartialMatch(l)
	WorkloadCost.DeletePartialMatch(l)
	WorkloadPower.DeletePartialMatch(l)
}

// ForgetPolicy drops a deleted policy's series.
func ForgetPolicy(name string) {
	l := prometheus.Labels{"policy": name}
	for _, g := range []*prometheus.GaugeVec{PolicySpend, PolicyCost, PolicyEnergy, PolicyPower, PolicyCarbon} {
		g.DeletePartialMatch(l)
	}
}

// ForgetNode drops a deleted node's series.
func ForgetNode(name string) {
	for _, g := range []*prometheus.GaugeVec{NodePriced, NodePowered, NodePrice} {
		g.DeleteLabelValues(name)
	}
}
