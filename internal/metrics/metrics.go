// Package metrics defines the operator's Prometheus metrics, registered in controller-runtime's
// registry so the manager's authenticated metrics endpoint serves them beside the
// controller_runtime_* ones (reconcile counts, errors and latencies per controller).
package metrics

import (
	"time"

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

	// PolicyBudget is a CostPolicy's spec.budget.amount.
	PolicyBudget = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_policy_budget_usd",
		Help: "A CostPolicy's budget per period (spec.budget.amount), USD; absent without a budget.",
	}, []string{"policy"})

	// PolicyBudgetThreshold is the highest alert threshold a CostPolicy's spend has reached.
	PolicyBudgetThreshold = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_policy_budget_threshold_ratio",
		Help: "The highest of a CostPolicy's spec.budget.alertThresholds its spend has reached this period, as a fraction of the budget (0.8 for 80%); 0 when none is reached, absent without a budget.",
	}, []string{"policy"})

	// PolicyMaxCost is a CostPolicy's spec.maxCostPerHour.
	PolicyMaxCost = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_policy_max_cost_usd_per_hour",
		Help: "A CostPolicy's hourly cap (spec.maxCostPerHour), USD per hour; absent without a cap.",
	}, []string{"policy"})

	// PolicyEnergyBudget is a PowerPolicy's spec.energyBudget.kilowattHours.
	PolicyEnergyBudget = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_policy_energy_budget_kwh",
		Help: "A PowerPolicy's energy budget per period (spec.energyBudget.kilowattHours), kWh; absent without a budget.",
	}, []string{"policy"})

	// PolicyEnergyBudgetThreshold is the highest alert threshold a PowerPolicy's energy has reached.
	PolicyEnergyBudgetThreshold = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_policy_energy_budget_threshold_ratio",
		Help: "The highest of a PowerPolicy's spec.energyBudget.alertThresholds its energy has reached this period, as a fraction of the budget; 0 when none is reached, absent without a budget.",
	}, []string{"policy"})

	// PolicyMaxPower is a PowerPolicy's spec.maxPowerWatts.
	PolicyMaxPower = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_policy_max_power_watts",
		Help: "A PowerPolicy's power cap (spec.maxPowerWatts), watts; absent without a cap.",
	}, []string{"policy"})

	// TelemetryUp says whether the last read of measured power from Prometheus succeeded.
	TelemetryUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kcloud_telemetry_up",
		Help: "1 when the operator's last read of measured power (dcgm-exporter, Kepler) from Prometheus succeeded, 0 when a query failed and the catalog power model stands in; absent without --prometheus-url.",
	})

	// TelemetryLastSuccess is when measured power was last read without an error.
	TelemetryLastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kcloud_telemetry_last_success_timestamp_seconds",
		Help: "Unix time of the operator's last read of measured power from Prometheus that succeeded; absent until one does.",
	})

	// TelemetryMeasuredPods counts the pods the last read of measured power had a reading for.
	TelemetryMeasuredPods = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kcloud_telemetry_measured_pods",
		Help: "Pods with a measured power reading in the operator's last read from Prometheus; 0 while Prometheus answers but holds no dcgm-exporter or Kepler series for any pod.",
	})

	// CoreSchedulerUp says whether CORE_SCHEDULER_URL answered its health check.
	CoreSchedulerUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kcloud_core_scheduler_up",
		Help: "1 when the kcloud-scheduler at CORE_SCHEDULER_URL answers /healthz, 0 when not (absent when unset).",
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(NodePriced, NodePowered, NodePrice,
		OptimizationsTotal, CostSavingsTotal, PowerSavingsWatts, OptimizationScore,
		WorkloadCost, WorkloadPower, PolicySpend, PolicyCost, PolicyEnergy, PolicyPower, PolicyCarbon, CoreSchedulerUp,
		PolicyBudget, PolicyBudgetThreshold, PolicyMaxCost, PolicyEnergyBudget, PolicyEnergyBudgetThreshold, PolicyMaxPower,
		TelemetryUp, TelemetryLastSuccess, TelemetryMeasuredPods)
}

// costPolicyGauges and powerPolicyGauges are the series of each kind of policy, by the policy's
// name; the two kinds are cluster-scoped and may share a name.
var (
	costPolicyGauges  = []*prometheus.GaugeVec{PolicySpend, PolicyCost, PolicyBudget, PolicyBudgetThreshold, PolicyMaxCost}
	powerPolicyGauges = []*prometheus.GaugeVec{PolicyEnergy, PolicyPower, PolicyCarbon, PolicyEnergyBudget, PolicyEnergyBudgetThreshold, PolicyMaxPower}
)

// PolicyLimits are a policy's budget and cap, as its spec sets them (nil: not set), and the
// highest alert threshold reached, in percent of the budget (0: none).
type PolicyLimits struct {
	Budget, Cap      *float64
	ThresholdPercent int32
}

// ObserveCostPolicyLimits sets the budget, threshold and cap series of a CostPolicy, and removes
// those its spec does not set.
func ObserveCostPolicyLimits(policy string, l PolicyLimits) {
	observeLimits(policy, l, PolicyBudget, PolicyBudgetThreshold, PolicyMaxCost)
}

// ObservePowerPolicyLimits does the same for a PowerPolicy's energy budget and power cap.
func ObservePowerPolicyLimits(policy string, l PolicyLimits) {
	observeLimits(policy, l, PolicyEnergyBudget, PolicyEnergyBudgetThreshold, PolicyMaxPower)
}

func observeLimits(policy string, l PolicyLimits, budget, threshold, maxRate *prometheus.GaugeVec) {
	if l.Budget != nil {
		budget.WithLabelValues(policy).Set(*l.Budget)
		threshold.WithLabelValues(policy).Set(float64(l.ThresholdPercent) / 100)
	} else {
		budget.DeleteLabelValues(policy)
		threshold.DeleteLabelValues(policy)
	}
	if l.Cap != nil {
		maxRate.WithLabelValues(policy).Set(*l.Cap)
	} else {
		maxRate.DeleteLabelValues(policy)
	}
}

// ObserveTelemetryRead records one read of measured power: whether it failed, when it last
// succeeded (at, from the caller's clock) and how many pods it measured.
func ObserveTelemetryRead(at time.Time, pods int, err error) {
	TelemetryMeasuredPods.Set(float64(pods))
	if err != nil {
		TelemetryUp.Set(0)
		return
	}
	TelemetryUp.Set(1)
	TelemetryLastSuccess.Set(float64(at.UnixMilli()) / 1000)
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

// ForgetCostPolicy drops a deleted CostPolicy's series (a PowerPolicy of the same name keeps its own).
func ForgetCostPolicy(name string) {
	for _, g := range costPolicyGauges {
		g.DeleteLabelValues(name)
	}
}

// ForgetPowerPolicy drops a deleted PowerPolicy's series.
func ForgetPowerPolicy(name string) {
	for _, g := range powerPolicyGauges {
		g.DeleteLabelValues(name)
	}
}

// ForgetNode drops a deleted node's series.
func ForgetNode(name string) {
	for _, g := range []*prometheus.GaugeVec{NodePriced, NodePowered, NodePrice} {
		g.DeleteLabelValues(name)
	}
}
