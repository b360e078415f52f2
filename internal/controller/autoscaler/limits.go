package autoscaler

import (
	"time"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// replicaLimits gathers the bounds of the replica decision at now, from the optimizer's spec (which
// has autoScaling) and status, the figures of its running replicas and the limits of the policies
// covering its pods. It reads nothing else:
//   - minReplicas and maxReplicas, and one replica's cost and power (the highest running);
//   - the cost cap: maxCostPerHour, lowered by a cost metric (a percentage of it) and by the cap of
//     each enforcing CostPolicy less what the policy's other pods cost now (its status counts ours);
//   - the power cap: maxPowerUsage, lowered by a power metric (watts);
//   - the remaining budget: the optimizer's (once its status has one) and each enforcing
//     CostPolicy's less what its other pods will spend until the period ends; of several, the one
//     that affords the lowest rate until its period ends;
//   - under a CostPolicy in scale-down enforcement, priority: the placed pods that rank below the
//     target's leave it their room, and the pending ones that rank above take room from it.
//
// Limits of policies in warn mode, and limits that are not cost caps or budgets of a CostPolicy,
// are ignored.
func replicaLimits(spec *kcloudv1alpha1.WorkloadOptimizerSpec, status *kcloudv1alpha1.WorkloadOptimizerStatus,
	fig replicaFigures, now time.Time, policies []policyLimit) model.ReplicaLimits {
	as := spec.AutoScaling
	b := limitsBuilder{l: model.ReplicaLimits{MinReplicas: as.MinReplicas, MaxReplicas: as.MaxReplicas,
		CostPerReplicaHour: fig.costPerReplicaHour, WattsPerReplica: fig.wattsPerReplica}}
	if cc := spec.CostConstraints; cc != nil {
		if cc.MaxCostPerHour != nil {
			b.costCap(*cc.MaxCostPerHour)
		}
		if cc.BudgetLimit != nil && status.Budget != nil {
			b.budget(now, kube.PeriodOf(cc.BudgetPeriod), status.Budget.Remaining, 0)
		}
	}
	if pc := spec.PowerConstraints; pc != nil && pc.MaxPowerUsage != nil {
		b.powerCap(*pc.MaxPowerUsage)
	}
	for _, m := range as.Metrics {
		switch m.Type {
		case kcloudv1alpha1.MetricCost:
			if cc := spec.CostConstraints; cc != nil && cc.MaxCostPerHour != nil {
				b.costCap(m.Threshold / 100 * *cc.MaxCostPerHour)
			}
		case kcloudv1alpha1.MetricPower:
			b.powerCap(m.Threshold)
		}
	}
	for _, pl := range policies {
		cp := pl.CostPolicy
		if cp == nil || !kube.Enforces(pl.Enforcement) {
			continue
		}
		// What the policy's other pods cost now, in USD/h (the status counts ours too); under
		// scale-down, less the lower-ranked placed pods, which shrink for us, and plus the
		// higher-ranked pending ones, for which we shrink.
		others := max(0, cp.Status.CurrentCostPerHour-fig.currentCost-pl.yielding) + pl.waiting
		switch pl.Kind {
		case model.LimitCostPerHour:
			b.costCap(pl.Cap - others)
		case model.LimitBudgetUSD:
			b.budget(now, pl.Period, pl.Cap, others)
		}
	}
	return b.l
}

// limitsBuilder keeps the tightest of each bound.
type limitsBuilder struct{ l model.ReplicaLimits }

// costCap lowers the cost cap to usdPerHour.
func (b *limitsBuilder) costCap(usdPerHour float64) {
	if b.l.MaxCostPerHour == nil || usdPerHour < *b.l.MaxCostPerHour {
		b.l.MaxCostPerHour = &usdPerHour
	}
}

// powerCap lowers the power cap to watts.
func (b *limitsBuilder) powerCap(watts float64) {
	if b.l.MaxPowerWatts == nil || watts < *b.l.MaxPowerWatts {
		b.l.MaxPowerWatts = &watts
	}
}

// budget applies a budget with remainingUSD left in its period, of which others USD/h go to other
// pods until the period ends. The tighter budget is the one that affords the lower rate until its
// period ends.
func (b *limitsBuilder) budget(now time.Time, period model.Period, remainingUSD, others float64) {
	end, err := model.PeriodEnd(now, period)
	if err != nil {
		return
	}
	hours := end.Sub(now).Hours()
	if hours <= 0 {
		return
	}
	remaining := remainingUSD - others*hours
	if b.l.RemainingBudget == nil || remaining/hours < *b.l.RemainingBudget/b.l.BudgetHoursLeft {
		b.l.RemainingBudget, b.l.BudgetHoursLeft = &remaining, hours
	}
}
