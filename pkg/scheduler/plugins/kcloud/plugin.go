// Package kcloud is the kcloud-scheduler framework plugin: a thin adapter from kube-scheduler's
// extension points to pkg/model. PreFilter gathers the pod's limits from its WorkloadOptimizer and
// the CostPolicies and PowerPolicies covering it; Filter refuses nodes that would break them (or
// have no device with room for a GPU share); PreScore and Score rank the feasible nodes by the
// model's combined score (marginal cost, power, carbon, GPU fragmentation, spot and green
// preferences); Reserve and Unreserve keep the device chosen for a share, so back-to-back pods see
// each other before binding; Permit holds the pods of a gang until all have a place; PreBind writes
// the chosen device on the pod.
package kcloud

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/scheduler/apis/config"
	"kcloud.io/optimizer/pkg/traces"
)

// Name is the plugin's name in a KubeSchedulerConfiguration.
const Name = "KcloudOptimizer"

const stateKey fwk.StateKey = "kcloud.io/optimizer"

// Plugin is the kcloud scheduler plugin.
type Plugin struct {
	handle   fwk.Handle
	args     *config.KcloudOptimizerArgs
	weights  model.Weights
	types    []model.PodType
	facts    *factsCache
	cands    *candidateIndex
	policies *policyStore
	inflight inflight
	now      func() time.Time // when rebalancing reservations are judged
}

var (
	_ fwk.PreFilterPlugin = &Plugin{}
	_ fwk.FilterPlugin    = &Plugin{}
	_ fwk.PreScorePlugin  = &Plugin{}
	_ fwk.ScorePlugin     = &Plugin{}
	_ fwk.ReservePlugin   = &Plugin{}
	_ fwk.PermitPlugin    = &Plugin{}
	_ fwk.PreBindPlugin   = &Plugin{}
)

// New builds the plugin from its args (see pkg/scheduler/apis/config).
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, err := config.Decode(obj)
	if err != nil {
		return nil, err
	}
	return newPlugin(ctx, args, h, catalog.Default())
}

func newPlugin(ctx context.Context, args *config.KcloudOptimizerArgs, h fwk.Handle, cat *catalog.Catalog) (*Plugin, error) {
	trace, err := traces.ReadPods(args.TargetWorkload)
	if err != nil {
		return nil, fmt.Errorf("reading targetWorkload: %w", err)
	}
	pods := make([]model.Pod, len(trace))
	for i, t := range trace {
		pods[i] = model.Pod{CPUMilli: t.CPUMilli, MemoryMiB: t.MemoryMiB, GPUCount: t.NumGPU, GPUMilli: t.GPUMilli, Models: t.Models}
	}
	facts := &factsCache{cat: cat}
	pl := &Plugin{
		handle:   h,
		args:     args,
		weights:  args.ModelWeights(),
		types:    model.TypicalPodTypes(pods, 0.95),
		facts:    facts,
		cands:    newCandidateIndex(facts),
		inflight: inflight{m: map[types.UID]reservation{}},
		now:      time.Now,
	}
	if h != nil && h.KubeConfig() != nil {
		if pl.policies, err = newPolicyStore(ctx, h.KubeConfig()); err != nil {
			return nil, err
		}
	}
	if h != nil && h.SharedInformerFactory() != nil {
		if err := pl.watch(h.SharedInformerFactory().Core().V1().Pods().Informer(), h.SharedInformerFactory().Core().V1().Nodes().Informer()); err != nil {
			return nil, err
		}
	}
	return pl, nil
}

// watch keeps what the plugin holds per pod and node in step with the cluster: a deleted pod no
// longer holds its device, and a deleted node's facts and view go with it.
func (pl *Plugin) watch(pods, nodes cache.SharedIndexInformer) error {
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				pl.inflight.delete(pod.UID)
			}
		},
	}); err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	if _, err := nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if node, ok := obj.(*corev1.Node); ok {
				pl.facts.forget(node.Name)
			}
		},
	}); err != nil {
		return fmt.Errorf("watching nodes: %w", err)
	}
	return nil
}

