package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/config"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/install"
	"kcloud.io/optimizer/pkg/kube"
)

type runOptions struct {
	devOptions
	kubeconfig string
	// existingCluster allows a cluster kcloud dev up did not start.
	existingCluster bool
}

func newRunCommand() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Bring the product up: on your cluster, or on a local one it starts; install the CRDs, apply the spec's examples, report",
		Long: `Bring the product up and show what it does.

With --kubeconfig (or $KUBECONFIG) it works on that cluster. Otherwise it starts the local cluster
(` + "`kcloud dev up`" + `), or reuses the one already running in --state-dir. Then it installs the CRDs, applies
the product description's WorkloadOptimizer examples (creating their namespaces) and prints the
nodes and the optimizers.

A cluster that kcloud dev up did not start (it has no ConfigMap kube-public/kcloud-local-cluster)
is refused unless --existing-cluster is given; there the examples' enforcing policies (the deny-mode
CostPolicy, which would refuse pods of two namespaces) are left out. On the local cluster kcloud-scheduler runs beside the default scheduler
when bin/kcloud-scheduler exists, and kcloud-operator, which fills the optimizers' status, when
bin/kcloud-operator exists (make build). On another cluster the operator is installed with the Helm
chart or make deploy (docs/DEPLOYMENT_GUIDE.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			return o.run(ctx, cmd.OutOrStdout())
		},
	}
	o.addFlags(cmd, true)
	cmd.Flags().StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "work on the cluster of this kubeconfig instead of a local one ($KUBECONFIG)")
	cmd.Flags().BoolVar(&o.existingCluster, "existing-cluster", false, "allow a cluster that kcloud dev up did not start: install the CRDs and the examples there, less their enforcing policies")
	return cmd
}

func (o *runOptions) run(ctx context.Context, out io.Writer) error {
	start := time.Now()
	step := func(format string, args ...any) {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	var cfg *rest.Config
	var err error
	started := false // a cluster started here already has the CRDs (devUp installs them)
	local := true    // started by kcloud dev up, now or before
	switch {
	case o.kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", o.kubeconfig)
		if err != nil {
			return fmt.Errorf("reading kubeconfig %s: %w", o.kubeconfig, err)
		}
		if local, err = o.checkCluster(ctx, cfg); err != nil {
			return err
		}
		step("using the cluster of %s (%s)", o.kubeconfig, cfg.Host)
	default:
		if s, serr := devcluster.ReadState(o.stateDir); serr == nil && allAlive(s) {
			step("reusing the local cluster in %s", o.stateDir)
			cfg, err = clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
		} else {
			c, uerr := devUp(ctx, out, &o.devOptions)
			if uerr != nil {
				return uerr
			}
			cfg, started = c.Config, true
		}
	}
	if err != nil {
		return err
	}
	a, err := install.NewApplier(cfg)
	if err != nil {
		return err
	}
	if !started {
		names, err := a.CRDs(ctx)
		if err != nil {
			return err
		}
		step("installed CRDs: %s", strings.Join(names, ", "))
	}
	samples, err := install.Objects(config.Samples, "samples/*.yaml")
	if err != nil {
		return err
	}
	applied := 0
	for _, s := range samples {
		if !local && enforcingPolicy(s) {
			step("left out %s %s: its enforcement %q would act on pods of a cluster kcloud did not start", s.GetKind(), s.GetName(), enforcementOf(s))
			continue
		}
		applied++
		if ns := s.GetNamespace(); ns != "" {
			if err := a.EnsureNamespace(ctx, ns); err != nil {
				return err
			}
		}
		if err := a.Apply(ctx, s, "default"); err != nil {
			return err
		}
	}
	step("applied %d of %d examples (the product description's 3 WorkloadOptimizers, a CostPolicy, a PowerPolicy)", applied, len(samples))
	return report(ctx, out, cfg)
}

// checkCluster tells whether the cluster of cfg is the local one, and refuses another unless
// --existing-cluster allows it.
func (o *runOptions) checkCluster(ctx context.Context, cfg *rest.Config) (bool, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false, err
	}
	local, err := devcluster.IsLocal(ctx, cs)
	if err != nil {
		return false, fmt.Errorf("telling whether %s is the local cluster: %w", cfg.Host, err)
	}
	if !local && !o.existingCluster {
		return false, fmt.Errorf("the cluster of %s (%s) was not started by `kcloud dev up` (no ConfigMap %s/%s): "+
			"kcloud run would install the kcloud.io CRDs and example objects there; pass --existing-cluster to do so "+
			"(the examples' enforcing policies are left out), or unset KUBECONFIG and --kubeconfig to use a local cluster",
			o.kubeconfig, cfg.Host, devcluster.MarkerNamespace, devcluster.MarkerName)
	}
	return local, nil
}

// enforcingPolicy tells whether an example is a CostPolicy or PowerPolicy that acts on pods (any
// enforcement but warn, which is also the API's default).
func enforcingPolicy(u *unstructured.Unstructured) bool {
	if u.GetKind() != "CostPolicy" && u.GetKind() != "PowerPolicy" {
		return false
	}
	return kube.Enforces(kcloudv1alpha1.EnforcementMode(enforcementOf(u)))
}

func enforcementOf(u *unstructured.Unstructured) string {
	m, _, _ := unstructured.NestedString(u.Object, "spec", "enforcement")
	return m
}

func allAlive(s *devcluster.State) bool {
	for _, p := range s.Processes {
		if !devcluster.Alive(p.PID) {
			return false
		}
	}
	return len(s.Processes) > 0
}

// report prints the cluster's accelerator nodes and the optimizers with their status.
func report(ctx context.Context, out io.Writer, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	ready := 0
	for i := range nodes.Items {
		if devcluster.NodeReady(&nodes.Items[i]) {
			ready++
		}
	}
	fmt.Fprintf(out, "\nnodes: %d, Ready: %d\n\n", len(nodes.Items), ready)
	c, err := newKcloudClient(cfg)
	if err != nil {
		return err
	}
	var list kcloudv1alpha1.WorkloadOptimizerList
	if err := c.List(ctx, &list); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tTYPE\tPHASE\tCOST/H\tPOWER W\tNODE\tSCORE")
	for _, wo := range list.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%.0f\t%s\t%.2f\n", wo.Namespace, wo.Name, wo.Spec.WorkloadType, orDash(string(wo.Status.Phase)),
			wo.Status.CurrentCost, wo.Status.CurrentPower, orDash(wo.Status.AssignedNode), wo.Status.OptimizationScore)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nkcloud-operator fills PHASE, COST/H, POWER, NODE and SCORE; \"-\" means it has not evaluated the optimizer yet (or is not installed).")
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
