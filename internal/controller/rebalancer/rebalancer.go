// Package rebalancer moves running pods to where they cost or draw less, when the saving beats
// the disruption. Every interval the leader plans moves with model.PlanRebalance on a snapshot of
// the fleet, confirms each destination against the API, reserves room there for the replacement
// (a kube.Reservation annotation that kcloud-scheduler honours), then evicts the pod through the
// Eviction API, so PodDisruptionBudgets hold: a refusal (429) is recorded and the run moves on.
// Evictions are capped per source node, per namespace and in total per run; a dry run only
// reports. Events on the pod and its WorkloadOptimizer carry the saving; status.rebalancing and
// metrics sum it up. See docs/designs/rebalancing.md.
package rebalancer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// Options configure the rebalancer (operator flags --rebalance-*).
type Options struct {
	// Interval between runs; 0 or less disables the rebalancer.
	Interval time.Duration
	// MinSavingUSDPerHour and MinSavingWatts are the net savings a move must reach (0: the
	// dimension is not a goal). Both 0: the cost threshold defaults to 0.10 USD/h.
	MinSavingUSDPerHour float64
	MinSavingWatts      float64
	// RestartTime is how long an evicted pod does no work: the disruption charged to a move.
	RestartTime time.Duration
	// Eviction caps per run: per source node, per namespace, in total; 0: no cap.
	MaxPerNode, MaxPerNamespace, MaxTotal int
	// DryRun reports the planned moves in events, logs, status and metrics, and evicts nothing.
	DryRun bool
	// ReservationTTL is how long room stays reserved for a replacement (default 5 minutes).
	ReservationTTL time.Duration
}

// Defaults of the operator flags.
const (
	DefaultInterval            = 10 * time.Minute
	DefaultMinSavingUSDPerHour = 0.10
	DefaultRestartTime         = 5 * time.Minute
	DefaultMaxPerNode          = 1
	DefaultMaxPerNamespace     = 2
	DefaultMaxTotal            = 10
	DefaultReservationTTL      = 5 * time.Minute
)

// Rebalancer is a leader-elected runnable of the operator's manager.
type Rebalancer struct {
	Client client.Client // the manager's cached client: lists, patches, evictions
	Reader client.Reader // uncached reads that confirm a destination just before reserving it
	// Fleet prices nodes; the rebalancer's own, so that every run plans on a fresh snapshot.
	Fleet *cluster.Fleet
	// Catalog is the operator's (watched) catalog; it is read at each use, so a run prices with
	// the catalog in force.
	Catalog  catalog.Provider
	Recorder events.EventRecorder
	Clock    clock.Clock
	Options
}

// NeedLeaderElection: only the leader evicts.
func (r *Rebalancer) NeedLeaderElection() bool { return true }

// Start runs the rebalancer every interval (measured from the end of a run) until ctx ends.
func (r *Rebalancer) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("rebalancer")
	ctx = log.IntoContext(ctx, logger)
	if r.Interval <= 0 {
		return nil
	}
	logger.Info("Rebalancing", "interval", r.Interval, "dryRun", r.DryRun, "minSavingUSDPerHour", r.MinSavingUSDPerHour,
		"minSavingWatts", r.MinSavingWatts, "restartTime", r.RestartTime, "maxPerNode", r.MaxPerNode,
		"maxPerNamespace", r.MaxPerNamespace, "maxTotal", r.MaxTotal)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.Clock.After(r.Interval):
		}
		if _, err := r.RunOnce(ctx); err != nil {
			logger.Error(err, "Rebalancing run failed; trying again next interval")
		}
	}
}

// Move is one pod the run chose to move, and what came of it.
type Move struct {
	Pod       types.NamespacedName
	Optimizer string
	From, To  string
	Outcome   string // kcloudv1alpha1.Move*
	Message   string
	// Saving is the move's share of its unit's saving (USD/h, W).
	Saving model.Totals
}

// Report is what one run did.
type Report struct {
	At       time.Time
	DryRun   bool
	Moves    []Move
	Deferred int
	Released int // reservations removed: expired or consumed
	Skipped  map[string]int
}

// Count returns the number of moves with an outcome.
func (rep Report) Count(outcome string) int {
	n := 0
	for _, m := range rep.Moves {
		if m.Outcome == outcome {
			n++
		}
	}
	return n
}

func (r *Rebalancer) config() model.RebalanceConfig {
	cfg := model.RebalanceConfig{MinSavingUSDPerHour: r.MinSavingUSDPerHour, MinSavingWatts: r.MinSavingWatts,
		RestartHours: r.RestartTime.Hours(), MaxPerNode: r.MaxPerNode, MaxPerNamespace: r.MaxPerNamespace, MaxTotal: r.MaxTotal}
	if cfg.MinSavingUSDPerHour <= 0 && cfg.MinSavingWatts <= 0 {
		cfg.MinSavingUSDPerHour = DefaultMinSavingUSDPerHour
	}
	return cfg
}

