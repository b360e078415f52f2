package rebalancer

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// world is what one run decides on: the snapshot with reservations held, the candidates, and for
// each candidate its pod and optimizer.
type world struct {
	snap  *cluster.Snapshot
	in    model.RebalanceInput
	pods  []*corev1.Pod // in the order of in.Pods
	wos   []*kcloudv1alpha1.WorkloadOptimizer
	byKey map[types.NamespacedName]*kcloudv1alpha1.WorkloadOptimizer
	// skipped counts pods not considered, by reason.
	skipped map[string]int
}

// build reads the cluster: optimizers, pods, policies and a snapshot of the nodes in which the
// rooms reserved for earlier moves are held.
func (r *Rebalancer) build(ctx context.Context, pods []corev1.Pod) (*world, error) {
	wos := &kcloudv1alpha1.WorkloadOptimizerList{}
	if err := r.Client.List(ctx, wos); err != nil {
		return nil, fmt.Errorf("listing WorkloadOptimizers: %w", err)
	}
	costPolicies := &kcloudv1alpha1.CostPolicyList{}
	if err := r.Client.List(ctx, costPolicies); err != nil {
		return nil, fmt.Errorf("listing CostPolicies: %w", err)
	}
	powerPolicies := &kcloudv1alpha1.PowerPolicyList{}
	if err := r.Client.List(ctx, powerPolicies); err != nil {
		return nil, fmt.Errorf("listing PowerPolicies: %w", err)
	}
	w := &world{byKey: map[types.NamespacedName]*kcloudv1alpha1.WorkloadOptimizer{}, skipped: map[string]int{}}
	for i := range wos.Items {
		wo := &wos.Items[i]
		w.byKey[types.NamespacedName{Namespace: wo.Namespace, Name: wo.Name}] = wo
	}
	running := make([]*corev1.Pod, 0, len(pods))
	for i := range pods {
		if cluster.Running(&pods[i]) {
			running = append(running, &pods[i])
		}
	}
	snap, err := r.Fleet.SnapshotFor(ctx, running)
	if err != nil {
		return nil, fmt.Errorf("reading the fleet: %w", err)
	}
	w.snap = snap
	w.in = model.RebalanceInput{Nodes: make([]model.Node, len(snap.Nodes)), Econ: snap.Econ}
	copy(w.in.Nodes, snap.Nodes)
	r.holdReservations(w, running)

	limits := newLimitSet(snap, running, kube.PoliciesOf(costPolicies.Items, powerPolicies.Items))
	for _, pod := range running {
		wo := w.byKey[types.NamespacedName{Namespace: pod.Namespace, Name: pod.Labels[kube.LabelOptimizer]}]
		if pod.Labels[kube.LabelOptimizer] == "" {
			wo = nil
		}
		if ok, why := Eligible(pod, wo); !ok {
			if wo != nil {
				w.skipped[why]++
			}
			continue
		}
		where, counted := snap.Placed[pod.UID]
		if !counted {
			w.skipped["its node is not schedulable, ready and priced"]++
			continue
		}
		pp := limits.policies.For(pod, wo)
		rule := kube.NewRule(pod, pp.Spot)
		w.in.Pods = append(w.in.Pods, model.RebalanceCandidate{
			Placed:    model.Placed{Pod: kube.PodRequest(pod), Node: where.Node, Device: where.Device},
			Namespace: pod.Namespace,
			Limits:    limits.covering(&pp),
			Allowed:   func(j int) bool { return rule.Allows(snap.Objs[j], snap.Econ[j]) },
			Rank:      kube.PodRank(pod),
		})
		w.pods = append(w.pods, pod)
		w.wos = append(w.wos, wo)
	}
	w.in.Limits = limits.limits
	return w, nil
}

// holdReservations counts the room still reserved for earlier moves as taken.
func (r *Rebalancer) holdReservations(w *world, running []*corev1.Pod) {
	now := r.Clock.Now()
	var byNode map[string][]*corev1.Pod
	for j, obj := range w.snap.Objs {
		if !kube.HasReservations(obj) {
			continue
		}
		if byNode == nil {
			byNode = podsByNode(running)
		}
		active, _ := kube.ActiveReservations(kube.NodeReservations(obj), byNode[obj.Name], now)
		kube.Hold(&w.in.Nodes[j], active, nil)
	}
}

func podsByNode(pods []*corev1.Pod) map[string][]*corev1.Pod {
	out := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p)
		}
	}
	return out
}

// limitSet is the hard limits the scheduler will check when it places a replacement (kube.Policies:
// each optimizer's caps over its pods, and the caps, budgets and carbon limits of the CostPolicies
// and PowerPolicies that enforce), each once however many pods share it, with what its pods use now.
type limitSet struct {
	policies *kube.Policies
	limits   []model.Limit
	index    map[string]int // kube.PodLimit.ID -> index in limits
	charges  []charge
}

// charge is what a running pod is charged where it runs, as the scheduler counts usage.
type charge struct {
	pod         *corev1.Pod
	cost, power float64
}

func newLimitSet(snap *cluster.Snapshot, running []*corev1.Pod, policies *kube.Policies) *limitSet {
	ls := &limitSet{policies: policies, index: map[string]int{}}
	for _, pod := range running {
		where, ok := snap.Placed[pod.UID]
		if !ok {
			continue
		}
		p, n, e := kube.PodRequest(pod), snap.Nodes[where.Node], snap.Econ[where.Node]
		ls.charges = append(ls.charges, charge{pod, model.AttributedCost(&p, &n, e), model.AttributedPower(&p, &n, e)})
	}
	return ls
}

// used sums what the pods sharing a limit are charged now.
func (ls *limitSet) used(shares func(*corev1.Pod) bool, kind model.LimitKind) float64 {
	total := 0.0
	for _, c := range ls.charges {
		if shares(c.pod) {
			total += model.LimitRate(kind, c.cost, c.power)
		}
	}
	return total
}

// covering lists the limits of a pod's policy (ls.policies.For), adding those not seen yet.
func (ls *limitSet) covering(pp *kube.PodPolicy) []int {
	out := make([]int, 0, len(pp.Limits))
	for i := range pp.Limits {
		pl := &pp.Limits[i]
		j, seen := ls.index[pl.ID]
		if !seen {
			l := pl.Limit
			if pl.Shares != nil {
				l.Used = ls.used(pl.Shares, l.Kind)
			}
			j = len(ls.limits)
			ls.limits = append(ls.limits, l)
			ls.index[pl.ID] = j
		}
		out = append(out, j)
	}
	return out
}

// listPods reads every pod from the cache, not copied: the run only reads them.
func (r *Rebalancer) listPods(ctx context.Context) ([]corev1.Pod, error) {
	list := &corev1.PodList{}
	if err := r.Client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	return list.Items, nil
}
