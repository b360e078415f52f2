package optimizer

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/scheduler/apis/config"
	"kcloud.io/optimizer/pkg/scheduler/internal/schedtest"
)

func testPlugin(t *testing.T) *Plugin {
	t.Helper()
	args, err := config.Decode(nil)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := newPlugin(context.Background(), args, nil, catalog.Default())
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

var (
	t4Node     = schedtest.T4Node
	pod        = schedtest.Pod
	withShare  = schedtest.WithShare
	withDevice = schedtest.WithDevice
	withGPUs   = schedtest.WithGPUs
	nodeInfo   = schedtest.NodeInfo
)

func TestPodRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want model.Pod
	}{
		{"share", pod("a", withShare("460")), model.Pod{CPUMilli: 2000, MemoryMiB: 4096, GPUCount: 1, GPUMilli: 460}},
		{"whole nvidia", pod("b", withGPUs(catalog.ResourceNVIDIAGPU, 2)), model.Pod{CPUMilli: 2000, MemoryMiB: 4096, GPUCount: 2, GPUMilli: 1000}},
		{"amd", pod("c", withGPUs(catalog.ResourceAMDGPU, 8)), model.Pod{CPUMilli: 2000, MemoryMiB: 4096, GPUCount: 8, GPUMilli: 1000}},
		{"share annotation out of range is ignored", pod("d", withShare("1500")), model.Pod{CPUMilli: 2000, MemoryMiB: 4096}},
	} {
		if diff := cmp.Diff(tc.want, kube.PodRequest(tc.pod)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// schedule runs PreFilter, Filter on every node, PreScore, Score and NormalizeScore, as the
// framework would.
func schedule(t *testing.T, pl *Plugin, p *corev1.Pod, prepare func(*cycle), nodes ...*framework.NodeInfo) (map[string]int64, map[string]*fwk.Status) {
	t.Helper()
	ctx := context.Background()
	state := framework.NewCycleState()
	infos := make([]fwk.NodeInfo, len(nodes))
	for i := range nodes {
		infos[i] = nodes[i]
	}
	if _, st := pl.PreFilter(ctx, state, p, infos); !st.IsSuccess() {
		t.Fatal(st)
	}
	c, _ := read(state)
	if prepare != nil {
		prepare(c)
	}
	statuses := map[string]*fwk.Status{}
	var feasible []fwk.NodeInfo
	for _, ni := range infos {
		st := pl.Filter(ctx, state, p, ni)
		statuses[ni.Node().Name] = st
		if st.IsSuccess() {
			feasible = append(feasible, ni)
		}
	}
	if st := pl.PreScore(ctx, state, p, feasible); !st.IsSuccess() {
		t.Fatal(st)
	}
	var list fwk.NodeScoreList
	for _, ni := range feasible {
		s, st := pl.Score(ctx, state, p, ni)
		if !st.IsSuccess() {
			t.Fatal(st)
		}
		list = append(list, fwk.NodeScore{Name: ni.Node().Name, Score: s})
	}
	if st := pl.ScoreExtensions().NormalizeScore(ctx, state, p, list); !st.IsSuccess() {
		t.Fatal(st)
	}
	scores := map[string]int64{}
	for _, ns := range list {
		scores[ns.Name] = ns.Score
	}
	return scores, statuses
}

// Scores gathered node by node (ranges in Filter, raw scores in Score, NormalizeScore) are the
// model's combined scores over the feasible nodes: 100 for the best, the rounded score (at most 99)
// for the others, as the simulator ranks them.
func TestScoresMatchModel(t *testing.T) {
	pl := testPlugin(t)
	var nodes []*framework.NodeInfo
	for i := 0; i < 12; i++ {
		var pods []*corev1.Pod
		for j := 0; j < i%4; j++ {
			pods = append(pods, pod(fmt.Sprintf("x%d-%d", i, j), withGPUs(catalog.ResourceNVIDIAGPU, 1)))
		}
		nodes = append(nodes, nodeInfo(t4Node("n"+strconv.Itoa(i), []int64{1, 2, 4}[i%3], i%5 == 0, i%7 == 0), pods...))
	}
	for _, p := range []*corev1.Pod{pod("cpu"), pod("gpu1", withGPUs(catalog.ResourceNVIDIAGPU, 1)), pod("share", withShare("400"))} {
		scores, statuses := schedule(t, pl, p, nil, nodes...)
		c := &cycle{pod: kube.PodRequest(p)}
		var names []string
		var cands []model.Candidate
		for _, ni := range nodes {
			if statuses[ni.Node().Name].IsSuccess() {
				cand, ok := pl.candidate(c, ni)
				if !ok {
					t.Fatalf("%s: node %s not priced", p.Name, ni.Node().Name)
				}
				names, cands = append(names, ni.Node().Name), append(cands, cand)
			}
		}
		if len(cands) < 3 {
			t.Fatalf("%s: only %d feasible nodes", p.Name, len(cands))
		}
		combined := model.CombinedScores(cands, model.Preferences{}, pl.weights, nil)
		best := slices.Max(combined)
		want := map[string]int64{}
		for i, s := range combined {
			want[names[i]] = min(fwk.MaxScore-1, int64(math.Round(s)))
			if s >= best-1e-9 {
				want[names[i]] = fwk.MaxScore
			}
		}
		if diff := cmp.Diff(want, scores); diff != "" {
			t.Errorf("%s: scores (-model +plugin):\n%s", p.Name, diff)
		}
	}
}

func TestScorePreferences(t *testing.T) {
	pl := testPlugin(t)
	busy := func(n *corev1.Node) *framework.NodeInfo {
		return nodeInfo(n, pod("x-"+n.Name, withShare("100"), withDevice("3")))
	}
	p := pod("p", withGPUs(catalog.ResourceNVIDIAGPU, 1))
	// Waking a node costs its price: the spot node, cheaper, wins without any preference.
	scores, _ := schedule(t, pl, p, nil, nodeInfo(t4Node("od", 4, false, false)), nodeInfo(t4Node("spot", 4, true, false)))
	if scores["spot"] <= scores["od"] {
		t.Errorf("waking the cheaper spot node should win: %v", scores)
	}
	// Running nodes cost nothing more: they tie until a preference decides.
	od, spot, green := busy(t4Node("od", 4, false, false)), busy(t4Node("spot", 4, true, false)), busy(t4Node("green", 4, false, true))
	scores, _ = schedule(t, pl, p, nil, od, spot, green)
	if scores["spot"] != scores["od"] || scores["green"] != scores["od"] {
		t.Errorf("running nodes should tie without preferences: %v", scores)
	}
	scores, _ = schedule(t, pl, p, func(c *cycle) { c.policy.Prefs.Green = true }, od, spot, green)
	if scores["green"] <= scores["od"] || scores["green"] <= scores["spot"] {
		t.Errorf("preferGreen: %v", scores)
	}
	scores, _ = schedule(t, pl, p, func(c *cycle) { c.policy.Prefs.Spot = true }, od, spot, green)
	if scores["spot"] <= scores["od"] || scores["spot"] <= scores["green"] {
		t.Errorf("preferSpot: %v", scores)
	}
}

func TestFragmentationAwarePacking(t *testing.T) {
	pl := testPlugin(t)
	partly := nodeInfo(t4Node("partly", 4, false, false), pod("x", withShare("540"), withDevice("0")))
	empty := nodeInfo(t4Node("empty", 4, false, false), pod("y", withGPUs(catalog.ResourceNVIDIAGPU, 1)))
	scores, _ := schedule(t, pl, pod("p", withShare("460")), nil, partly, empty)
	if scores["partly"] <= scores["empty"] {
		t.Errorf("a 460 share should fill the device with 460 free rather than start a new one: %v", scores)
	}
}

func TestFilterLimitsAndShares(t *testing.T) {
	pl := testPlugin(t)
	full := nodeInfo(t4Node("full", 1, false, false), pod("x", withShare("700"), withDevice("0")))
	free := nodeInfo(t4Node("free", 1, true, false))
	_, st := schedule(t, pl, pod("p", withShare("400")), nil, full, free)
	if st["full"].IsSuccess() || !strings.Contains(st["full"].Message(), "no device with 400 milli-GPU free") || !st["free"].IsSuccess() {
		t.Errorf("share filter: full=%v free=%v", st["full"], st["free"])
	}
	_, st = schedule(t, pl, pod("p", withGPUs(catalog.ResourceNVIDIAGPU, 1)), func(c *cycle) {
		c.limits = []model.Limit{{Source: "WorkloadOptimizer ns/w maxCostPerHour", Kind: model.LimitCostPerHour, Cap: 0.5}}
	}, free)
	if st["free"].Code() != fwk.Unschedulable || !strings.Contains(st["free"].Message(), "WorkloadOptimizer ns/w maxCostPerHour: hourly cost cap 0.50 USD/h exceeded") {
		t.Errorf("cost cap: %v", st["free"])
	}
	_, st = schedule(t, pl, pod("p"), func(c *cycle) { c.policy.Spot, c.policy.SpotSource = model.SpotAvoided, "CostPolicy p" }, free)
	if st["free"].IsSuccess() || !strings.Contains(st["free"].Message(), "CostPolicy p: spot capacity avoided") {
		t.Errorf("spot avoid: %v", st["free"])
	}
}

// benchSetup is a plugin and 1,000 four-GPU nodes,
// half of them spot, and a one-GPU pod.
func benchSetup() (*Plugin, []fwk.NodeInfo, *corev1.Pod) {
	args, _ := config.Decode(nil)
	pl, _ := newPlugin(context.Background(), args, nil, catalog.Default())
	var infos []fwk.NodeInfo
	for i := 0; i < 1000; i++ {
		infos = append(infos, nodeInfo(t4Node("n"+strconv.Itoa(i), 4, i%2 == 0, false)))
	}
	return pl, infos, pod("p", withGPUs(catalog.ResourceNVIDIAGPU, 1))
}

// BenchmarkScoring times what the framework calls to score every feasible node: PreScore, Score
// on every node and NormalizeScore (Filter, which gathers the ranges, ran before): with Filter's
// candidates handed over, and looked up again (the baseline, without the handoff), whose ratio
// the second prints. On 1,000 empty twins (which all tie, so the tie-break looks every node up
// anyway) and on 5,000 nodes of 1, 2 or 4 GPUs, 0-3 of them taken (whose lookups miss the cache).
func BenchmarkScoring(b *testing.B) {
	for _, fleet := range []string{"twins=1000", "varied=5000"} {
		var handed float64
		for _, mode := range []string{"handoff", "lookup"} {
			b.Run(fleet+"/"+mode, func(b *testing.B) {
				pl, infos, p := benchSetup()
				pl.cands = nil // every node is filtered and scored, as with the narrowing off
				if fleet == "varied=5000" {
					infos = variedFleet(5000)
				}
				ctx := context.Background()
				state := framework.NewCycleState()
				pl.PreFilter(ctx, state, p, infos)
				if mode == "lookup" {
					c, _ := read(state)
					c.handoff = handoff{}
				}
				for _, ni := range infos {
					pl.Filter(ctx, state, p, ni)
				}
				list := make(fwk.NodeScoreList, len(infos))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					pl.PreScore(ctx, state, p, infos)
					for j, ni := range infos {
						s, _ := pl.Score(ctx, state, p, ni)
						list[j] = fwk.NodeScore{Name: ni.Node().Name, Score: s}
					}
					pl.NormalizeScore(ctx, state, p, list)
				}
				perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				if mode == "handoff" {
					handed = perOp
				} else if handed > 0 {
					b.ReportMetric(perOp/handed, "lookup/handoff")
				}
			})
		}
	}
}

// variedFleet is n T4 nodes of 1, 2 or 4 GPUs, spot or not, with 0-3 GPUs taken (at most all).
func variedFleet(n int) []fwk.NodeInfo {
	var infos []fwk.NodeInfo
	for i := range n {
		gpus := []int64{1, 2, 4}[i%3]
		var pods []*corev1.Pod
		for j := range min(int64(i%4), gpus) {
			q := pod(fmt.Sprintf("w%d-%d", i, j), withGPUs(catalog.ResourceNVIDIAGPU, 1))
			q.Spec.NodeName = "v" + strconv.Itoa(i)
			pods = append(pods, q)
		}
		infos = append(infos, nodeInfo(t4Node("v"+strconv.Itoa(i), gpus, i%5 == 0, false), pods...))
	}
	return infos
}

func BenchmarkFilter1000(b *testing.B) {
	pl, infos, p := benchSetup()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		state := framework.NewCycleState()
		pl.PreFilter(ctx, state, p, infos)
		for _, ni := range infos {
			pl.Filter(ctx, state, p, ni)
		}
	}
}

