// Package optimizer is the KcloudOptimizer framework plugin: the workload's limits and the node
// score. PreFilter gathers the pod's limits and preferences from its WorkloadOptimizer and the
// CostPolicies and PowerPolicies covering it (kube.Policies, over this package's informers), reads
// what already counts against each limit (limitUsage, kept up to date by events, Reserve and
// Unreserve; AddPod and RemovePod adjust it for preemption and nominated pods), and narrows the nodes to filter to those worth
// considering (candidateIndex); Filter refuses nodes that would break a limit or the spot rule, or
// take room the rebalancer reserved for another workload; PreScore, Score and NormalizeScore rank
// the feasible nodes by the model's combined score (marginal cost, power, carbon, GPU
// fragmentation, spot and green preferences). Node facts and occupancy come from the profile's
// shared node view (pkg/scheduler/nodeview); device choice and binding for GPU shares are
// KcloudGPUShare's, gang admission KcloudGang's.
package optimizer

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/scheduler/apis/config"
	"kcloud.io/optimizer/pkg/scheduler/nodeview"
	"kcloud.io/optimizer/pkg/scheduler/pluginmetrics"
)

// Name is the plugin's name in a KubeSchedulerConfiguration.
const Name = "KcloudOptimizer"

const stateKey fwk.StateKey = "kcloud.io/optimizer"

// Plugin is the KcloudOptimizer plugin.
type Plugin struct {
	weights  model.Weights
	nodes    *nodeview.Shared
	cands    *candidateIndex // nil: every node is filtered (args.narrowCandidates false)
	policies *policyStore
	usage    *limitUsage
	now      func() time.Time // when rebalancing reservations are judged
	timers   timers
	timed    pluginmetrics.Cycles // the cycles whose Filter and Score calls are timed
	handoffs handoffTable
	// tieSeed seeds the tie-break between nodes of the best score (model.TieRank); nil without a
	// framework handle (unit tests of single extension points, where tied nodes all score 100).
	tieSeed *int64
}

// timers time each extension point (pluginmetrics).
type timers struct {
	preFilter, filter, preScore, score, normalize, reserve, addPod, removePod pluginmetrics.Timer
}

func newTimers() timers {
	t := func(point string) pluginmetrics.Timer { return pluginmetrics.For(Name, point) }
	return timers{preFilter: t("PreFilter"), filter: t("Filter"), preScore: t("PreScore"), score: t("Score"),
		normalize: t("ScoreExtensionNormalize"), reserve: t("Reserve"), addPod: t("PreFilterExtensionAddPod"), removePod: t("PreFilterExtensionRemovePod")}
}

var (
	_ fwk.PreFilterPlugin     = &Plugin{}
	_ fwk.PreFilterExtensions = &Plugin{}
	_ fwk.FilterPlugin        = &Plugin{}
	_ fwk.PreScorePlugin      = &Plugin{}
	_ fwk.ScorePlugin         = &Plugin{}
	_ fwk.ReservePlugin       = &Plugin{}
)

// New builds the plugin from its args (see pkg/scheduler/apis/config).
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, err := config.Decode(obj)
	if err != nil {
		return nil, err
	}
	if err := nodeview.WatchCatalog(ctx, h, args.CatalogConfigMap); err != nil {
		return nil, fmt.Errorf("%s args catalogConfigMap: %w", Name, err)
	}
	return newPlugin(ctx, args, h, nodeview.SchedulerCatalog())
}

// tieSeedFor is the configured tie-break seed; nil without a framework handle (unit tests of
// single extension points, which compare raw ties).
func tieSeedFor(h fwk.Handle, args *config.KcloudOptimizerArgs) *int64 {
	if h == nil {
		return nil
	}
	return args.TieBreakSeed
}

