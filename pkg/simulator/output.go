package simulator

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
)

// CSVHeader is the column contract of `kcloud simulate --format csv`, used by benchmarks.
var CSVHeader = []string{"policy", "mode", "seeds", "pods", "scheduled", "gpu_alloc_pct_100", "gpu_alloc_pct_130",
	"frag_pct_100", "cost_usd_per_h_mean", "power_kw_mean", "node_hours", "cost_usd", "energy_kwh", "carbon_kg", "wall_seconds"}

func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func (r Result) row() []string {
	return []string{r.Policy, string(r.Mode), strconv.Itoa(r.Seeds), num(r.Pods, 1), num(r.Scheduled, 1),
		num(r.AllocPct100, 2), num(r.AllocPct130, 2), num(r.FragPct100, 2), num(r.CostMean, 2), num(r.PowerKWMean, 2),
		num(r.NodeHours, 1), num(r.CostUSD, 2), num(r.EnergyKWh, 1), num(r.CarbonKg, 1), num(r.WallSeconds, 3)}
}

// WriteCSV writes results in the CSV contract.
func WriteCSV(w io.Writer, results []Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
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

// WriteTable writes results as an aligned table with the columns the mode fills.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(results) > 0 && results[0].Mode == ModeReplay {
		fmt.Fprintln(tw, "policy\tpods\tscheduled\twaited\tnever ran\tnode-hours\tcost USD\tenergy kWh\tcarbon kg\twall s\t")
		for _, r := range results {
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.2f\t%.1f\t%.1f\t%.2f\t\n", r.Policy, r.Pods, r.Scheduled, r.Waited, r.NeverRan,
				r.NodeHours, r.CostUSD, r.EnergyKWh, r.CarbonKg, r.WallSeconds)
		}
	} else {
		fmt.Fprintln(tw, "policy\tpods\tGPU alloc % @100\t±\t@130\tfrag % @100\tUSD/h mean\tkW mean\twall s\t")
		for _, r := range results {
			fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%.2f\t\n", r.Policy, r.Pods, r.AllocPct100, r.AllocStd100, r.AllocPct130,
				r.FragPct100, r.CostMean, r.PowerKWMean, r.WallSeconds)
		}
	}
	return tw.Flush()
}

// WriteJSON writes results as a JSON array; unfilled figures are null.
func WriteJSON(w io.Writer, results []Result) error {
	type jsonResult struct {
		Policy      string     `json:"policy"`
		Mode        Mode       `json:"mode"`
		Seeds       int        `json:"seeds"`
		Pods        float64    `json:"pods"`
		Scheduled   float64    `json:"scheduled"`
		AllocPct100 *float64   `json:"gpu_alloc_pct_100"`
		AllocStd100 *float64   `json:"gpu_alloc_pct_100_std"`
		AllocPct130 *float64   `json:"gpu_alloc_pct_130"`
		FragPct100  *float64   `json:"frag_pct_100"`
		CostMean    *float64   `json:"cost_usd_per_h_mean"`
		PowerKWMean *float64   `json:"power_kw_mean"`
		NodeHours   *float64   `json:"node_hours"`
		CostUSD     *float64   `json:"cost_usd"`
		EnergyKWh   *float64   `json:"energy_kwh"`
		CarbonKg    *float64   `json:"carbon_kg"`
		Waited      *float64   `json:"pods_waited"`
		NeverRan    *float64   `json:"pods_never_ran"`
		WallSeconds float64    `json:"wall_seconds"`
		AllocCurve  []*float64 `json:"gpu_alloc_pct_by_arrival,omitempty"`
	}
	opt := func(v float64) *float64 {
		if math.IsNaN(v) {
			return nil
		}
		return &v
	}
	out := make([]jsonResult, 0, len(results))
	for _, r := range results {
		var curve []*float64
		for _, v := range r.AllocCurve {
			curve = append(curve, opt(v))
		}
		out = append(out, jsonResult{r.Policy, r.Mode, r.Seeds, r.Pods, r.Scheduled, opt(r.AllocPct100), opt(r.AllocStd100), opt(r.AllocPct130),
			opt(r.FragPct100), opt(r.CostMean), opt(r.PowerKWMean), opt(r.NodeHours), opt(r.CostUSD), opt(r.EnergyKWh), opt(r.CarbonKg),
			opt(r.Waited), opt(r.NeverRan), r.WallSeconds, curve})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
