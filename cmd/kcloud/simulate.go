package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/simulator"
	"kcloud.io/optimizer/pkg/traces"
)

type simulateOptions struct {
	nodes, pods, mode, format, report, catalogFile string
	policies                                       []string
	seeds, workers                                 int
	fleetScale                                     float64
	daemons                                        bool
}

func newSimulateCommand() *cobra.Command {
	o := simulateOptions{}
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Replay a pod trace over a node list through every placement policy",
		Long: `Replay a pod trace over a node list through the product's placement policy and the baselines of the
FGD paper (USENIX ATC'23), with the same decision code the scheduler runs.

Modes:
  inflate  the paper's experiment: the trace's pods in a seeded order, then pods drawn from it until
           the requested GPU reaches 130% of capacity; no departures. Reports GPU allocation and
           fragmentation at 100% and 130% arrival, and the cost and power of the active nodes averaged
           over arrival 0-100% (a node without pods counts as scaled in).
  replay   the trace's own creation and deletion times; pods that fit nowhere wait. Reports node-hours,
           cost, energy, carbon, and pods that waited or never ran.

With no flags it runs the embedded Alibaba openb default trace on the openb GPU node list.`,
		Example: `  kcloud simulate --policies fgd,kcloud --seeds 10
  kcloud simulate --pods openb_pod_list_gpushare40.csv --format csv
  kcloud simulate --mode replay --pods alibaba_dlrm_inference_instances.csv --nodes embedded:dlrm_fleet.csv --report dlrm.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.OutOrStdout()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.nodes, "nodes", traces.OpenbGPUNodes, "node list CSV (sn,cpu_milli,memory_mib,gpu,model); embedded: "+strings.Join([]string{traces.OpenbGPUNodes, traces.OpenbAllNodes, traces.DLRMFleet}, ", "))
	f.StringVar(&o.pods, "pods", traces.OpenbDefaultPods, "pod list CSV (openb format, or the Alibaba DLRM instance trace)")
	f.StringVar(&o.mode, "mode", string(simulator.ModeInflate), "inflate or replay")
	f.StringSliceVar(&o.policies, "policies", simulator.PolicyNames, "policies to run: "+strings.Join(simulator.PolicyNames, ", "))
	f.IntVar(&o.seeds, "seeds", 10, "seeds per policy (42, 43, ...)")
	f.StringVar(&o.format, "format", "table", "output format: table, csv or json")
	f.StringVar(&o.report, "report", "", "also write a self-contained HTML report with charts to this file")
	f.Float64Var(&o.fleetScale, "fleet-scale", 1, "multiply the node list by this factor, keeping its mix of models (0.25 keeps a quarter)")
	f.IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "runs in parallel")
	f.BoolVar(&o.daemons, "daemons", false, "run on every node the DaemonSets of the production-like local fleet (kube-proxy, CNI, node-exporter, the vendor's device plugin and exporters) as the node's overhead: they take CPU and memory and never keep a node up")
	f.StringVar(&o.catalogFile, "catalog", "", "YAML or JSON file with the data of a catalog ConfigMap (prices.csv, devices.csv, carbon.csv, settings.csv) to override the embedded prices, power and carbon")
	return cmd
}

func (o *simulateOptions) run(out io.Writer) error {
	switch o.format {
	case "table", "csv", "json":
	default:
		return fmt.Errorf("--format %q: known formats are table, csv, json", o.format)
	}
	if o.fleetScale <= 0 || math.IsNaN(o.fleetScale) {
		return fmt.Errorf("--fleet-scale must be positive, got %v", o.fleetScale)
	}
	nodes, err := traces.ReadNodes(o.nodes)
	if err != nil {
		return fmt.Errorf("reading nodes: %w", err)
	}
	nodes = traces.ScaleFleet(nodes, o.fleetScale)
	pods, err := traces.ReadPods(o.pods)
	if err != nil {
		return fmt.Errorf("reading pods: %w", err)
	}
	cat := catalog.Default()
	if o.catalogFile != "" {
		if cat, err = catalogFromFile(cat, o.catalogFile); err != nil {
			return err
		}
	}
	cfg := simulator.Config{
		Nodes: nodes, Pods: pods, Mode: simulator.Mode(o.mode), Policies: o.policies, Seeds: o.seeds,
		Economics: simulator.CatalogEconomics(cat), Weights: model.DefaultWeights, Workers: o.workers,
	}
	if o.daemons {
		if cfg.Daemons, err = productionDaemons(nodes, cat); err != nil {
			return err
		}
	}
	results, err := simulator.Run(cfg)
	if err != nil {
		return err
	}
	gpus := 0
	for _, n := range nodes {
		gpus += n.GPUs
	}
	daemons := "bare nodes"
	if o.daemons {
		daemons = "production DaemonSets on every node"
	}
	subtitle := fmt.Sprintf("mode %s; pods %s (%d); nodes %s x%g (%d nodes, %d GPUs, %s); %d seeds from %d; prices, power and carbon from the embedded catalog",
		o.mode, filepath.Base(o.pods), len(pods), filepath.Base(o.nodes), o.fleetScale, len(nodes), gpus, daemons, o.seeds, simulator.FirstSeed)
	switch o.format {
	case "csv":
		err = simulator.WriteCSV(out, results)
	case "json":
		err = simulator.WriteJSON(out, results)
	default:
		fmt.Fprintln(out, subtitle)
		err = simulator.WriteTable(out, results)
	}
	if err != nil {
		return err
	}
	if o.report != "" {
		f, err := os.Create(o.report)
		if err != nil {
			return err
		}
		if err := simulator.WriteHTMLReport(f, "kcloud simulate: "+filepath.Base(o.pods), subtitle, results); err != nil {
			_ = f.Close() // the write's error is the one to report
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// productionDaemons is what the DaemonSets of the production-like local fleet (devcluster.DaemonPods)
// ask of each trace node, worked out once per node shape.
func productionDaemons(nodes []traces.Node, cat *catalog.Catalog) (simulator.DaemonsFunc, error) {
	type shape struct {
		model      string
		gpus       int
		cpus, gibs int64
	}
	byShape := map[shape][]model.Pod{}
	for _, n := range nodes {
		s := shape{n.Model, n.GPUs, n.CPUMilli / 1000, n.MemoryMiB / 1024}
		if _, ok := byShape[s]; ok {
			continue
		}
		pods, err := devcluster.DaemonPods(devcluster.NodeGroup{Model: n.Model, Accelerators: n.GPUs, CPUs: s.cpus, MemoryGiB: s.gibs}, cat)
		if err != nil {
			return nil, fmt.Errorf("--daemons: node %s: %w", n.Name, err)
		}
		reqs := make([]model.Pod, len(pods))
		for i, p := range pods {
			reqs[i] = kube.PodRequest(p)
		}
		byShape[s] = reqs
	}
	return func(n traces.Node) []model.Pod {
		return byShape[shape{n.Model, n.GPUs, n.CPUMilli / 1000, n.MemoryMiB / 1024}]
	}, nil
}