func newPlugin(ctx context.Context, args *config.KcloudOptimizerArgs, h fwk.Handle, cat catalog.Provider) (*Plugin, error) {
	types, err := nodeview.TypicalTypes(args.TargetWorkload)
	if err != nil {
		return nil, fmt.Errorf("%s args targetWorkload: %w", Name, err)
	}
	nodes, err := nodeview.For(h, cat)
	if err != nil {
		return nil, fmt.Errorf("%s: node view: %w", Name, err)
	}
	nodes.SetTypes(types)
	//nolint:staticcheck // the deprecated field is read only to say that it is ignored
	if args.GangTimeoutSeconds != nil {
		klog.FromContext(ctx).Info("Ignoring gangTimeoutSeconds in KcloudOptimizerArgs: it is KcloudGangArgs' now, with the KcloudGang plugin",
			"gangTimeoutSeconds", *args.GangTimeoutSeconds) //nolint:staticcheck // as above
	}
	pl := &Plugin{
		weights: args.ModelWeights(),
		nodes:   nodes,
		usage:   newLimitUsage(nodes),
		now:     time.Now,
		timers:  newTimers(),
		tieSeed: tieSeedFor(h, args),
	}
	if *args.NarrowCandidates {
		pl.cands = newCandidateIndex(nodes)
	}
	if h != nil && h.SharedInformerFactory() != nil {
		core := h.SharedInformerFactory().Core().V1()
		if err := pl.usage.watch(core.Pods().Informer(), core.Nodes().Informer()); err != nil {
			return nil, fmt.Errorf("%s: %w", Name, err)
		}
	}
	if h != nil && h.KubeConfig() != nil {
		if pl.policies, err = newPolicyStore(ctx, h.KubeConfig(), pl.usage.dropPolicies); err != nil {
			return nil, fmt.Errorf("%s: %w", Name, err)
		}
	}
	return pl, nil
}

// Name returns the plugin's name.
func (pl *Plugin) Name() string { return Name }

// cycle is what the plugin learns about the pod in one scheduling cycle. Per-node results are not
// kept here: they come from the node view, so a cycle allocates nothing per node.
type cycle struct {
	pod    model.Pod
	policy kube.PodPolicy
	limits []model.Limit // policy.Limits with what counts against them
	// ranges are the normalisation ranges of the feasible nodes' candidates, widened by Filter (our
	// Filter runs last, on the nodes every other filter passed, in parallel); reserved is set there
	// when a feasible node holds a rebalancing reservation for the pod's workload.
	ranges   *ranges
	reserved *atomic.Bool
	scorer   model.Scorer // set in PreScore, once every feasible node is known
	// ties gathers, as Score runs on the feasible nodes in parallel, the nodes near the best score
	// with their tie rank, for NormalizeScore's tie-break.
	ties *ties
	// timed: this cycle's Filter and Score calls are timed (pluginmetrics.Cycles).
	timed bool
	// handoff hands each feasible node's candidate from Filter to Score; empty in the copies the
	// framework makes for nominated pods and preemption, which are never scored.
	handoff handoff
}

// Clone copies the limits, which AddPod and RemovePod change in the copies the framework makes to
// try preemption victims and nominated pods, and leaves the handoff out: those copies are never
// scored, and a node's candidate on a NodeInfo with nominated pods added is not its score. The rest
// is shared: written only through atomics after PreFilter, and PreScore's scorer before Score
// reads it.
func (c *cycle) Clone() fwk.StateData {
	d := *c
	d.limits = slices.Clone(c.limits)
	d.handoff = handoff{}
	return &d
}

// ranges gathers model.Costs' lowest and highest values over candidates observed on several
// goroutines.
type ranges struct {
	lo, hi [3]atomic.Uint64 // float64 bits
}

func (r *ranges) reset() {
	for k := range r.lo {
		r.lo[k].Store(math.Float64bits(math.Inf(1)))
		r.hi[k].Store(math.Float64bits(math.Inf(-1)))
	}
}

func (r *ranges) observe(c *model.Candidate) {
	for k, v := range model.Costs(c) {
		widen(&r.lo[k], v, func(old float64) bool { return v < old })
		widen(&r.hi[k], v, func(old float64) bool { return v > old })
	}
}

func widen(a *atomic.Uint64, v float64, beyond func(old float64) bool) {
	for {
		old := a.Load()
		if !beyond(math.Float64frombits(old)) || a.CompareAndSwap(old, math.Float64bits(v)) {
			return
		}
	}
}

func (r *ranges) get() (lo, hi [3]float64) {
	for k := range r.lo {
		lo[k], hi[k] = math.Float64frombits(r.lo[k].Load()), math.Float64frombits(r.hi[k].Load())
	}
	return lo, hi
}

func read(state fwk.CycleState) (*cycle, error) {
	d, err := state.Read(stateKey)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", stateKey, err)
	}
	return d.(*cycle), nil
}