func (r *Rebalancer) ttl() time.Duration {
	if r.ReservationTTL <= 0 {
		return DefaultReservationTTL
	}
	return r.ReservationTTL
}

// RunOnce releases finished reservations, plans moves and carries them out (or, in a dry run,
// reports them). A run that fails counts in kcloud_rebalance_run_failures_total.
func (r *Rebalancer) RunOnce(ctx context.Context) (Report, error) {
	rep, err := r.runOnce(ctx)
	if err != nil {
		runFailures.Inc()
	}
	return rep, err
}

func (r *Rebalancer) runOnce(ctx context.Context) (Report, error) {
	logger := log.FromContext(ctx)
	rep := Report{At: r.Clock.Now(), DryRun: r.DryRun}
	pods, err := r.listPods(ctx)
	if err != nil {
		return rep, err
	}
	if rep.Released, err = r.release(ctx, pods); err != nil {
		return rep, err
	}
	w, err := r.build(ctx, pods)
	if err != nil {
		return rep, err
	}
	rep.Skipped = w.skipped
	plan := model.PlanRebalance(w.in, r.config())
	for _, u := range plan.Units {
		rep.Deferred += u.Deferred
		share := float64(len(u.Moves) + u.Deferred)
		saving := model.Totals{CostPerHour: u.Saving.CostPerHour / share, PowerWatts: u.Saving.PowerWatts / share}
		for _, m := range u.Moves {
			pod, wo := w.pods[m.Pod], w.wos[m.Pod]
			mv := Move{Pod: types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}, Optimizer: wo.Name,
				From: w.snap.Names[m.From], To: w.snap.Names[m.To], Saving: saving}
			if r.DryRun {
				mv.Outcome = kcloudv1alpha1.MovePlanned
			} else {
				mv.Outcome, mv.Message = r.move(ctx, rep.At, pod, wo, w.in.Pods[m.Pod].Pod, mv)
			}
			r.report(pod, wo, mv)
			rep.Moves = append(rep.Moves, mv)
		}
	}
	if err := r.writeStatus(ctx, w, rep); err != nil {
		return rep, err
	}
	observeRun(rep)
	logger.Info("Rebalanced", "dryRun", r.DryRun, "candidates", len(w.in.Pods), "planned", len(rep.Moves),
		"evicted", rep.Count(kcloudv1alpha1.MoveEvicted), "blocked", rep.Count(kcloudv1alpha1.MoveBlocked),
		"failed", rep.Count(kcloudv1alpha1.MoveFailed), "deferred", rep.Deferred, "released", rep.Released)
	return rep, nil
}

// move confirms the destination, reserves room there and evicts the pod; it returns the outcome
// and, when the move did not happen, why.
func (r *Rebalancer) move(ctx context.Context, run time.Time, pod *corev1.Pod, wo *kcloudv1alpha1.WorkloadOptimizer, req model.Pod, mv Move) (string, string) {
	logger := log.FromContext(ctx).WithValues("pod", klog.KObj(pod), "from", mv.From, "to", mv.To)
	if err := r.confirm(ctx, pod, req, mv); err != nil {
		logger.Info("Move not confirmed", "reason", err.Error())
		return kcloudv1alpha1.MoveFailed, err.Error()
	}
	now := r.Clock.Now()
	res := kube.NewReservation(pod, wo.Name, req, now, now.Add(r.ttl()))
	res.SavingsPerHour, res.PowerSavings, res.Run = mv.Saving.CostPerHour, mv.Saving.PowerWatts, run.UTC()
	if err := r.annotateNode(ctx, mv.To, res.Key, res.Value()); err != nil {
		err = fmt.Errorf("reserving room on node %s for pod %s: %w", mv.To, klog.KObj(pod), err)
		logger.Error(err, "Move not started")
		return kcloudv1alpha1.MoveFailed, err.Error()
	}
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace}}
	target := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace}}
	err := r.Client.SubResource("eviction").Create(ctx, target, ev)
	if err == nil {
		logger.Info("Evicted pod to move it", "costSavingUSDPerHour", mv.Saving.CostPerHour, "powerSavingWatts", mv.Saving.PowerWatts)
		return kcloudv1alpha1.MoveEvicted, ""
	}
	// The room is not needed after all.
	if uerr := r.annotateNode(ctx, mv.To, res.Key, ""); uerr != nil {
		logger.Error(uerr, "Removing the reservation of a move that did not happen; it expires", "expires", res.Expires)
	}
	if apierrors.IsTooManyRequests(err) {
		logger.Info("Eviction refused by a PodDisruptionBudget", "reason", err.Error())
		return kcloudv1alpha1.MoveBlocked, err.Error()
	}
	err = fmt.Errorf("evicting pod %s: %w", klog.KObj(pod), err)
	logger.Error(err, "Move failed")
	return kcloudv1alpha1.MoveFailed, err.Error()
}

