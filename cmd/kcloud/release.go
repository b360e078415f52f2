package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
)

// newReleaseHeldCommand releases deleted pods that the accounting finalizer has held for longer
// than an administrator will wait, when the operator cannot (both replicas down).
func newReleaseHeldCommand() *cobra.Command {
	var kubeconfig string
	var olderThan time.Duration
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "release-held",
		Short: "Remove the kcloud.io/accounting finalizer from pods deleted longer ago than --older-than",
		Long: `The operator keeps a deleted pod that a CostPolicy, PowerPolicy or optimizer budget charges until
its ledgers have accounted the pod's run to its deletion, then removes the kcloud.io/accounting
finalizer, within one accounting interval. While no operator replica runs, such pods stay
Terminating. release-held lets them go: the time they ran since the ledgers' last accounting is
then not charged (each released pod is printed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
				&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig, Precedence: clientcmd.NewDefaultClientConfigLoadingRules().Precedence},
				&clientcmd.ConfigOverrides{}).ClientConfig()
			if err != nil {
				return fmt.Errorf("reading the kubeconfig: %w", err)
			}
			c, err := newKcloudClient(cfg)
			if err != nil {
				return err
			}
			n, err := releaseHeld(cmd.Context(), c, time.Now().Add(-olderThan), dryRun, func(format string, a ...any) {
				fmt.Fprintf(cmd.OutOrStdout(), format+"\n", a...)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d pod(s) released\n", n)
			return nil
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster ($KUBECONFIG, else ~/.kube/config)")
	cmd.Flags().DurationVar(&olderThan, "older-than", 10*time.Minute, "release only pods deleted at least this long ago")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be released, change nothing")
	return cmd
}

// releaseHeld removes the accounting finalizer from pods deleted before cutoff, and counts them.
func releaseHeld(ctx context.Context, c client.Client, cutoff time.Time, dryRun bool, say func(string, ...any)) (int, error) {
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods); err != nil {
		return 0, fmt.Errorf("listing pods: %w", err)
	}
	n := 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp == nil || !p.DeletionTimestamp.Time.Before(cutoff) || !controllerutil.ContainsFinalizer(p, kcloudv1alpha1.FinalizerAccounting) {
			continue
		}
		say("released %s/%s (deleted at %s): its time since its ledgers' last accounting is not charged", p.Namespace, p.Name, p.DeletionTimestamp.UTC().Format(time.RFC3339))
		n++
		if dryRun {
			continue
		}
		before := p.DeepCopy()
		controllerutil.RemoveFinalizer(p, kcloudv1alpha1.FinalizerAccounting)
		if err := c.Patch(ctx, p, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
			return n, fmt.Errorf("pod %s/%s: removing finalizer %s: %w", p.Namespace, p.Name, kcloudv1alpha1.FinalizerAccounting, err)
		}
	}
	return n, nil
}