// PreFilter gathers the pod's request, limits and preferences, and what already counts against each
// limit (bound pods and pods this scheduler has reserved).
func (pl *Plugin) PreFilter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodes []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	defer pl.timers.preFilter.Since(time.Now())
	c := &cycle{pod: kube.PodRequest(pod), policy: pl.policies.policyFor(pod), ranges: &ranges{}, reserved: &atomic.Bool{}, ties: &ties{}, timed: pl.timed.Next()}
	c.ranges.reset()
	c.limits = c.policy.ModelLimits(c.limits)
	for i := range c.policy.Limits {
		if l := &c.policy.Limits[i]; l.Shares != nil {
			c.limits[i].Used = pl.usage.of(l, pod.UID)
		}
	}
	state.Write(stateKey, c)
	names := pl.nodesWorthFiltering(state, pod, &c.pod, nodes)
	if !state.IsPodGroupSchedulingCycle() {
		n := len(nodes)
		if names != nil {
			n = names.Len()
		}
		c.handoff = pl.handoffs.next(n)
	}
	if names != nil {
		return &fwk.PreFilterResult{NodeNames: names}, nil
	}
	return nil, nil
}

// nodesWorthFiltering asks the candidate index. A pod group's cycle assumes its pods in a copy of
// the snapshot, without changing NodeInfo generations: neither the index nor the per-generation
// caches can see them, so every node is offered.
func (pl *Plugin) nodesWorthFiltering(state fwk.CycleState, pod *corev1.Pod, p *model.Pod, nodes []fwk.NodeInfo) sets.Set[string] {
	if pl.cands == nil || state.IsPodGroupSchedulingCycle() {
		return nil
	}
	return pl.cands.candidates(pl, pod, p, nodes)
}

// PreFilterExtensions lets preemption and nominated pods change what counts against the limits.
func (pl *Plugin) PreFilterExtensions() fwk.PreFilterExtensions { return pl }

// AddPod counts a pod the framework adds to a node (a nominated pod) against the limits it shares.
func (pl *Plugin) AddPod(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, add fwk.PodInfo, ni fwk.NodeInfo) *fwk.Status {
	defer pl.timers.addPod.Since(time.Now())
	return pl.adjust(state, add.GetPod(), ni, 1)
}

// RemovePod takes away what a pod the framework removes from a node (a preemption victim) counted
// against the limits it shares, so that preemption can free room under a cap.
func (pl *Plugin) RemovePod(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, remove fwk.PodInfo, ni fwk.NodeInfo) *fwk.Status {
	defer pl.timers.removePod.Since(time.Now())
	return pl.adjust(state, remove.GetPod(), ni, -1)
}

func (pl *Plugin) adjust(state fwk.CycleState, other *corev1.Pod, ni fwk.NodeInfo, sign float64) *fwk.Status {
	c, err := read(state)
	if err != nil {
		return fwk.AsStatus(err)
	}
	charged, cost, power := false, 0.0, 0.0
	for i := range c.policy.Limits {
		l := &c.policy.Limits[i]
		if l.Shares == nil || !l.Shares(other) {
			continue
		}
		if !charged {
			cost, power = chargeOn(other, ni.Node(), pl.nodes.Facts(ni.Node()))
			charged = true
		}
		c.limits[i].Used += sign * model.LimitRate(l.Kind, cost, power)
	}
	return nil
}

// Reserve counts the pod against the limits it shares from the moment it has a node, before its
// binding is seen.
func (pl *Plugin) Reserve(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) *fwk.Status {
	defer pl.timers.reserve.Since(time.Now())
	pl.usage.assume(pod, nodeName)
	return nil
}

// Unreserve takes back what Reserve counted.
func (pl *Plugin) Unreserve(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) {
	pl.usage.forget(pod.UID, nodeName)
}

