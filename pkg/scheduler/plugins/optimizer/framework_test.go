package optimizer

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/scheduler/apis/config"
	"kcloud.io/optimizer/pkg/scheduler/internal/schedtest"
	"kcloud.io/optimizer/pkg/scheduler/nodeview"
	"kcloud.io/optimizer/pkg/scheduler/plugins/gang"
	"kcloud.io/optimizer/pkg/scheduler/plugins/gpushare"
)

var (
	scorePlugin = schedtest.Plugin{Name: Name, New: New, Points: []string{"PreFilter", "Filter", "PreScore", "Score"}}
	sharePlugin = schedtest.Plugin{Name: gpushare.Name, New: gpushare.New, Points: []string{"PreFilter", "Filter", "Reserve", "PreBind"}}
	gangPlugin  = schedtest.Plugin{Name: gang.Name, New: gang.New, Points: []string{"Permit"}}
)

// runCycle runs a scheduling cycle's PreFilter, Filter, PreScore and Score through the framework and
// returns the feasible nodes' scores and every node's Filter status.
func runCycle(t *testing.T, fw framework.Framework, state fwk.CycleState, p *corev1.Pod) (map[string]int64, map[string]*fwk.Status) {
	t.Helper()
	ctx := context.Background()
	res, st, _ := fw.RunPreFilterPlugins(ctx, state, p)
	if !st.IsSuccess() {
		t.Fatal(st)
	}
	infos, _ := fw.SnapshotSharedLister().NodeInfos().List()
	statuses := map[string]*fwk.Status{}
	var feasible []fwk.NodeInfo
	for _, ni := range infos {
		// Every node is filtered, so that its status can be read; only PreFilter's are scored.
		statuses[ni.Node().Name] = fw.RunFilterPlugins(ctx, state, p, ni)
		offered := res == nil || res.AllNodes() || res.NodeNames.Has(ni.Node().Name)
		if offered && statuses[ni.Node().Name].IsSuccess() {
			feasible = append(feasible, ni)
		}
	}
	if st := fw.RunPreScorePlugins(ctx, state, p, feasible); !st.IsSuccess() {
		t.Fatal(st)
	}
	scores := map[string]int64{}
	list, st := fw.RunScorePlugins(ctx, state, p, feasible)
	if !st.IsSuccess() {
		t.Fatal(st)
	}
	for _, ns := range list {
		scores[ns.Name] = ns.TotalScore
	}
	return scores, statuses
}

// KcloudOptimizer enabled alone in a profile scores and filters; a share pod (no KcloudGPUShare to
// bind it) is still refused where no device has room, rather than priced where it cannot go.
func TestOptimizerAlone(t *testing.T) {
	full := t4Node("full", 1, false, false)
	used := pod("x", withShare("700"), withDevice("0"))
	used.Spec.NodeName = "full"
	nodes := []*corev1.Node{t4Node("od", 4, false, false), t4Node("spot", 4, true, false), full}
	fw := schedtest.NewFramework(t, fake.NewClientset(), nodes, []*corev1.Pod{used}, scorePlugin)

	scores, _ := runCycle(t, fw, framework.NewCycleState(), pod("p", withGPUs(catalog.ResourceNVIDIAGPU, 1)))
	if scores["spot"] <= scores["od"] {
		t.Errorf("waking the cheaper spot node should win: %v", scores)
	}
	_, st := runCycle(t, fw, framework.NewCycleState(), pod("s", withShare("400")))
	if st["full"].IsSuccess() || !strings.Contains(st["full"].Message(), "no device with 400 milli-GPU free") {
		t.Errorf("a 400 share on a device with 300 free: %v", st["full"])
	}
}

