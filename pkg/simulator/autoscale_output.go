package simulator

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// AutoscaleCSVHeader is the column contract of `kcloud simulate-autoscale --format csv`.
var AutoscaleCSVHeader = []string{"policy", "workload", "workloads", "steps", "replica_hours", "cost_usd", "energy_kwh",
	"slo_violation_minutes", "unserved_replica_hours", "scale_events", "peak_cost_usd_per_h", "peak_power_w", "capped_steps"}

func (r AutoscaleResult) row() []string {
	return []string{r.Policy, r.Workload, strconv.Itoa(r.Workloads), strconv.Itoa(r.Steps), num(r.ReplicaHours, 1),
		num(r.CostUSD, 2), num(r.EnergyKWh, 1), num(r.SLOViolationMinutes, 0), num(r.UnservedReplicaHours, 1),
		strconv.Itoa(r.ScaleEvents), num(r.PeakCostPerHour, 2), num(r.PeakPowerWatts, 0), strconv.Itoa(r.CappedSteps)}
}

// WriteAutoscaleCSV writes results in the CSV contract.
func WriteAutoscaleCSV(w io.Writer, results []AutoscaleResult) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(AutoscaleCSVHeader); err != nil {
		return err
	}
	for _, r := range results {
		if err := cw.Write(r.row()); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteAutoscaleTable writes results as an aligned table; a workload column appears when a row
// belongs to one workload.
func WriteAutoscaleTable(w io.Writer, results []AutoscaleResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tworkload\treplica-hours\tcost USD\tenergy kWh\tSLO-violation min\tunserved replica-h\tscale events\tpeak USD/h\tcapped steps\t")
	for _, r := range results {
		name := r.Workload
		if name == "" {
			name = fmt.Sprintf("all %d", r.Workloads)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.2f\t%.1f\t%.0f\t%.1f\t%d\t%.2f\t%d\t\n", r.Policy, name, r.ReplicaHours, r.CostUSD,
			r.EnergyKWh, r.SLOViolationMinutes, r.UnservedReplicaHours, r.ScaleEvents, r.PeakCostPerHour, r.CappedSteps)
	}
	return tw.Flush()
}

// WriteAutoscaleJSON writes results as a JSON array.
func WriteAutoscaleJSON(w io.Writer, results []AutoscaleResult) error {
	type jsonResult struct {
		Policy               string  `json:"policy"`
		Workload             string  `json:"workload,omitempty"`
		Workloads            int     `json:"workloads"`
		Steps                int     `json:"steps"`
		ReplicaHours         float64 `json:"replica_hours"`
		CostUSD              float64 `json:"cost_usd"`
		EnergyKWh            float64 `json:"energy_kwh"`
		SLOViolationMinutes  float64 `json:"slo_violation_minutes"`
		UnservedReplicaHours float64 `json:"unserved_replica_hours"`
		ScaleEvents          int     `json:"scale_events"`
		PeakCostPerHour      float64 `json:"peak_cost_usd_per_h"`
		PeakPowerWatts       float64 `json:"peak_power_w"`
		CappedSteps          int     `json:"capped_steps"`
	}
	out := make([]jsonResult, 0, len(results))
	for _, r := range results {
		// A conversion, not a literal: a field added to AutoscaleResult without its JSON name then
		// fails to compile here.
		out = append(out, jsonResult(r))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