// Filter refuses a node where the pod's attributed cost, power or the node's carbon intensity or
// capacity type would break a limit, or where the rebalancer holds the room for another workload;
// the message names the limit and the figures, and becomes the pod's FailedScheduling event. A
// share with no device to go to is refused too (KcloudGPUShare's Filter, when enabled, has already
// refused those nodes): there is no placement to price.
func (pl *Plugin) Filter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, ni fwk.NodeInfo) *fwk.Status {
	c, err := read(state)
	if err != nil {
		return fwk.AsStatus(err)
	}
	if c.timed {
		defer pl.timers.filter.Since(time.Now())
	}
	f := pl.nodes.Facts(ni.Node())
	if f.Err != nil {
		if c.pod.GPUCount == 0 && len(c.limits) == 0 {
			return nil // a node the catalog cannot price still runs plain pods
		}
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, f.Err.Error())
	}
	v := pl.nodes.View(ni, f)
	if st := nodeview.ShareStatus(&c.pod, v); st != nil {
		return st
	}
	if sv := model.CheckSpot(c.policy.Spot, c.policy.SpotSource, f.Econ.Spot); sv != nil {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, sv.Error())
	}
	if len(c.limits) > 0 {
		n := &v.Node
		cost, power := model.AttributedCost(&c.pod, n, &f.Econ), model.AttributedPower(&c.pod, n, &f.Econ)
		if lv := model.CheckLimits(c.limits, cost, power, &f.Econ); lv != nil {
			return fwk.NewStatus(fwk.Unschedulable, lv.Error())
		}
	}
	if len(f.Reservations) > 0 {
		if st := pl.reservedRoom(pod, &c.pod, ni, f, v.Node); st != nil {
			return st
		}
	}
	// Our Filter runs after every other one, so a node that reaches this point is feasible: its
	// candidate widens the cycle's normalisation ranges here, where the scheduler runs nodes in
	// parallel, instead of in a pass over every feasible node in PreScore. The placement is cached
	// for Score.
	pc := v.Place(&c.pod, &f.Econ)
	c.ranges.observe(&pc.Candidate)
	c.handoff.put(ni.Node(), &pc.Candidate)
	if len(f.Reservations) > 0 && pl.reservedFor(pod, ni) {
		c.reserved.Store(true)
	}
	return nil
}

// candidate is what a node offers the pod, from the node view, for a node Filter did not hand
// over; ok is false for a node the catalog cannot price (plain pods may still run there, scored 0).
func (pl *Plugin) candidate(c *cycle, ni fwk.NodeInfo) (model.Candidate, bool) {
	f := pl.nodes.Facts(ni.Node())
	if f.Err != nil {
		return model.Candidate{}, false
	}
	return pl.nodes.View(ni, f).Place(&c.pod, &f.Econ).Candidate, true
}

// PreScore fixes the cycle's scorer: Filter has seen every feasible node's candidate by now.
func (pl *Plugin) PreScore(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodes []fwk.NodeInfo) *fwk.Status {
	defer pl.timers.preScore.Since(time.Now())
	c, err := read(state)
	if err != nil {
		return fwk.AsStatus(err)
	}
	lo, hi := c.ranges.get()
	c.scorer = model.NewScorerOver(c.policy.Prefs, pl.weights, lo, hi)
	return nil
}

// Score returns the node's combined score, raw: 1 + the score in model.ScoreUnits (1e-9 of a
// point, the resolution at which NormalizeScore tells the best nodes from the rest), 0 for a node
// the catalog cannot price. The replacement of a pod the rebalancer moved goes where it reserved
// room for the workload: when a feasible node holds such a reservation, reserved nodes score the
// most and every other node 0.
func (pl *Plugin) Score(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, ni fwk.NodeInfo) (int64, *fwk.Status) {
	c, err := read(state)
	if err != nil {
		return 0, fwk.AsStatus(err)
	}
	if c.timed {
		defer pl.timers.score.Since(time.Now())
	}
	if c.reserved.Load() {
		if !pl.reservedFor(pod, ni) {
			return 0, nil
		}
		if f := pl.nodes.Facts(ni.Node()); f.Err == nil {
			return pl.tieObserved(c, ni, 1+model.ScoreUnits(100)), nil
		}
		return 1 + model.ScoreUnits(100), nil
	}
	if cand, ok := c.handoff.get(ni.Node()); ok {
		return pl.tieObserved(c, ni, 1+model.ScoreUnits(c.scorer.Score(cand))), nil
	}
	cand, ok := pl.candidate(c, ni)
	if !ok {
		return 0, nil
	}
	return pl.tieObserved(c, ni, 1+model.ScoreUnits(c.scorer.Score(&cand))), nil
}