// Name returns the plugin's name.
func (pl *Plugin) Name() string { return Name }

// cycle is what the plugin learns about the pod in one scheduling cycle. Per-node results are not
// kept here: they come from the per-node view cache, so a cycle allocates nothing per node.
type cycle struct {
	pod    model.Pod
	policy podPolicy
	limits []model.Limit
	// ranges are the normalisation ranges of the feasible nodes' candidates, widened by Filter (our
	// Filter runs last, on the nodes every other filter passed, in parallel); reserved is set there
	// when a feasible node holds a rebalancing reservation for the pod's workload.
	ranges   ranges
	reserved atomic.Bool
	scorer   model.Scorer // set in PreScore, once every feasible node is known
}

// Clone shares the cycle: it is written only through atomics after PreFilter, and PreScore's
// scorer before Score reads it.
func (c *cycle) Clone() fwk.StateData { return c }

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
	c := &cycle{pod: kube.PodRequest(pod), policy: pl.policies.policyFor(pod)}
	c.ranges.reset()
	for _, ls := range c.policy.limits {
		l := ls.limit
		if ls.shares != nil {
			l.Used = pl.usage(nodes, pod.UID, ls.shares, l.Kind)
		}
		c.limits = append(c.limits, l)
	}
	state.Write(stateKey, c)
	if names := pl.nodesWorthFiltering(state, pod, &c.pod, nodes); names != nil {
		return &fwk.PreFilterResult{NodeNames: names}, nil
	}
	return nil, nil
}

// nodesWorthFiltering asks the candidate index. A pod group's cycle assumes its pods in a copy of
// the snapshot, without changing NodeInfo generations: neither the index nor the per-generation
// caches can see them, so every node is offered.
func (pl *Plugin) nodesWorthFiltering(state fwk.CycleState, pod *corev1.Pod, p *model.Pod, nodes []fwk.NodeInfo) sets.Set[string] {
	if state.IsPodGroupSchedulingCycle() {
		return nil
	}
	return pl.cands.candidates(pl, pod, p, nodes)
}

// usage sums the attributed cost or power of the pods placed anywhere that share a limit.
func (pl *Plugin) usage(nodes []fwk.NodeInfo, self types.UID, shares member, kind model.LimitKind) float64 {
	total := 0.0
	for _, ni := range nodes {
		var f *nodeFacts
		for _, pi := range ni.GetPods() {
			pod := pi.GetPod()
			if pod.UID == self || !shares(pod) {
				continue
			}
			if f == nil {
				if f = pl.facts.get(ni.Node()); f.err != nil {
					break
				}
			}
			p := kube.PodRequest(pod)
			capacity := model.NewNode(f.facts.AcceleratorModel, ni.GetAllocatable().GetMilliCPU(), ni.GetAllocatable().GetMemory()>>20, f.facts.AcceleratorCount)
			if kind == model.LimitPowerWatts {
				total += model.AttributedPower(&p, &capacity, &f.econ)
			} else {
				total += model.AttributedCost(&p, &capacity, &f.econ)
			}
		}
	}
	return total
}

