package main

import (
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/simulator"
)

type simulateAutoscaleOptions struct {
	trace, instanceType, format, catalogFile           string
	step, season, lead, stabilization, warmup, history time.Duration
	refit                                              time.Duration
	apps                                               []string
	minReplicas                                        int32
	replicaTarget, maxCostPerHour, maxPowerWatts       float64
	perWorkload                                        bool
	workers                                            int
}

func newSimulateAutoscaleCommand() *cobra.Command {
	o := simulateAutoscaleOptions{}
	cmd := &cobra.Command{
		Use:   "simulate-autoscale",
		Short: "Compare fixed-at-max, reactive and predictive autoscaling on the Alibaba DLRM inference trace",
		Long: `Derive each app's GPU demand per step from the Alibaba DLRM inference instance trace (the most GPUs
its instances hold at any moment of the step) and size every app as one workload under three policies,
with the same decision code the autoscaler runs (pkg/model.DecideReplicas):

  fixed-at-max  the replicas of the app's highest demand ever, all the time
  reactive      the HPA rule on the last observed demand
  predictive    the HPA rule on the peak of the Holt-Winters forecast (daily season) until a replica
                started now is ready

Both scaling policies wait --lead for a new replica to become ready, scale down no lower than the
highest recommendation within --stabilization, and see the last --history of demand. The first
--warmup is history only; figures count the steps after it. A replica is a node of --instance-type to
itself, priced and powered by the catalog; an SLO-violation minute is a minute in which an app has
fewer ready replicas than demand (summed over apps).`,
		Example: `  kcloud simulate-autoscale --trace ../shared/data/traces/alibaba_dlrm_inference_instances.csv
  kcloud simulate-autoscale --trace dlrm.csv --lead 15m --stabilization 10m --format csv --per-workload`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.OutOrStdout()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.trace, "trace", "", "the Alibaba DLRM inference instance trace (alibaba_dlrm_inference_instances.csv); required")
	f.DurationVar(&o.step, "step", 5*time.Minute, "spacing of the demand points and of the decisions")
	f.DurationVar(&o.season, "season", 24*time.Hour, "season of the Holt-Winters forecast")
	f.DurationVar(&o.lead, "lead", 10*time.Minute, "time a new replica needs to become ready (rounded up to whole steps)")
	f.DurationVar(&o.stabilization, "stabilization", 15*time.Minute, "scale-down stabilization window")
	f.DurationVar(&o.warmup, "warmup", 48*time.Hour, "history before the first decision; not scored")
	f.DurationVar(&o.history, "history", 48*time.Hour, "demand history each decision sees")
	f.DurationVar(&o.refit, "refit", time.Hour, "how often the predictive policy refits its Holt-Winters factors")
	f.StringVar(&o.instanceType, "instance-type", "g5.4xlarge", "instance type of one replica (a catalog type with accelerators)")
	f.Int32Var(&o.minReplicas, "min-replicas", 0, "minReplicas of every app")
	f.Float64Var(&o.replicaTarget, "replica-target", 1, "GPUs of demand one replica serves (the metric threshold)")
	f.Float64Var(&o.maxCostPerHour, "max-cost-per-hour", 0, "cost cap of each app in USD/h (0: none)")
	f.Float64Var(&o.maxPowerWatts, "max-power", 0, "power cap of each app in watts (0: none)")
	f.StringSliceVar(&o.apps, "apps", nil, "only these apps (default: every app with GPU instances)")
	f.BoolVar(&o.perWorkload, "per-workload", false, "also print each app's figures")
	f.StringVar(&o.format, "format", "table", "output format: table, csv or json")
	f.StringVar(&o.catalogFile, "catalog", "", "YAML or JSON file with the data of a catalog ConfigMap to override the embedded prices and power")
	f.IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "apps simulated in parallel")
	return cmd
}

// steps converts a duration flag to whole steps.
func steps(name string, d, step time.Duration) (int, error) {
	if d < 0 || d%step != 0 {
		return 0, fmt.Errorf("--%s %s is not a whole number of --step %s", name, d, step)
	}
	return int(d / step), nil
}

func (o *simulateAutoscaleOptions) run(out io.Writer) error {
	switch o.format {
	case "table", "csv", "json":
	default:
		return fmt.Errorf("--format %q: known formats are table, csv, json", o.format)
	}
	if o.trace == "" {
		return fmt.Errorf("--trace is required: the Alibaba DLRM inference instance trace (alibaba_dlrm_inference_instances.csv)")
	}
	if o.step <= 0 {
		return fmt.Errorf("--step must be positive, got %s", o.step)
	}
	season, err := steps("season", o.season, o.step)
	if err != nil {
		return err
	}
	warmup, err := steps("warmup", o.warmup, o.step)
	if err != nil {
		return err
	}
	history, err := steps("history", o.history, o.step)
	if err != nil {
		return err
	}
	refit, err := steps("refit", o.refit, o.step)
	if err != nil {
		return err
	}
	cat := catalog.Default()
	if o.catalogFile != "" {
		if cat, err = catalogFromFile(cat, o.catalogFile); err != nil {
			return err
		}
	}
	replica, err := simulator.CatalogReplicaType(cat, o.instanceType)
	if err != nil {
		return err
	}
	workloads, err := simulator.DLRMWorkloads(o.trace, o.step)
	if err != nil {
		return fmt.Errorf("reading trace: %w", err)
	}
	if len(o.apps) > 0 {
		workloads = slices.DeleteFunc(workloads, func(w simulator.AutoscaleWorkload) bool { return !slices.Contains(o.apps, w.Name) })
		if len(workloads) != len(o.apps) {
			return fmt.Errorf("--apps: found %d of %d apps with GPU instances in %s", len(workloads), len(o.apps), o.trace)
		}
	}
	cfg := simulator.AutoscaleConfig{
		Step: o.step, Season: season, Lead: o.lead, Stabilization: o.stabilization, Warmup: warmup, History: history,
		Refit: refit, ReplicaTarget: o.replicaTarget, MinReplicas: o.minReplicas, Replica: replica, Workers: o.workers,
	}
	if o.maxCostPerHour > 0 {
		cfg.MaxCostPerHour = &o.maxCostPerHour
	}
	if o.maxPowerWatts > 0 {
		cfg.MaxPowerWatts = &o.maxPowerWatts
	}
	totals, perWorkload, err := simulator.RunAutoscale(workloads, cfg)
	if err != nil {
		return err
	}
	results := totals
	if o.perWorkload {
		results = append(results, perWorkload...)
	}
	switch o.format {
	case "csv":
		return simulator.WriteAutoscaleCSV(out, results)
	case "json":
		return simulator.WriteAutoscaleJSON(out, results)
	}
	fmt.Fprintf(out, "trace %s: %d apps with GPU instances, %d steps of %s; first %s (%d steps) warm-up history, %d steps scored\n",
		filepath.Base(o.trace), len(workloads), len(workloads[0].Demand), o.step, o.warmup, warmup, totals[0].Steps)
	fmt.Fprintf(out, "season %s, lead %s, stabilization %s, history %s, refit %s; replica: %s, %.4g USD/h (%s), %.0f-%.0f W (idle-full)\n",
		o.season, o.lead, o.stabilization, o.history, o.refit, replica.InstanceType, replica.Economics.PricePerHour, replica.PriceSource,
		simulatorReplicaWatts(replica, 0), simulatorReplicaWatts(replica, 1))
	return simulator.WriteAutoscaleTable(out, results)
}

func simulatorReplicaWatts(r simulator.ReplicaType, utilization float64) float64 {
	return model.ReplicaPower(&r.Economics, r.Devices, utilization)
}