func TestCandidateNodes(t *testing.T) {
	pl := testPlugin(t)
	busy := nodeInfo(t4Node("busy", 1, false, false), pod("x", withGPUs(catalog.ResourceNVIDIAGPU, 1)))
	roomy := nodeInfo(t4Node("roomy", 4, false, false), pod("y", withGPUs(catalog.ResourceNVIDIAGPU, 1)))
	shared := nodeInfo(t4Node("shared", 1, false, false), pod("z", withShare("700"), withDevice("0")))
	var infos []fwk.NodeInfo
	infos = append(infos, busy, roomy, shared)
	for i := 0; i < 5; i++ {
		infos = append(infos, nodeInfo(t4Node("od-"+strconv.Itoa(i), 4, false, false)), nodeInfo(t4Node("spot-"+strconv.Itoa(i), 4, true, false)))
	}
	candidates := func(p *corev1.Pod, nodes []fwk.NodeInfo) []string {
		req := kube.PodRequest(p)
		if names := pl.cands.candidates(pl, p, &req, nodes); names != nil {
			return sets.List(names)
		}
		return nil
	}
	p := pod("p", withGPUs(catalog.ResourceNVIDIAGPU, 1))
	for _, tc := range []struct {
		name  string
		pod   *corev1.Pod
		nodes []fwk.NodeInfo
		want  []string // nil: every node
	}{
		// running nodes with room, two empty nodes of each shape; not the full one ("shared" has its
		// nvidia.com/gpu free: shares are not counted in the resource, as the filters see it)
		{"whole GPU", p, infos, []string{"od-0", "od-1", "roomy", "shared", "spot-0", "spot-1"}},
		// the device with 300 milli free takes a 300 share, not a 400 one
		{"share that fits", pod("s", withShare("300")), infos, []string{"od-0", "od-1", "roomy", "shared", "spot-0", "spot-1"}},
		{"share that does not fit", pod("s", withShare("400")), infos, []string{"od-0", "od-1", "roomy", "spot-0", "spot-1"}},
		// no node has room: every node, so that the event says why for each
		{"fits nowhere", p, []fwk.NodeInfo{busy, nodeInfo(t4Node("full", 1, false, false), pod("w", withGPUs(catalog.ResourceNVIDIAGPU, 1))), roomy}[:2], nil},
		{"host-pinned", func() *corev1.Pod {
			q := p.DeepCopy()
			q.Spec.NodeSelector = map[string]string{corev1.LabelHostname: "od-4"}
			return q
		}(), infos, nil},
		// nvidia.com/gpu nodes only: whether amd.com/gpu can be served is for the filters to say
		{"accelerator no node has", pod("a", withGPUs(catalog.ResourceAMDGPU, 1)), infos, nil},
		{"failed before", func() *corev1.Pod {
			q := p.DeepCopy()
			q.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable}}
			return q
		}(), infos, nil},
	} {
		if diff := cmp.Diff(tc.want, candidates(tc.pod, tc.nodes)); diff != "" {
			t.Errorf("%s: candidates (-want +got):\n%s", tc.name, diff)
		}
	}
	// A node whose pods change is seen anew in the next cycle.
	roomy.AddPod(pod("y2", withGPUs(catalog.ResourceNVIDIAGPU, 3)))
	if diff := cmp.Diff([]string{"od-0", "od-1", "shared", "spot-0", "spot-1"}, candidates(p, infos)); diff != "" {
		t.Errorf("after roomy filled up (-want +got):\n%s", diff)
	}
}

func BenchmarkPreFilter1000(b *testing.B) {
	pl, infos, p := benchSetup()
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		pl.PreFilter(ctx, framework.NewCycleState(), p, infos)
	}
}

func TestTypedTransform(t *testing.T) {
	transform := typed[kcloudv1alpha1.CostPolicy](klog.Background(), "costpolicies")
	good := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "kcloud.io/v1alpha1", "kind": "CostPolicy",
		"metadata": map[string]any{"name": "cap"}, "spec": map[string]any{"maxCostPerHour": 3.5}}}
	got, err := transform(good)
	if err != nil {
		t.Fatal(err)
	}
	cp, ok := got.(*kcloudv1alpha1.CostPolicy)
	if !ok || cp.Name != "cap" || cp.Spec.MaxCostPerHour == nil || *cp.Spec.MaxCostPerHour != 3.5 {
		t.Errorf("converted policy: %#v", got)
	}
	bad := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "kcloud.io/v1alpha1", "kind": "CostPolicy",
		"metadata": map[string]any{"name": "bad"}, "spec": map[string]any{"maxCostPerHour": "a lot"}}}
	if got, err := transform(bad); err != nil || got != bad {
		t.Errorf("an object that does not convert should stay as it came: %v, %v", got, err)
	}
}