// The three plugins in one profile, as config/scheduler enables them: the score packs the share
// where it fragments least, KcloudGPUShare holds the device in the profile's one node view (the
// score plugin's, found through the framework handle) and writes it on the pod, and KcloudGang
// lets a pod without a gang through.
func TestAllPluginsShareOneNodeView(t *testing.T) {
	ctx := context.Background()
	partly := t4Node("partly", 4, false, false)
	onPartly := pod("x", withShare("540"), withDevice("0"))
	onPartly.Spec.NodeName = "partly"
	empty := t4Node("empty", 4, false, false)
	onEmpty := pod("y", withGPUs(catalog.ResourceNVIDIAGPU, 1))
	onEmpty.Spec.NodeName = "empty"
	p := pod("p", withShare("460"))
	cs := fake.NewClientset(p)
	fw := schedtest.NewFramework(t, cs, []*corev1.Node{partly, empty}, []*corev1.Pod{onPartly, onEmpty}, sharePlugin, scorePlugin, gangPlugin)

	state := framework.NewCycleState()
	scores, _ := runCycle(t, fw, state, p)
	if scores["partly"] <= scores["empty"] {
		t.Fatalf("a 460 share should fill the device with 460 free: %v", scores)
	}
	if st := fw.RunReservePluginsReserve(ctx, state, p, "partly"); !st.IsSuccess() {
		t.Fatal(st)
	}
	view, err := nodeview.For(fw, catalog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if node, device, ok := view.Held(p.UID); !ok || node != "partly" || device != 0 {
		t.Errorf("held in the profile's view: %s/%d (%v), want partly/0", node, device, ok)
	}
	if _, st := fw.RunPermitPlugins(ctx, state, p, "partly"); !st.IsSuccess() {
		t.Errorf("Permit for a pod without a gang: %v", st)
	}
	if st := fw.RunPreBindPlugins(ctx, state, p, "partly"); !st.IsSuccess() {
		t.Fatal(st)
	}
	got, _ := cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	if d := got.Annotations[kube.AnnotationGPUIndex]; d != "0" {
		t.Errorf("device written: %q, want 0", d)
	}
}

// Nodes tied on the best score (here a CPU pod on running nodes, where it costs nothing more and
// fragments nothing) are told apart by model.TieRank under the configured seed, as the simulator
// tells them apart: only the lowest-ranked score 100, and identical nodes rank alike.
func TestTiesGoToTheLowestTieRank(t *testing.T) {
	var nodes []*corev1.Node
	var pods []*corev1.Pod
	var infos []*framework.NodeInfo
	for i, gpus := range []int64{2, 4, 4, 8} {
		n := t4Node(fmt.Sprintf("n%d", i), gpus, false, false)
		x := pod(fmt.Sprintf("x%d", i), withGPUs(catalog.ResourceNVIDIAGPU, 1))
		x.Spec.NodeName = n.Name
		nodes, pods, infos = append(nodes, n), append(pods, x), append(infos, nodeInfo(n, x))
	}
	p := pod("p")
	// Without a framework handle every tied node scores 100: all four tie.
	alone, _ := schedule(t, testPlugin(t), p, nil, infos...)
	for _, n := range nodes {
		if alone[n.Name] != fwk.MaxScore {
			t.Fatalf("want all four nodes tied: %v", alone)
		}
	}
	fw := schedtest.NewFramework(t, fake.NewClientset(), nodes, pods, scorePlugin)
	scores, _ := runCycle(t, fw, framework.NewCycleState(), p)
	view, err := nodeview.For(fw, catalog.Default())
	if err != nil {
		t.Fatal(err)
	}
	ranks := map[string]uint64{}
	lowest := uint64(math.MaxUint64)
	for i, n := range nodes {
		f := view.Facts(n)
		ranks[n.Name] = model.TieRank(config.DefaultTieBreakSeed, &view.View(infos[i], f).Node, &f.Econ)
		lowest = min(lowest, ranks[n.Name])
	}
	if ranks["n1"] != ranks["n2"] || ranks["n0"] == ranks["n1"] || ranks["n1"] == ranks["n3"] {
		t.Fatalf("identical nodes n1 and n2 should rank alike, unlike ones apart: %v", ranks)
	}
	for _, n := range nodes {
		if win := ranks[n.Name] == lowest; win != (scores[n.Name] == fwk.MaxScore) {
			t.Errorf("node %s: rank %d (lowest %d), score %d; want 100 only for the lowest rank: %v", n.Name, ranks[n.Name], lowest, scores[n.Name], scores)
		}
	}
}
