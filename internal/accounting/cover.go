// Package accounting is what the CostPolicy and PowerPolicy controllers and the WorkloadOptimizer's
// budget step share: adding up the pods a policy covers (Cover), resuming a ledger from status
// (ResumeLedger), and setting a policy's conditions with events for those that turn true
// (PolicyConditions).
package accounting

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/pkg/kube"
)

// Covered is what a policy's pods add up to: now, and over an accounting window.
type Covered struct {
	Pods        int32   // running now
	CostPerHour float64 // USD/h now
	PowerWatts  float64 // W now
	// Over the window [from, now): money, energy and emissions of every pod that ran in it.
	SpendUSD  float64
	EnergyKWh float64
	CarbonKg  float64
	// AboveCarbon lists running pods on nodes whose grid is dirtier than a carbon limit.
	AboveCarbon []string
	// Unpriced and Unpowered list the covered pods ("namespace/name on node: why") whose node has no
	// price, or no power figure: the sums above leave their cost, or their accelerators' draw, out.
	Unpriced, Unpowered []string
	// BadSelector is why the target's selector does not parse: the sums then cover every pod its
	// valid requirements match (kube.CoverMatcher), a superset of what was meant.
	BadSelector error
	// Departed lists the covered pods on deleted nodes, charged at the node's last known figures.
	Departed []string
	// HeldUntil is the latest end of the deleted pods the accounting finalizer holds: until the
	// ledger has accounted past it, one of them waits to go.
	HeldUntil time.Time
}

// Cover adds up the pods a policy target covers. Pods that ran within [from, now) are charged their
// node's figures for the time they ran in it; maxCarbon (gCO2/kWh, 0 for none) flags pods on dirtier
// grids.
func Cover(ctx context.Context, f *cluster.Fleet, target kcloudv1alpha1.PolicyTarget, from, now time.Time, maxCarbon float64) (Covered, error) {
	covers, badSelector := kube.CoverMatcher(target)
	measured := f.Readings(ctx)
	c := Covered{BadSelector: badSelector}
	var firstErr error
	add := func(pod *corev1.Pod) {
		if !cluster.Ran(pod) || !covers(pod) {
			return
		}
		fig, err := f.PodFigures(ctx, pod, measured)
		switch {
		case errors.Is(err, cluster.ErrNotSynced):
			firstErr = err // nothing is accounted from half a cache
			return
		case err != nil:
			// The node's figures cannot be worked out (its facts do not read): shown, not dropped.
			fig = cluster.Figures{Node: pod.Spec.NodeName, Running: cluster.RunInterval(pod), Unpriced: err.Error(), Unpowered: err.Error()}
		}
		if fig.Departed != "" {
			c.Departed = append(c.Departed, fmt.Sprintf("%s/%s: %s", pod.Namespace, pod.Name, fig.Departed))
		}
		if fig.Unpriced != "" {
			c.Unpriced = append(c.Unpriced, fmt.Sprintf("%s/%s on %s: %s", pod.Namespace, pod.Name, fig.Node, fig.Unpriced))
		}
		if fig.Unpowered != "" {
			c.Unpowered = append(c.Unpowered, fmt.Sprintf("%s/%s on %s: %s", pod.Namespace, pod.Name, fig.Node, fig.Unpowered))
		}
		if Held(pod) && fig.Running.End.After(c.HeldUntil) {
			c.HeldUntil = fig.Running.End
		}
		hours := fig.Running.HoursWithin(from, now)
		kwh := fig.PowerWatts * hours / 1000
		c.SpendUSD += fig.CostPerHour * hours
		c.EnergyKWh += kwh
		c.CarbonKg += kwh * fig.CarbonPerKWh / 1000
		if cluster.Running(pod) && !cluster.Deleting(pod) {
			c.Pods++
			c.CostPerHour += fig.CostPerHour
			c.PowerWatts += fig.PowerWatts
			if maxCarbon > 0 && fig.CarbonPerKWh > maxCarbon {
				c.AboveCarbon = append(c.AboveCarbon, fmt.Sprintf("%s/%s on %s (%.0f gCO2/kWh)", pod.Namespace, pod.Name, fig.Node, fig.CarbonPerKWh))
			}
		}
	}
	// The pods are the cache's, read and never modified: a cluster-wide policy covers every pod.
	namespaces := target.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	for _, ns := range namespaces {
		if err := f.EachPod(ctx, ns, add); err != nil {
			return Covered{}, err
		}
	}
	if firstErr != nil {
		return Covered{}, firstErr
	}
	return c, nil
}

// NextAccounting is how long to wait before the next accounting: the interval, or less when the
// latest end of the held pods (heldUntil) will be behind the settle delay sooner (then they can go).
func NextAccounting(heldUntil, accountedUntil, now time.Time, settle, interval time.Duration) time.Duration {
	if !heldUntil.After(accountedUntil) {
		return interval
	}
	// The accounting that covers HeldUntil runs once now-settle, truncated to the second, reaches it.
	wait := heldUntil.Add(settle + time.Second).Sub(now)
	if wait <= 0 {
		wait = 100 * time.Millisecond
	}
	return min(wait, interval)
}