// PreFilterExtensions is not implemented: usage is recomputed per cycle.
func (pl *Plugin) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// Filter refuses a node whose devices cannot hold the pod's share, or where the pod's attributed
// cost, power or the node's carbon intensity or capacity type would break a limit; the message
// names the limit and the figures, and becomes the pod's FailedScheduling event.
func (pl *Plugin) Filter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, ni fwk.NodeInfo) *fwk.Status {
	c, err := read(state)
	if err != nil {
		return fwk.AsStatus(err)
	}
	f := pl.facts.get(ni.Node())
	if f.err != nil {
		if c.pod.GPUCount == 0 && len(c.limits) == 0 {
			return nil // a node the catalog cannot price still runs plain pods
		}
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, f.err.Error())
	}
	v := pl.view(ni, f)
	n := &v.node
	if c.pod.IsShare() && !model.Fits(&c.pod, n) {
		return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("no device with %d milli-GPU free", c.pod.GPUMilli))
	}
	if sv := model.CheckSpot(c.policy.spot, c.policy.source, f.econ.Spot); sv != nil {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, sv.Error())
	}
	if len(c.limits) > 0 {
		cost, power := model.AttributedCost(&c.pod, n, &f.econ), model.AttributedPower(&c.pod, n, &f.econ)
		if lv := model.CheckLimits(c.limits, cost, power, f.econ.CarbonIntensity); lv != nil {
			return fwk.NewStatus(fwk.Unschedulable, lv.Error())
		}
	}
	if len(f.reservations) > 0 {
		if st := pl.reservedRoom(pod, &c.pod, ni, f, *n); st != nil {
			return st
		}
	}
	// Our Filter runs after every other one, so a node that reaches this point is feasible: its
	// candidate widens the cycle's normalisation ranges here, where the scheduler runs nodes in
	// parallel, instead of in a pass over every feasible node in PreScore. The placement is cached
	// for Score.
	cand := candidateOf(c, f, v, v.place(c.pod, pl.types, &f.econ))
	c.ranges.observe(&cand)
	if len(f.reservations) > 0 && pl.reservedFor(pod, ni) {
		c.reserved.Store(true)
	}
	return nil
}

// candidate is what a node offers the pod, from the per-node view cache; ok is false for a node the
// catalog cannot price (plain pods may still run there, scored 0).
func (pl *Plugin) candidate(c *cycle, ni fwk.NodeInfo) (model.Candidate, model.Allocation, bool) {
	f := pl.facts.get(ni.Node())
	if f.err != nil {
		return model.Candidate{}, model.Allocation{}, false
	}
	v := pl.view(ni, f)
	pc := v.place(c.pod, pl.types, &f.econ)
	return candidateOf(c, f, v, pc), pc.alloc, true
}

func candidateOf(c *cycle, f *nodeFacts, v *nodeView, pc placement) model.Candidate {
	return model.Candidate{
		Marginal:                 pc.marginal,
		FragDelta:                pc.delta,
		Spot:                     f.econ.Spot,
		Green:                    f.econ.Green,
		AcceleratorNodeForCPUPod: c.pod.GPUCount == 0 && v.node.Devices > 0,
	}
}

// PreScore fixes the cycle's scorer: Filter has seen every feasible node's candidate by now.
func (pl *Plugin) PreScore(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodes []fwk.NodeInfo) *fwk.Status {
	c, err := read(state)
	if err != nil {
		return fwk.AsStatus(err)
	}
	lo, hi := c.ranges.get()
	c.scorer = model.NewScorerOver(c.policy.prefs, pl.weights, lo, hi)
	return nil
}

// scoreScale keeps Score's raw scores (0..100 combined) to 1e-9 of a point, the resolution at
// which NormalizeScore tells the best nodes from the rest.
const scoreScale = 1e9

// Score returns the node's combined score, raw: 1 + the score scaled by scoreScale, 0 for a node
// the catalog cannot price. The replacement of a pod the rebalancer moved goes where it reserved
// room for the workload: when a feasible node holds such a reservation, reserved nodes score the
// most and every other node 0.
func (pl *Plugin) Score(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, ni fwk.NodeInfo) (int64, *fwk.Status) {
	c, err := read(state)
	if err != nil {
		return 0, fwk.AsStatus(err)
	}
	if c.reserved.Load() {
		if pl.reservedFor(pod, ni) {
			return 1 + 100*scoreScale, nil
		}
		return 0, nil
	}
	cand, _, ok := pl.candidate(c, ni)
	if !ok {
		return 0, nil
	}
	return 1 + int64(math.Round(c.scorer.Score(&cand)*scoreScale)), nil
}

// ScoreExtensions brings the raw scores to kube-scheduler's range.
func (pl *Plugin) ScoreExtensions() fwk.ScoreExtensions { return pl }