// tieObserved records a scored node with its tie rank when its raw score is near the cycle's best
// so far, and returns the score. The node's view is looked up only then: most nodes are not near.
func (pl *Plugin) tieObserved(c *cycle, ni fwk.NodeInfo, raw int64) int64 {
	if pl.tieSeed != nil && c.ties.near(raw) {
		f := pl.nodes.Facts(ni.Node())
		c.ties.observe(ni.Node().Name, raw, pl.nodes.View(ni, f).TieRank(*pl.tieSeed, &f.Econ))
	}
	return raw
}

// ties are the nodes scored within one unit of the best raw score seen so far in a cycle, with
// their model.TieRank. Score adds to it on several goroutines; NormalizeScore reads it once they
// are done.
type ties struct {
	best  atomic.Int64
	mu    sync.Mutex
	nodes []rankedNode
}

type rankedNode struct {
	name string
	raw  int64
	rank uint64
}

// near reports whether a raw score may tie with the best (it is, so far, within one unit of it).
func (t *ties) near(raw int64) bool { return raw > 0 && model.Tied(raw, t.best.Load()) }

func (t *ties) observe(name string, raw int64, rank uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if best := t.best.Load(); raw > best {
		t.best.Store(raw)
		t.nodes = slices.DeleteFunc(t.nodes, func(n rankedNode) bool { return !model.Tied(n.raw, raw) })
	} else if !model.Tied(raw, best) {
		return
	}
	t.nodes = append(t.nodes, rankedNode{name: name, raw: raw, rank: rank})
}

// ScoreExtensions brings the raw scores to kube-scheduler's range.
func (pl *Plugin) ScoreExtensions() fwk.ScoreExtensions { return pl }

// NormalizeScore maps raw scores to 0..100: 100 for the nodes with the cycle's best score
// (model.Tied) that win its tie-break (tieWinners), at most 99 for the others (integerScore).
func (pl *Plugin) NormalizeScore(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, scores fwk.NodeScoreList) *fwk.Status {
	defer pl.timers.normalize.Since(time.Now())
	best := int64(0)
	for i := range scores {
		best = max(best, scores[i].Score)
	}
	c, _ := read(state) // without a cycle (a caller of NormalizeScore alone), no tie-break
	winners := pl.tieWinners(c, best)
	for i := range scores {
		scores[i].Score = integerScore(scores[i].Score, best)
		if scores[i].Score == fwk.MaxScore && winners != nil && !winners[scores[i].Name] {
			scores[i].Score = fwk.MaxScore - 1
		}
	}
	return nil
}

// tieWinners breaks the tie between the nodes of the best score as the simulator does: those of
// the lowest model.TieRank under the configured seed win, and between them, alike to the model,
// kube-scheduler's pick is the same choice. Without it kube-scheduler would take whichever tied
// node comes first in its parallel filtering, and the placements of the scheduler and the simulator
// would part at the first tie between unlike nodes. The ranks were taken as Score ran (ties); nil
// when at most one node has the best score.
func (pl *Plugin) tieWinners(c *cycle, best int64) map[string]bool {
	if best <= 0 || c == nil {
		return nil
	}
	c.ties.mu.Lock()
	defer c.ties.mu.Unlock()
	tied, lowest := 0, uint64(math.MaxUint64)
	for _, n := range c.ties.nodes {
		if model.Tied(n.raw, best) {
			tied++
			lowest = min(lowest, n.rank)
		}
	}
	if tied < 2 {
		return nil
	}
	winners := map[string]bool{}
	for _, n := range c.ties.nodes {
		if model.Tied(n.raw, best) && n.rank == lowest {
			winners[n.name] = true
		}
	}
	return winners
}

// integerScore is a node's raw score as an integer 0..100: 100 for the nodes tied with the cycle's
// best score (within 1e-9 of a point) and at most 99 for the others. kube-scheduler scores are
// integers, and rounding would merge the best node with others whose score is a fraction of a
// point lower (the cost term spans under two points); this way the scheduler picks what the model
// (and the simulator) would.
func integerScore(raw, best int64) int64 {
	switch {
	case raw <= 0:
		return 0
	case model.Tied(raw, best):
		return fwk.MaxScore
	}
	return min(fwk.MaxScore-1, int64(math.Round(float64(raw-1)/model.ScoreScale)))
}
