package optimizer

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// reserve writes a rebalancing reservation of one GPU for WorkloadOptimizer ns/web on a node.
func reserve(n *corev1.Node, since, expires time.Time) *corev1.Node {
	evicted := pod("web-old", withGPUs(catalog.ResourceNVIDIAGPU, 1))
	r := kube.NewReservation(evicted, "web", model.Pod{CPUMilli: 2000, MemoryMiB: 4096, GPUCount: 1, GPUMilli: 1000}, since, expires)
	n.Annotations = map[string]string{r.Key: r.Value()}
	return n
}

func ofWorkload(wo string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Labels[kube.LabelOptimizer] = wo }
}

func TestRebalancingReservations(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	pl := testPlugin(t)
	pl.now = func() time.Time { return now }
	reserved := nodeInfo(reserve(t4Node("reserved", 1, false, false), now.Add(-time.Minute), now.Add(5*time.Minute)))
	// The spot node is cheaper: without the reservation every pod would go there.
	spot := nodeInfo(t4Node("spot", 1, true, false))

	// The workload's replacement scores only the reserved node.
	scores, st := schedule(t, pl, pod("web-new", ofWorkload("web"), withGPUs(catalog.ResourceNVIDIAGPU, 1)), nil, reserved, spot)
	if !st["reserved"].IsSuccess() || scores["reserved"] != fwk.MaxScore || scores["spot"] != 0 {
		t.Errorf("the workload's pod: scores %v, statuses %v; want the reserved node 100, the other 0", scores, st)
	}
	// Another workload's pod is kept off the reserved room, and told why.
	_, st = schedule(t, pl, pod("db-0", ofWorkload("db"), withGPUs(catalog.ResourceNVIDIAGPU, 1)), nil, reserved, spot)
	if st["reserved"].Code() != fwk.Unschedulable || !strings.Contains(st["reserved"].Message(), "room reserved by the rebalancer for WorkloadOptimizer ns/web until 10:05:00Z") ||
		!st["spot"].IsSuccess() {
		t.Errorf("another workload's pod: statuses %v", st)
	}
	// A pod that fits beside the reservation may use the rest of the node.
	big := nodeInfo(reserve(t4Node("big", 4, false, false), now.Add(-time.Minute), now.Add(5*time.Minute)))
	_, st = schedule(t, pl, pod("db-1", ofWorkload("db"), withGPUs(catalog.ResourceNVIDIAGPU, 3)), nil, big)
	if !st["big"].IsSuccess() {
		t.Errorf("3 GPUs beside a 1-GPU reservation on a 4-GPU node: %v", st["big"])
	}
	_, st = schedule(t, pl, pod("db-2", ofWorkload("db"), withGPUs(catalog.ResourceNVIDIAGPU, 4)), nil, big)
	if st["big"].IsSuccess() {
		t.Error("4 GPUs on a 4-GPU node with 1 reserved: want refused")
	}

	// Consumed: a pod of the workload created after the reservation runs there.
	replacement := pod("web-new", ofWorkload("web"), withGPUs(catalog.ResourceNVIDIAGPU, 1))
	replacement.CreationTimestamp = metav1.NewTime(now)
	consumed := nodeInfo(reserve(t4Node("consumed", 2, false, false), now.Add(-time.Minute), now.Add(5*time.Minute)), replacement)
	_, st = schedule(t, pl, pod("db-3", ofWorkload("db"), withGPUs(catalog.ResourceNVIDIAGPU, 1)), nil, consumed)
	if !st["consumed"].IsSuccess() {
		t.Errorf("a consumed reservation still holds room: %v", st["consumed"])
	}
	// Expired: the room is free again and the workload's pod is no longer steered.
	pl.now = func() time.Time { return now.Add(6 * time.Minute) }
	_, st = schedule(t, pl, pod("db-4", ofWorkload("db"), withGPUs(catalog.ResourceNVIDIAGPU, 1)), nil, reserved, spot)
	if !st["reserved"].IsSuccess() {
		t.Errorf("an expired reservation still holds room: %v", st["reserved"])
	}
	scores, _ = schedule(t, pl, pod("web-late", ofWorkload("web"), withGPUs(catalog.ResourceNVIDIAGPU, 1)), nil, reserved, spot)
	if scores["spot"] <= scores["reserved"] {
		t.Errorf("after expiry the cheaper spot node should win again: %v", scores)
	}
}

// A reserved empty node stays among PreFilter's candidates even when identical empty nodes are
// left out, so that the replacement can land there.
func TestCandidatesKeepReservedNodes(t *testing.T) {
	now := time.Now()
	pl := testPlugin(t)
	var infos []fwk.NodeInfo
	for _, name := range []string{"a", "b", "c", "d"} {
		infos = append(infos, nodeInfo(t4Node(name, 1, false, false)))
	}
	infos = append(infos, nodeInfo(t4Node("busy", 4, false, false), pod("x", withGPUs(catalog.ResourceNVIDIAGPU, 1))))
	last := t4Node("e", 1, false, false)
	infos = append(infos, nodeInfo(reserve(last, now.Add(-time.Minute), now.Add(time.Minute))))
	p := pod("web-new", ofWorkload("web"), withGPUs(catalog.ResourceNVIDIAGPU, 1))
	names := pl.cands.candidates(pl, p, new(kube.PodRequest(p)), infos)
	if names == nil || !names.Has("e") || names.Has("c") {
		t.Errorf("candidates %v: want the reserved node e kept and the third empty twin c left out", names)
	}
}
