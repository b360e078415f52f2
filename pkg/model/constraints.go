package model

import "fmt"

// LimitKind is what a Limit caps.
type LimitKind int

const (
	// LimitCostPerHour caps the summed attributed cost of a set of pods, in USD/h.
	LimitCostPerHour LimitKind = iota
	// LimitPowerWatts caps the summed attributed power of a set of pods, in W.
	LimitPowerWatts
	// LimitBudgetUSD is money left in a budget period; the covered pods, a new one included, must
	// be affordable for BudgetHorizonHours.
	LimitBudgetUSD
	// LimitEnergyKWh is energy left in a budget period; the covered pods, a new one included, must
	// be affordable for BudgetHorizonHours.
	LimitEnergyKWh
	// LimitCarbonIntensity caps the grid carbon intensity of the node, in gCO2/kWh.
	LimitCarbonIntensity
	// LimitInvalid is a limit that cannot be evaluated (an enforcing policy whose selector does not
	// parse): every node breaks it, so the policy fails closed until it is fixed. Source says why.
	LimitInvalid
)

// BudgetHorizonHours is how long the covered pods must be affordable from what is left of a budget:
// a pod that would, with those already running, exhaust the budget within the hour is not placed.
// Counting the running pods makes what is left a room that placements use up, so that pods waiting
// for it are admitted in turn (by priority) instead of all at once.
const BudgetHorizonHours = 1.0

// Limit is one hard constraint from a WorkloadOptimizer, CostPolicy or PowerPolicy.
type Limit struct {
	Source string // who set it, e.g. "CostPolicy ml-team" or "WorkloadOptimizer ai/bert maxCostPerHour"
	Kind   LimitKind
	Cap    float64 // the cap, or what is left for budgets
	Used   float64 // what the covered pods use now, in LimitRate's unit (0 for carbon)
}

// LimitRate is what a pod charged costPerHour USD/h and powerWatts W adds to a limit of kind k while
// it runs: USD/h for cost caps and budgets, W for power caps, kW for energy budgets, nothing for
// carbon (a property of the node, not a sum).
func LimitRate(k LimitKind, costPerHour, powerWatts float64) float64 {
	switch k {
	case LimitCostPerHour, LimitBudgetUSD:
		return costPerHour
	case LimitPowerWatts:
		return powerWatts
	case LimitEnergyKWh:
		return powerWatts / 1000
	}
	return 0
}

// SpotRule is a hard spot constraint.
type SpotRule int

const (
	SpotAny SpotRule = iota
	SpotRequired
	SpotAvoided
)

// Violation explains why a node is infeasible for a pod; Error() names the limit and the figures.
type Violation struct {
	Limit   Limit
	Adds    float64
	Message string
}

func (v Violation) Error() string { return v.Message }

// CheckLimits returns the first limit that placing a pod with the given attributed cost and power on
// a node with economics e would break, or nil when all hold. A cost limit is broken on a node with
// no price, and a power limit on one whose accelerators have no power figure: what a pod would add
// there is unknown.
func CheckLimits(limits []Limit, costPerHour, powerWatts float64, e *Economics) *Violation {
	carbon := e.CarbonIntensity
	for _, l := range limits {
		if v := unknownFigure(l, e); v != nil {
			return v
		}
		var adds float64
		var msg string
		switch l.Kind {
		case LimitCostPerHour:
			adds = costPerHour
			if l.Used+adds > l.Cap+epsilon {
				msg = fmt.Sprintf("%s: hourly cost cap %.2f USD/h exceeded (%.2f in use + %.2f for this pod)", l.Source, l.Cap, l.Used, adds)
			}
		case LimitPowerWatts:
			adds = powerWatts
			if l.Used+adds > l.Cap+epsilon {
				msg = fmt.Sprintf("%s: power cap %.0f W exceeded (%.0f in use + %.0f for this pod)", l.Source, l.Cap, l.Used, adds)
			}
		case LimitBudgetUSD:
			adds = costPerHour * BudgetHorizonHours
			if l.Used*BudgetHorizonHours+adds > l.Cap+epsilon {
				msg = fmt.Sprintf("%s: budget left %.2f USD does not cover %.0f h of the covered pods (%.2f USD/h running + %.2f USD/h for this pod)",
					l.Source, l.Cap, BudgetHorizonHours, l.Used, costPerHour)
			}
		case LimitEnergyKWh:
			adds = powerWatts / 1000 * BudgetHorizonHours
			if l.Used*BudgetHorizonHours+adds > l.Cap+epsilon {
				msg = fmt.Sprintf("%s: energy budget left %.2f kWh does not cover %.0f h of the covered pods (%.0f W running + %.0f W for this pod)",
					l.Source, l.Cap, BudgetHorizonHours, l.Used*1000, powerWatts)
			}
		case LimitCarbonIntensity:
			adds = carbon
			if carbon > l.Cap+epsilon {
				msg = fmt.Sprintf("%s: node carbon intensity %.0f gCO2/kWh is above the limit %.0f", l.Source, carbon, l.Cap)
			}
		case LimitInvalid:
			msg = l.Source
		}
		if msg != "" {
			return &Violation{Limit: l, Adds: adds, Message: msg}
		}
	}
	return nil
}

// unknownFigure is the violation of a limit whose figure the node cannot give: cost on a node with
// no price, power and energy on one whose accelerators have no power figure.
func unknownFigure(l Limit, e *Economics) *Violation {
	switch {
	case (l.Kind == LimitCostPerHour || l.Kind == LimitBudgetUSD) && e.Unpriced != "":
		return &Violation{Limit: l, Message: fmt.Sprintf("%s: the node has no price (%s), so its cost to this pod is unknown", l.Source, e.Unpriced)}
	case (l.Kind == LimitPowerWatts || l.Kind == LimitEnergyKWh) && e.Unpowered != "":
		return &Violation{Limit: l, Message: fmt.Sprintf("%s: the node's accelerators have no power figure (%s), so this pod's draw there is unknown", l.Source, e.Unpowered)}
	}
	return nil
}

// epsilon absorbs float rounding when a pod exactly meets a cap.
const epsilon = 1e-9

// CheckSpot returns a violation when the node's capacity type breaks the rule.
func CheckSpot(rule SpotRule, source string, spot bool) *Violation {
	switch {
	case rule == SpotRequired && !spot:
		return &Violation{Message: fmt.Sprintf("%s: spot capacity required, node is on-demand", source)}
	case rule == SpotAvoided && spot:
		return &Violation{Message: fmt.Sprintf("%s: spot capacity avoided, node is spot", source)}
	}
	return nil
}