// confirm checks, against the API rather than the cache, that the pod is still where the plan
// found it and that the destination is still ready and has room for it with every pod bound there
// and every reservation held on it.
func (r *Rebalancer) confirm(ctx context.Context, pod *corev1.Pod, req model.Pod, mv Move) error {
	cur := &corev1.Pod{}
	if err := r.Reader.Get(ctx, mv.Pod, cur); err != nil {
		return fmt.Errorf("reading pod %s: %w", mv.Pod, err)
	}
	if cur.UID != pod.UID || cur.Spec.NodeName != mv.From || cur.DeletionTimestamp != nil {
		return fmt.Errorf("pod %s is no longer running on node %s", mv.Pod, mv.From)
	}
	node := &corev1.Node{}
	if err := r.Reader.Get(ctx, client.ObjectKey{Name: mv.To}, node); err != nil {
		return fmt.Errorf("reading node %s: %w", mv.To, err)
	}
	if node.Spec.Unschedulable || !kube.NodeReady(node) {
		return fmt.Errorf("node %s is no longer ready and schedulable", mv.To)
	}
	cat, _ := r.Catalog.Current()
	facts, _, err := kube.NodeEconomics(cat, node)
	if err != nil {
		return err
	}
	list := &corev1.PodList{}
	if err := r.Reader.List(ctx, list, client.MatchingFields{"spec.nodeName": mv.To}); err != nil {
		return fmt.Errorf("listing the pods of node %s: %w", mv.To, err)
	}
	var there []*corev1.Pod
	for i := range list.Items {
		if !kube.Terminal(&list.Items[i]) {
			there = append(there, &list.Items[i])
		}
	}
	slices.SortFunc(there, kube.CompareAdmission)
	n := kube.NodeCapacity(node, facts)
	if uncounted := kube.Occupy(&n, slices.Values(there), kube.OccupyOptions{}); uncounted > 0 || n.CPUFree < 0 || n.MemoryFree < 0 {
		return fmt.Errorf("node %s is fuller than the plan saw", mv.To)
	}
	active, _ := kube.ActiveReservations(kube.NodeReservations(node), there, r.Clock.Now())
	if held := kube.Hold(&n, active, nil); len(held) < len(active) {
		return fmt.Errorf("node %s: its room is reserved", mv.To)
	}
	if !model.Fits(&req, &n) {
		return fmt.Errorf("node %s no longer has room for pod %s", mv.To, mv.Pod)
	}
	return nil
}

// annotateNode sets (value non-empty) or removes one annotation of a node with a merge patch,
// which leaves every other reservation on the node alone.
func (r *Rebalancer) annotateNode(ctx context.Context, node, key, value string) error {
	var v any
	if value != "" {
		v = value
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{key: v}}})
	if err != nil {
		return err
	}
	obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if err := r.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("patching node %s: %w", node, err)
	}
	return nil
}

// release removes the reservations that are over: expired, or consumed by a replacement (whose
// saving is then counted as realised).
func (r *Rebalancer) release(ctx context.Context, pods []corev1.Pod) (int, error) {
	nodes := &corev1.NodeList{}
	if err := r.Client.List(ctx, nodes, client.UnsafeDisableDeepCopy); err != nil {
		return 0, fmt.Errorf("listing nodes: %w", err)
	}
	var byNode map[string][]*corev1.Pod
	now := r.Clock.Now()
	released := 0
	for i := range nodes.Items {
		node := &nodes.Items[i]
		if !kube.HasReservations(node) {
			continue
		}
		if byNode == nil {
			ptrs := make([]*corev1.Pod, len(pods))
			for j := range pods {
				ptrs[j] = &pods[j]
			}
			byNode = podsByNode(ptrs)
		}
		_, over := kube.ActiveReservations(kube.NodeReservations(node), byNode[node.Name], now)
		for _, res := range over {
			if err := r.annotateNode(ctx, node.Name, res.Key, ""); err != nil {
				return released, fmt.Errorf("releasing reservation %s: %w", res.Key, err)
			}
			released++
			if now.Before(res.Expires) {
				observeRealised(res)
				log.FromContext(ctx).Info("Replacement landed on its reserved node", "node", node.Name, "workloadOptimizer", res.Workload(),
					"evicted", res.Pod, "costSavingUSDPerHour", res.SavingsPerHour, "powerSavingWatts", res.PowerSavings)
			} else {
				log.FromContext(ctx).Info("Reservation expired", "node", node.Name, "workloadOptimizer", res.Workload(), "evicted", res.Pod)
			}
		}
	}
	return released, nil
}

