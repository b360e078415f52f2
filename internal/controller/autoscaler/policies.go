package autoscaler

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// policyLimit is a limit that a CostPolicy covering the target's pods sets, with what priority
// changes in it when the policy's enforcement is scale-down (model.ScaleDownShares: the USD/h of the
// placed pods under it that rank below the target's and of the pending ones that rank above; both 0
// in other modes).
type policyLimit struct {
	kube.PodLimit
	yielding, waiting float64
}

// enforcingLimits are the limits that the CostPolicies covering the target's pods set, as the
// shared translation layer works them out (kube.Policies.For); the target's pods are judged by the
// first one, or by a pod of its template when none exists, and there are none when neither can be
// read. replicaLimits keeps those that enforce.
func (r *Reconciler) enforcingLimits(ctx context.Context, st *state) ([]policyLimit, error) {
	probe := r.probePod(ctx, st)
	if probe == nil {
		return nil, nil
	}
	policies := &kcloudv1alpha1.CostPolicyList{}
	if err := r.Client.List(ctx, policies); err != nil {
		return nil, fmt.Errorf("listing CostPolicies: %w", err)
	}
	limits := kube.PoliciesOf(policies.Items, nil).For(probe, nil).Limits
	out := make([]policyLimit, len(limits))
	var shared []int // the scale-down limits that other pods share
	for i, pl := range limits {
		out[i].PodLimit = pl
		if pl.CostPolicy != nil && pl.Enforcement == kcloudv1alpha1.EnforcementScaleDown && pl.Shares != nil {
			shared = append(shared, i)
		}
	}
	if len(shared) == 0 {
		return out, nil
	}
	// The target's rank: its optimizer's spec.priority (a template pod has no annotation yet) and
	// its pods' PriorityClass value.
	rank := kube.PodRank(probe)
	rank.Optimizer = kube.SpecPriority(st.wo)
	rivals, err := r.rivals(ctx, st, rank, limits, shared)
	if err != nil {
		return nil, err
	}
	for _, i := range shared {
		out[i].yielding, out[i].waiting = model.ScaleDownShares(rank, rivals[i])
	}
	return out, nil
}

// rivals are, for each shared limit, the other live pods under it that priority sets apart from the
// target's (placed ones that rank lower, pending ones that rank higher), priced: a placed pod at its
// node's figures; a pending one as its controller's costliest placed pod, or else the cheapest node
// that could hold it (what the autoscaler prices its own replicas at). A pod that cannot be priced
// counts for nothing, as under the policy's status; the log says which.
func (r *Reconciler) rivals(ctx context.Context, st *state, rank model.Rank, limits []kube.PodLimit, shared []int) (map[int][]model.Rival, error) {
	ours := make(map[types.UID]bool, len(st.pods))
	for _, p := range st.pods {
		ours[p.UID] = true
	}
	type waiter struct {
		limits []int
		pod    *corev1.Pod
	}
	out := map[int][]model.Rival{}
	var waiters []waiter
	owners := map[types.UID]float64{}    // a pending rival's controller: its costliest placed pod so far
	ownerNamespaces := map[string]bool{} // where those controllers' pods are (a controller's own namespace)
	err := r.Fleet.EachPod(ctx, "", func(p *corev1.Pod) {
		if ours[p.UID] || !p.DeletionTimestamp.IsZero() || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			return
		}
		var under []int
		for _, i := range shared {
			if limits[i].Shares(p) {
				under = append(under, i)
			}
		}
		if len(under) == 0 {
			return
		}
		podRank := kube.PodRank(p)
		c := model.CompareRank(podRank, rank)
		switch placed := p.Spec.NodeName != ""; {
		case placed && c < 0:
			fig, err := r.Fleet.PodFigures(ctx, p, nil)
			if err != nil {
				log.FromContext(ctx).Error(err, "Pricing a lower-ranked pod under a scale-down CostPolicy", "workloadOptimizer", klog.KObj(st.wo), "pod", klog.KObj(p))
				return
			}
			for _, i := range under {
				out[i] = append(out[i], model.Rival{Rank: podRank, CostPerHour: fig.CostPerHour, Placed: true})
			}
		case !placed && c > 0:
			waiters = append(waiters, waiter{under, p.DeepCopy()})
			if ref := metav1.GetControllerOf(p); ref != nil {
				owners[ref.UID] = 0
				ownerNamespaces[p.Namespace] = true
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("listing the pods under scale-down CostPolicies: %w", err)
	}
	if len(waiters) == 0 {
		return out, nil
	}
	for ns := range ownerNamespaces {
		if err := r.Fleet.EachPod(ctx, ns, func(p *corev1.Pod) {
			ref := metav1.GetControllerOf(p)
			if ref == nil || p.Spec.NodeName == "" {
				return
			}
			if _, ok := owners[ref.UID]; !ok {
				return
			}
			if fig, err := r.Fleet.PodFigures(ctx, p, nil); err == nil {
				owners[ref.UID] = max(owners[ref.UID], fig.CostPerHour)
			}
		}); err != nil {
			return nil, fmt.Errorf("listing the placed siblings of pending pods in %s: %w", ns, err)
		}
	}
	for _, w := range waiters {
		cost := 0.0
		if ref := metav1.GetControllerOf(w.pod); ref != nil {
			cost = owners[ref.UID]
		}
		if cost == 0 {
			t, ok, err := r.Fleet.Cheapest(ctx, w.pod)
			if err != nil || !ok {
				log.FromContext(ctx).Info("A pending higher-ranked pod under a scale-down CostPolicy cannot be priced: it claims no room",
					"workloadOptimizer", klog.KObj(st.wo), "pod", klog.KObj(w.pod), "error", err)
				continue
			}
			cost = t.CostPerHour
		}
		for _, i := range w.limits {
			out[i] = append(out[i], model.Rival{Rank: kube.PodRank(w.pod), CostPerHour: cost})
		}
	}
	return out, nil
}

// probePod is the pod that stands for the target's replicas: its first pod, or a pod of its
// template when none exists (nil when that cannot be read).
func (r *Reconciler) probePod(ctx context.Context, st *state) *corev1.Pod {
	if len(st.pods) > 0 {
		return st.pods[0]
	}
	if p, err := r.templatePod(ctx, st); err == nil {
		return p
	}
	return nil
}