// NormalizeScore maps raw scores to 0..100: 100 for the nodes with the cycle's best score, at most
// 99 for the others (integerScore).
func (pl *Plugin) NormalizeScore(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, scores fwk.NodeScoreList) *fwk.Status {
	best := int64(0)
	for i := range scores {
		best = max(best, scores[i].Score)
	}
	for i := range scores {
		scores[i].Score = integerScore(scores[i].Score, best)
	}
	return nil
}

// integerScore is a node's raw score as an integer 0..100: 100 for the nodes within 1e-9 of the
// cycle's best score and at most 99 for the others. kube-scheduler scores are integers, and
// rounding would merge the best node with others whose score is a fraction of a point lower (the
// cost term spans under two points), leaving the choice to a random tie-break; this way the
// scheduler picks what the model (and the simulator) would.
func integerScore(raw, best int64) int64 {
	switch {
	case raw <= 0:
		return 0
	case raw >= best-1:
		return fwk.MaxNodeScore
	}
	return min(fwk.MaxNodeScore-1, int64(math.Round(float64(raw-1)/scoreScale)))
}

// Reserve keeps the device chosen for a share until the pod carries it.
func (pl *Plugin) Reserve(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) *fwk.Status {
	c, err := read(state)
	if err != nil {
		return fwk.AsStatus(err)
	}
	if !c.pod.IsShare() {
		return nil
	}
	ni, err := pl.handle.SnapshotSharedLister().NodeInfos().Get(nodeName)
	if err != nil {
		return fwk.AsStatus(fmt.Errorf("reserving a GPU share on node %s: %w", nodeName, err))
	}
	_, alloc, ok := pl.candidate(c, ni)
	if !ok || alloc.Device < 0 {
		return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("node %s: no device for a %d milli-GPU share", nodeName, c.pod.GPUMilli))
	}
	pl.inflight.set(pod.UID, reservation{node: nodeName, alloc: alloc})
	return nil
}

// Unreserve releases what Reserve kept.
func (pl *Plugin) Unreserve(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) {
	pl.inflight.delete(pod.UID)
}

// PreBindPreFlight skips PreBind for pods without a share.
func (pl *Plugin) PreBindPreFlight(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) (*fwk.PreBindPreFlightResult, *fwk.Status) {
	if kube.ShareMilli(pod) == 0 {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	return &fwk.PreBindPreFlightResult{AllowParallel: true}, nil
}

// PreBind writes the chosen device on a share pod for the sharing device plugin.
func (pl *Plugin) PreBind(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) *fwk.Status {
	r, ok := pl.inflight.get(pod.UID)
	if !ok || r.alloc.Device < 0 {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, kube.AnnotationGPUIndex, strconv.Itoa(r.alloc.Device))
	if _, err := pl.handle.ClientSet().CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fwk.AsStatus(fmt.Errorf("writing device %d on pod %s/%s: %w", r.alloc.Device, pod.Namespace, pod.Name, err))
	}
	klog.FromContext(ctx).V(4).Info("Assigned GPU share", "pod", klog.KObj(pod), "node", nodeName, "device", r.alloc.Device)
	return nil
}

// Permit holds the pods of a gang (label kcloud.io/gang, annotation kcloud.io/gang-size) until the
// whole gang has a place, then lets all of them bind; after the timeout all are rejected.
func (pl *Plugin) Permit(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) (*fwk.Status, time.Duration) {
	gang, size := gangOf(pod)
	if gang == "" || size <= 1 {
		return nil, 0
	}
	// The cycle's snapshot holds the gang's bound pods and those waiting here (assumed).
	placed := pl.placedInGang(pod, gang) + 1
	if placed >= size {
		pl.handle.IterateOverWaitingPods(func(wp fwk.WaitingPod) {
			if g, _ := gangOf(wp.GetPod()); g == gang && wp.GetPod().Namespace == pod.Namespace {
				wp.Allow(Name)
			}
		})
		return nil, 0
	}
	return fwk.NewStatus(fwk.Wait, fmt.Sprintf("gang %s: %d of %d pods have a place", gang, placed, size)),
		time.Duration(*pl.args.GangTimeoutSeconds) * time.Second
}
