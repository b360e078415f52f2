package fleet

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
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
}

// Cover adds up the pods a policy target covers. Pods that ran within [from, now) are charged their
// node's figures for the time they ran in it; maxCarbon (gCO2/kWh, 0 for none) flags pods on dirtier
// grids.
func (f *Fleet) Cover(ctx context.Context, target kcloudv1alpha1.PolicyTarget, from, now time.Time, maxCarbon float64) (Covered, error) {
	// The pods are read, never modified: not copied out of the cache (a cluster-wide policy
	// covers every pod).
	var pods []corev1.Pod
	if len(target.Namespaces) == 0 {
		list := &corev1.PodList{}
		if err := f.reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
			return Covered{}, fmt.Errorf("listing pods: %w", err)
		}
		pods = list.Items
	} else {
		for _, ns := range target.Namespaces {
			list := &corev1.PodList{}
			if err := f.reader.List(ctx, list, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
				return Covered{}, fmt.Errorf("listing pods in %s: %w", ns, err)
			}
			pods = append(pods, list.Items...)
		}
	}
	measured := f.Readings(ctx)
	var c Covered
	for i := range pods {
		pod := &pods[i]
		if !Ran(pod) || !kube.Covers(target, pod) {
			continue
		}
		fig, err := f.PodFigures(ctx, pod, measured)
		if err != nil {
			log.FromContext(ctx).Error(err, "Pricing covered pod")
			continue
		}
		hours := fig.Running.HoursWithin(from, now)
		kwh := fig.PowerWatts * hours / 1000
		c.SpendUSD += fig.CostPerHour * hours
		c.EnergyKWh += kwh
		c.CarbonKg += kwh * fig.CarbonPerKWh / 1000
		if Running(pod) {
			c.Pods++
			c.CostPerHour += fig.CostPerHour
			c.PowerWatts += fig.PowerWatts
			if maxCarbon > 0 && fig.CarbonPerKWh > maxCarbon {
				c.AboveCarbon = append(c.AboveCarbon, fmt.Sprintf("%s/%s on %s (%.0f gCO2/kWh)", pod.Namespace, pod.Name, fig.Node, fig.CarbonPerKWh))
			}
		}
	}
	return c, nil
}

// Period returns the model period of a budget period, month when unset.
func Period(p kcloudv1alpha1.BudgetPeriod) model.Period {
	if p == "" {
		return model.PeriodMonth
	}
	return model.Period(p)
}
