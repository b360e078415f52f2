package cluster

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
)

// a100Node is an eight-A100 p4d.24xlarge in us-east-1, Ready unless told otherwise.
func a100Node(name string, ready, cordoned bool) *corev1.Node {
	rl := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("96"), corev1.ResourceMemory: resource.MustParse("1152Gi"),
		catalog.ResourceNVIDIAGPU: resource.MustParse("8")}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1", Labels: map[string]string{catalog.LabelInstanceType: "p4d.24xlarge",
			catalog.LabelRegion: "us-east-1", catalog.LabelNVIDIAGPUProduct: "NVIDIA-A100-SXM4-40GB"}},
		Spec:   corev1.NodeSpec{Unschedulable: cordoned},
		Status: corev1.NodeStatus{Allocatable: rl, Capacity: rl, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}},
	}
}

// gpuPod is a pod on a node asking for whole GPUs, or for a share (milli > 0) on a device (index
// >= 0, or none written when negative).
func gpuPod(name, node string, phase corev1.PodPhase, gpus, milli, index int) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: name, UID: types.UID(name), ResourceVersion: "1", Annotations: map[string]string{}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}}}}},
		Status: corev1.PodStatus{Phase: phase},
	}
	if gpus > 0 {
		q := resource.MustParse(strconv.Itoa(gpus))
		p.Spec.Containers[0].Resources.Requests[catalog.ResourceNVIDIAGPU] = q
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{catalog.ResourceNVIDIAGPU: q}
	}
	if milli > 0 {
		p.Annotations[kube.AnnotationGPUMilli] = strconv.Itoa(milli)
	}
	if index >= 0 {
		p.Annotations[kube.AnnotationGPUIndex] = strconv.Itoa(index)
	}
	return p
}

// createdAt sets a pod's creation time to minute m of a fixed day.
func createdAt(p *corev1.Pod, m int) *corev1.Pod {
	p.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, m, 0, 0, time.UTC))
	return p
}

// testFleet is a fleet over informer-like stores holding the given objects.
func testFleet(t *testing.T, clk *clocktesting.FakeClock, maxAge time.Duration, nodes []*corev1.Node, pods []*corev1.Pod) (*Fleet, toolscache.Indexer) {
	t.Helper()
	nodeIdx := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	podIdx := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	for _, n := range nodes {
		if err := nodeIdx.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pods {
		if err := podIdx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	f := New(nil, Options{Clock: clk, SnapshotMaxAge: maxAge, Pods: IndexerStore{Indexer: podIdx}, Nodes: IndexerStore{Indexer: nodeIdx}})
	return f, podIdx
}

func TestSnapshotCountsPodsAsOccupy(t *testing.T) {
	const running = corev1.PodRunning
	tests := []struct {
		name  string
		nodes []*corev1.Node
		pods  []*corev1.Pod
		want  map[types.UID]PlacedPod
		// free milli-GPUs of the first node's devices after counting
		wantFree []int64
	}{{
		name:  "shares on their written device, else best fit, before whole devices",
		nodes: []*corev1.Node{a100Node("a", true, false)},
		pods: []*corev1.Pod{
			gpuPod("whole", "a", running, 6, 0, -1),
			gpuPod("share-on-3", "a", running, 0, 500, 3),
			gpuPod("share-best-fit", "a", running, 0, 400, -1),
		},
		want: map[types.UID]PlacedPod{"share-on-3": {Node: 0, Device: 3}, "share-best-fit": {Node: 0, Device: 3},
			"whole": {Node: 0, Device: -1}},
		wantFree: []int64{0, 0, 0, 100, 0, 0, 0, 1000},
	}, {
		name:  "finished pods hold nothing; an overcommitting whole-device pod is not counted",
		nodes: []*corev1.Node{a100Node("a", true, false)},
		pods: []*corev1.Pod{
			gpuPod("done", "a", corev1.PodSucceeded, 8, 0, -1),
			gpuPod("seven", "a", running, 7, 0, -1),
			gpuPod("two-more", "a", running, 2, 0, -1),
		},
		want:     map[types.UID]PlacedPod{"seven": {Node: 0, Device: -1}},
		wantFree: []int64{0, 0, 0, 0, 0, 0, 0, 1000},
	}, {
		name:  "on an overcommitted node the pods created first hold the devices",
		nodes: []*corev1.Node{a100Node("a", true, false)},
		pods: []*corev1.Pod{
			createdAt(gpuPod("seven", "a", running, 7, 0, -1), 2),
			createdAt(gpuPod("two-more", "a", running, 2, 0, -1), 1),
		},
		want:     map[types.UID]PlacedPod{"two-more": {Node: 0, Device: -1}},
		wantFree: []int64{0, 0, 1000, 1000, 1000, 1000, 1000, 1000},
	}, {
		name:  "cordoned and not-ready nodes are left out, and so are their pods",
		nodes: []*corev1.Node{a100Node("a", true, false), a100Node("b", false, false), a100Node("c", true, true)},
		pods: []*corev1.Pod{
			gpuPod("on-a", "a", running, 1, 0, -1),
			gpuPod("on-b", "b", running, 1, 0, -1),
			gpuPod("on-c", "c", running, 1, 0, -1),
		},
		want:     map[types.UID]PlacedPod{"on-a": {Node: 0, Device: -1}},
		wantFree: []int64{0, 1000, 1000, 1000, 1000, 1000, 1000, 1000},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := testFleet(t, clocktesting.NewFakeClock(time.Now()), 0, tc.nodes, tc.pods)
			s, err := f.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, s.Placed); diff != "" {
				t.Errorf("Placed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"a"}, s.Names); diff != "" {
				t.Errorf("Names (-want +got):\n%s", diff)
			}
			n := s.Nodes[0]
			if diff := cmp.Diff(tc.wantFree, n.DeviceFree[:n.Devices]); diff != "" {
				t.Errorf("free milli-GPUs of node a (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSnapshotMaxAge(t *testing.T) {
	tests := []struct {
		name        string
		maxAge      time.Duration
		wantRebuilt bool
	}{
		{"the default reuses a snapshot while the clock stands still", 0, false},
		{"AlwaysRebuild rebuilds though the clock stands still", AlwaysRebuild, true},
		{"any negative age means AlwaysRebuild", -time.Hour, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
			f, pods := testFleet(t, clk, tc.maxAge, []*corev1.Node{a100Node("a", true, false)}, nil)
			ctx := context.Background()
			if _, err := f.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			if err := pods.Add(gpuPod("late", "a", corev1.PodRunning, 1, 0, -1)); err != nil {
				t.Fatal(err)
			}
			s, err := f.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, rebuilt := s.Placed["late"]; rebuilt != tc.wantRebuilt {
				t.Errorf("second snapshot counts the new pod: %v, want %v", rebuilt, tc.wantRebuilt)
			}
		})
	}
}
