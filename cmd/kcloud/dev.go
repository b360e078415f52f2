package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kcloud.io/optimizer/config"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/install"
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

type devOptions struct {
	stateDir, binDir, profile, scheduler, operator string
	operatorArgs                                   []string
	webhooks                                       bool
	apiserverPort                                  int
}

func (o *devOptions) addFlags(cmd *cobra.Command, withUp bool) {
	cmd.Flags().StringVar(&o.stateDir, "state-dir", envOr("KCLOUD_DEV_DIR", ".dev/cluster"), "directory holding the local cluster's certificates, kubeconfig, etcd data, logs and state ($KCLOUD_DEV_DIR)")
	if withUp {
		cmd.Flags().StringVar(&o.binDir, "bin-dir", envOr("KCLOUD_BIN_DIR", "bin/controlplane/current"), "directory with etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok ($KCLOUD_BIN_DIR; `make controlplane` builds them)")
		cmd.Flags().StringVar(&o.profile, "profile", "default", "fleet profile: default (20 mixed accelerator nodes and a 2-node system pool, running the DaemonSets and kube-system Deployments of a production GPU cluster), bare (the same 20 nodes, nothing running on them), openb (the 1,523-node Alibaba openb cluster) or gpu1000 (its first 1,000 GPU nodes); all but default are bare")
		cmd.Flags().IntVar(&o.apiserverPort, "apiserver-port", 0, "kube-apiserver port on 127.0.0.1 (0 picks a free one)")
		cmd.Flags().StringVar(&o.operator, "operator", "bin/kcloud-operator", "kcloud-operator binary to run against the cluster when it exists (`make build` builds it); empty: none")
		cmd.Flags().BoolVar(&o.webhooks, "webhooks", true, "install the admission webhooks, served by the operator on loopback with certificates it manages")
		cmd.Flags().StringArrayVar(&o.operatorArgs, "operator-arg", nil, "a flag for kcloud-operator, e.g. --operator-arg=--accounting-interval=10s (repeatable)")
		cmd.Flags().StringVar(&o.scheduler, "scheduler", "bin/kcloud-scheduler", "kcloud-scheduler binary to run beside the default scheduler when it exists (`make build` builds it); empty: none")
	}
}

func newDevCommand() *cobra.Command {
	dev := &cobra.Command{Use: "dev", Short: "A local Kubernetes cluster with a simulated GPU/NPU fleet (etcd, kube-apiserver, controllers, kwok)"}
	up := &devOptions{}
	upCmd := &cobra.Command{
		Use:   "up",
		Short: "Start the local cluster and its fleet, wait until every node is Ready, print the kubeconfig",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			_, err := devUp(ctx, cmd.OutOrStdout(), up)
			return err
		},
	}
	up.addFlags(upCmd, true)
	down := &devOptions{}
	downCmd := &cobra.Command{
		Use:   "down",
		Short: "Stop every process of the local cluster and remove its state directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := devcluster.Down(down.stateDir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stopped %d processes of the %s cluster and removed %s\n", len(s.Processes), s.Profile, down.stateDir)
			return nil
		},
	}
	down.addFlags(downCmd, false)
	status := &devOptions{}
	statusCmd := &cobra.Command{
		Use:   "status",
		Short: "Show the local cluster's processes and nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := devcluster.ReadState(status.stateDir)
			if err != nil {
				return fmt.Errorf("no local cluster in %s: %w", status.stateDir, err)
			}
			out := cmd.OutOrStdout()
			for _, p := range s.Processes {
				state := "running"
				if !devcluster.Alive(p.PID) {
					state = "EXITED (log: " + p.Log + ")"
				}
				fmt.Fprintf(out, "%-24s pid %-7d %s\n", p.Name, p.PID, state)
			}
			fmt.Fprintf(out, "export KUBECONFIG=%s\n", s.Kubeconfig)
			return nil
		},
	}
	status.addFlags(statusCmd, false)
	dev.AddCommand(upCmd, downCmd, statusCmd)
	return dev
}

func devUp(ctx context.Context, out io.Writer, o *devOptions) (*devcluster.Cluster, error) {
	start := time.Now()
	scheduler := o.scheduler
	if _, err := os.Stat(scheduler); scheduler != "" && err != nil {
		fmt.Fprintf(out, "no kcloud-scheduler at %s (make build): the local cluster runs the default scheduler only\n", scheduler)
		scheduler = ""
	}
	operator := o.operator
	if _, err := os.Stat(operator); operator != "" && err != nil {
		fmt.Fprintf(out, "no kcloud-operator at %s (make build): optimizers get no status\n", operator)
		operator = ""
	}
	c, err := devcluster.Up(ctx, devcluster.Options{
		// The operator prices with the catalog ConfigMap the scheduler's configuration names; a flag
		// given with --operator-arg comes later and wins.
		Operator: operator, OperatorArgs: append([]string{"--catalog-configmap=" + config.CatalogConfigMap}, o.operatorArgs...), Webhooks: o.webhooks && operator != "",
		StateDir: o.stateDir, BinDir: o.binDir, Profile: o.profile, APIServerPort: o.apiserverPort,
		Scheduler: scheduler, SchedulerConfig: config.SchedulerConfig,
		Install: func(ctx context.Context, cfg *rest.Config) error {
			a, err := install.NewApplier(cfg)
			if err != nil {
				return err
			}
			names, err := a.CRDs(ctx)
			if err == nil {
				fmt.Fprintf(out, "[%5.1fs] installed CRDs: %s\n", time.Since(start).Seconds(), strings.Join(names, ", "))
			}
			return err
		},
		Log: func(format string, args ...any) {
			fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
		},
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "[%5.1fs] %d nodes Ready\n", time.Since(start).Seconds(), c.Nodes)
	if c.Nodes <= 50 {
		if err := printFleet(ctx, out, c); err != nil {
			return c, err
		}
	}
	fmt.Fprintf(out, "\nexport KUBECONFIG=%s\nstop it with: kcloud dev down --state-dir %s\n", c.Kubeconfig, o.stateDir)
	return c, nil
}

// printFleet lists the nodes with their accelerators and what the catalog says they cost and draw.
func printFleet(ctx context.Context, out io.Writer, c *devcluster.Cluster) error {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	nodes := list.Items
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	cat := catalog.Default()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREADY\tACCELERATORS\tCAPACITY\tREGION\tUSD/H\tIDLE W\tgCO2/kWh")
	for i := range nodes {
		n := &nodes[i]
		facts, err := catalog.FactsFromNode(n)
		if err != nil {
			return err
		}
		e, err := cat.Economics(facts)
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		acc := "-"
		if facts.AcceleratorModel != "" {
			acc = fmt.Sprintf("%d x %s", facts.AcceleratorCount, facts.AcceleratorModel)
		}
		idle := e.HostIdleWatts + float64(facts.AcceleratorCount)*e.Device.WattsAt(0)
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\t%.2f\t%.0f\t%.0f\n", n.Name, devcluster.NodeReady(n), acc, facts.CapacityType, facts.Region, e.PricePerHour, idle, e.CarbonIntensity)
	}
	return tw.Flush()
}