// report records a move's events: on the pod and on its optimizer, each naming the saving.
func (r *Rebalancer) report(pod *corev1.Pod, wo *kcloudv1alpha1.WorkloadOptimizer, mv Move) {
	saves := fmt.Sprintf("saves %.4f USD/h, %.1f W", mv.Saving.CostPerHour, mv.Saving.PowerWatts)
	switch mv.Outcome {
	case kcloudv1alpha1.MovePlanned:
		r.Recorder.Eventf(pod, wo, corev1.EventTypeNormal, kcloudv1alpha1.ReasonRebalancePlanned, "Rebalance",
			"dry run: would move from node %s to node %s: %s", mv.From, mv.To, saves)
		r.Recorder.Eventf(wo, pod, corev1.EventTypeNormal, kcloudv1alpha1.ReasonRebalancePlanned, "Rebalance",
			"dry run: would move pod %s from node %s to node %s: %s", pod.Name, mv.From, mv.To, saves)
	case kcloudv1alpha1.MoveEvicted:
		r.Recorder.Eventf(pod, wo, corev1.EventTypeNormal, kcloudv1alpha1.ReasonRebalanced, "Evict",
			"evicted to move from node %s to node %s: %s", mv.From, mv.To, saves)
		r.Recorder.Eventf(wo, pod, corev1.EventTypeNormal, kcloudv1alpha1.ReasonRebalanced, "Evict",
			"moved pod %s from node %s to node %s: %s", pod.Name, mv.From, mv.To, saves)
	case kcloudv1alpha1.MoveBlocked:
		r.Recorder.Eventf(wo, pod, corev1.EventTypeNormal, kcloudv1alpha1.ReasonRebalanceBlocked, "Evict",
			"a PodDisruptionBudget refused evicting pod %s to move it from node %s to node %s (would save %.4f USD/h, %.1f W); trying again next run",
			pod.Name, mv.From, mv.To, mv.Saving.CostPerHour, mv.Saving.PowerWatts)
	}
}

// writeStatus records the run in status.rebalancing of every optimizer with a move in it, and of
// those whose last run had some (so a stale plan does not linger).
func (r *Rebalancer) writeStatus(ctx context.Context, w *world, rep Report) error {
	type acc struct {
		st kcloudv1alpha1.RebalancingStatus
	}
	per := map[types.NamespacedName]*acc{}
	get := func(key types.NamespacedName) *acc {
		a, ok := per[key]
		if !ok {
			a = &acc{}
			per[key] = a
		}
		return a
	}
	for _, m := range rep.Moves {
		a := get(types.NamespacedName{Namespace: m.Pod.Namespace, Name: m.Optimizer})
		a.st.Planned++
		a.st.PlannedSavingsPerHour += m.Saving.CostPerHour
		a.st.PlannedPowerSavings += m.Saving.PowerWatts
		switch m.Outcome {
		case kcloudv1alpha1.MoveEvicted:
			a.st.Evicted++
		case kcloudv1alpha1.MoveBlocked:
			a.st.Blocked++
		}
		if len(a.st.Moves) < 20 {
			a.st.Moves = append(a.st.Moves, kcloudv1alpha1.RebalanceMove{Pod: m.Pod.Name, From: m.From, To: m.To, Outcome: m.Outcome,
				SavingsPerHour: model.Round(m.Saving.CostPerHour, 4), PowerSavings: model.Round(m.Saving.PowerWatts, 1)})
		}
	}
	for key, wo := range w.byKey {
		if wo.Status.Rebalancing != nil && wo.Status.Rebalancing.Planned > 0 {
			get(key)
		}
	}
	keys := make([]types.NamespacedName, 0, len(per))
	for k := range per {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	at := metav1.NewTime(rep.At.Truncate(time.Second))
	for _, key := range keys {
		wo, ok := w.byKey[key]
		if !ok {
			continue
		}
		a := per[key]
		st := a.st
		st.LastRun, st.DryRun = &at, rep.DryRun
		st.PlannedSavingsPerHour, st.PlannedPowerSavings = model.Round(st.PlannedSavingsPerHour, 4), model.Round(st.PlannedPowerSavings, 1)
		if prev := wo.Status.Rebalancing; prev != nil {
			st.TotalEvictions = prev.TotalEvictions
		}
		st.TotalEvictions += int64(st.Evicted)
		patched := wo.DeepCopy()
		base := client.MergeFrom(wo)
		patched.Status.Rebalancing = &st
		if err := r.Client.Status().Patch(ctx, patched, base); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("writing status.rebalancing of WorkloadOptimizer %s: %w", key, err)
		}
	}
	return nil
}
