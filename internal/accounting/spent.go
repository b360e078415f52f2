package accounting

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// Budgets judges deny-mode budgets at an instant, not at the ledger's last accounting: the stored
// ledger (status) moved to the instant with the covered pods' runs from the fleet's cache. The pod
// webhook asks at admission and the budget guard at a pod's creation, so a budget refuses pods
// from the moment it runs out rather than from the next accounting. Safe for concurrent use.
type Budgets struct {
	Fleet *cluster.Fleet

	mu     sync.Mutex
	ranOut map[string]ranOut // "CostPolicy/NAME" -> when its stored ledger reached the budget
}

// ranOut is when a stored ledger (at one resource version of its policy) reached its budget.
type ranOut struct {
	version string
	at      time.Time
}

// ledger is one budget's stored ledger and what it may reach.
type ledger struct {
	key, version  string
	target        kcloudv1alpha1.PolicyTarget
	start, until  *metav1.Time
	amount, limit float64
	period        model.Period
	unit          string
	of            func(Covered) float64
}

// Spent lists, for each deny-mode budget among a pod's limits (kube.Policies.For) that had run out
// at t, why. A ledger spends only forward, so an instant before the stored ledger's end is judged
// against the instant it reached the budget; an instant in a period before the stored one is never
// judged spent (that period's ledger is gone).
func (b *Budgets) Spent(ctx context.Context, limits []kube.PodLimit, t time.Time) ([]string, error) {
	var spent []string
	for i := range limits {
		l := &limits[i]
		if l.Enforcement != kcloudv1alpha1.EnforcementDeny {
			continue
		}
		var lg ledger
		var what string
		switch {
		case l.Kind == model.LimitBudgetUSD && l.CostPolicy != nil && l.CostPolicy.Spec.Budget != nil:
			cp := l.CostPolicy
			lg = ledger{key: "CostPolicy/" + cp.Name, version: cp.ResourceVersion, target: cp.Spec.PolicyTarget,
				start: cp.Status.PeriodStart, until: cp.Status.AccountedUntil, amount: cp.Status.CurrentSpend,
				limit: cp.Spec.Budget.Amount, period: l.Period, unit: "USD", of: func(c Covered) float64 { return c.SpendUSD }}
			what = "budget"
		case l.Kind == model.LimitEnergyKWh && l.PowerPolicy != nil && l.PowerPolicy.Spec.EnergyBudget != nil:
			pp := l.PowerPolicy
			lg = ledger{key: "PowerPolicy/" + pp.Name, version: pp.ResourceVersion, target: pp.Spec.PolicyTarget,
				start: pp.Status.PeriodStart, until: pp.Status.AccountedUntil, amount: pp.Status.EnergyThisPeriodKWh,
				limit: pp.Spec.EnergyBudget.KilowattHours, period: l.Period, unit: "kWh", of: func(c Covered) float64 { return c.EnergyKWh }}
			what = "energy budget"
		default:
			continue
		}
		msg, err := b.judge(ctx, &lg, t)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", lg.key, err)
		}
		if msg != "" {
			spent = append(spent, fmt.Sprintf("%s (enforcement deny): %s of %.2f %s per %s is spent (%s)", l.Source, what, lg.limit, lg.unit, l.Period, msg))
		}
	}
	return spent, nil
}

// judge says how the ledger had reached its limit at t ("" when it had not).
func (b *Budgets) judge(ctx context.Context, lg *ledger, t time.Time) (string, error) {
	periodStart, err := model.PeriodStart(t, lg.period)
	if err != nil {
		return "", err
	}
	sum := func(from, to time.Time) (float64, error) {
		c, err := Cover(ctx, b.Fleet, lg.target, from, to, 0)
		return lg.of(c), err
	}
	reached := func(used float64) string {
		if used < lg.limit {
			return ""
		}
		return fmt.Sprintf("%.4f %s by %s", used, lg.unit, t.UTC().Format(time.RFC3339))
	}
	switch {
	case lg.start == nil || lg.until == nil || lg.start.Time.Before(periodStart) || lg.until.Time.Before(periodStart):
		used, err := sum(periodStart, t) // the stored ledger is of an earlier period, or there is none
		return reached(used), err
	case lg.start.After(periodStart):
		return "", nil
	case !t.Before(lg.until.Time):
		used, err := sum(lg.until.Time, t)
		return reached(lg.amount + used), err
	case lg.amount < lg.limit:
		return "", nil // not reached at the ledger's end, so not before it either
	}
	at, err := b.ranOutAt(lg, periodStart, sum)
	if err != nil || t.Before(at) {
		return "", err
	}
	return fmt.Sprintf("reached at %s", at.UTC().Format(time.RFC3339)), nil
}

// ranOutAt is the first second at which a ledger that has reached its limit by its end had reached
// it, found by bisection over its period and kept per resource version of the policy: the guard
// asks it for every pod it sees when it starts.
func (b *Budgets) ranOutAt(lg *ledger, periodStart time.Time, sum func(from, to time.Time) (float64, error)) (time.Time, error) {
	b.mu.Lock()
	if r, ok := b.ranOut[lg.key]; ok && r.version == lg.version {
		b.mu.Unlock()
		return r.at, nil
	}
	b.mu.Unlock()
	lo, hi := periodStart, lg.until.Time // not reached at lo, reached at hi
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		after, err := sum(mid, lg.until.Time)
		if err != nil {
			return time.Time{}, err
		}
		if lg.amount-after >= lg.limit {
			hi = mid
		} else {
			lo = mid
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ranOut == nil {
		b.ranOut = map[string]ranOut{}
	}
	b.ranOut[lg.key] = ranOut{version: lg.version, at: hi}
	return hi, nil
}
