package kube

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"kcloud.io/optimizer/pkg/model"
)

func TestOccupy(t *testing.T) {
	pod := func(name string, cpu string, gpus int64, annotations map[string]string, phase corev1.PodPhase) *corev1.Pod {
		req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("1Gi")}
		if gpus > 0 {
			req["nvidia.com/gpu"] = *resource.NewQuantity(gpus, resource.DecimalSI)
		}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name), Annotations: annotations},
			Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: req}}}},
			Status: corev1.PodStatus{Phase: phase}}
	}
	share := func(milli, index string) map[string]string {
		a := map[string]string{AnnotationGPUMilli: milli}
		if index != "" {
			a[AnnotationGPUIndex] = index
		}
		return a
	}
	type counted struct {
		Pod    string
		Device int
		Whole  []int
	}
	tests := []struct {
		name      string
		pods      []*corev1.Pod
		pending   map[string]int
		free      [4]int64 // milli-GPUs free per device after
		cpuFree   int64
		pods_     int
		uncounted int
		counted   []counted
	}{
		{
			name: "a share on its written device, a whole pod on the first device without shares",
			// The whole pod comes first in the list: shares are still counted first, so it does
			// not take device 0, which the share holds.
			pods:    []*corev1.Pod{pod("whole", "1", 1, nil, corev1.PodRunning), pod("s", "500m", 0, share("300", "0"), corev1.PodRunning)},
			free:    [4]int64{700, 0, 1000, 1000},
			cpuFree: 16000 - 1500, pods_: 2,
			counted: []counted{{"s", 0, nil}, {"whole", -1, []int{1}}},
		},
		{
			name:    "an unannotated share goes where the scheduler reserved it, else best fit",
			pods:    []*corev1.Pod{pod("a", "1", 0, share("600", "2"), corev1.PodRunning), pod("b", "1", 0, share("300", ""), corev1.PodRunning), pod("c", "1", 0, share("300", ""), corev1.PodRunning)},
			pending: map[string]int{"b": 3},
			// c has nothing pending: best fit is device 2 (400 free), the fullest that holds it.
			free:    [4]int64{1000, 1000, 100, 700},
			cpuFree: 13000, pods_: 3,
			counted: []counted{{"a", 2, nil}, {"b", 3, nil}, {"c", 2, nil}},
		},
		{
			name: "a written device that no longer holds the share falls back to best fit",
			pods: []*corev1.Pod{pod("a", "1", 0, share("800", "1"), corev1.PodRunning), pod("b", "1", 0, share("500", "1"), corev1.PodRunning), pod("c", "1", 0, share("100", "9"), corev1.PodRunning)},
			// c's device 9 does not exist: best fit is device 1, 200 left after a.
			free:    [4]int64{500, 100, 1000, 1000},
			cpuFree: 13000, pods_: 3,
			counted: []counted{{"a", 1, nil}, {"b", 0, nil}, {"c", 1, nil}},
		},
		{
			name:    "finished pods hold nothing; an overcommitted whole pod is not counted",
			pods:    []*corev1.Pod{pod("done", "4", 4, nil, corev1.PodSucceeded), pod("big", "2", 3, nil, corev1.PodRunning), pod("more", "2", 2, nil, corev1.PodRunning), pod("cpu", "8", 0, nil, corev1.PodPending)},
			free:    [4]int64{0, 0, 0, 1000},
			cpuFree: 16000 - 10000, pods_: 2, uncounted: 1,
			counted: []counted{{"big", -1, []int{0, 1, 2}}, {"cpu", -1, nil}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := model.NewNode("A100", 16000, 65536, 4)
			var got []counted
			uncounted := Occupy(&n, slices.Values(tt.pods), OccupyOptions{
				PendingDevice: func(p *corev1.Pod) (int, bool) { d, ok := tt.pending[p.Name]; return d, ok },
				Counted: func(p *corev1.Pod, _ model.Pod, a model.Allocation) {
					got = append(got, counted{p.Name, a.Device, slices.Clone(a.Whole)})
				},
			})
			if uncounted != tt.uncounted {
				t.Errorf("uncounted = %d, want %d", uncounted, tt.uncounted)
			}
			if diff := cmp.Diff(tt.free[:], n.DeviceFree[:4]); diff != "" {
				t.Errorf("device free (-want +got):\n%s", diff)
			}
			if n.CPUFree != tt.cpuFree || n.Pods != tt.pods_ {
				t.Errorf("cpu free %d pods %d, want %d %d", n.CPUFree, n.Pods, tt.cpuFree, tt.pods_)
			}
			if diff := cmp.Diff(tt.counted, got); diff != "" {
				t.Errorf("counted (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompareAdmission(t *testing.T) {
	at := func(ns, name string, minute int) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, minute, 0, 0, time.UTC))}}
	}
	tests := []struct {
		name string
		a, b *corev1.Pod
		want int
	}{
		{"the older pod first", at("z", "z", 1), at("a", "a", 2), -1},
		{"the newer pod last", at("a", "a", 3), at("z", "z", 2), 1},
		{"same time: by namespace", at("a", "z", 1), at("b", "a", 1), -1},
		{"same time and namespace: by name", at("a", "b", 1), at("a", "a", 1), 1},
		{"the same pod", at("a", "a", 1), at("a", "a", 1), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CompareAdmission(tc.a, tc.b); got != tc.want {
				t.Errorf("CompareAdmission = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestNodeOverhead(t *testing.T) {
	owned := func(apiVersion, kind string, controller bool) *corev1.Pod {
		c := controller
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "x", Controller: &c}}}}
	}
	annotated := func(k, v string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{k: v}}}
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"a DaemonSet's pod", owned("apps/v1", "DaemonSet", true), true},
		{"a static pod's mirror", annotated(corev1.MirrorPodAnnotationKey, "abc"), true},
		{"a static pod owned by its Node", owned("v1", "Node", true), true},
		{"the cluster autoscaler's daemonset-pod annotation", annotated(AnnotationDaemonSetPod, "true"), true},
		{"that annotation set to false", annotated(AnnotationDaemonSetPod, "false"), false},
		{"a ReplicaSet's pod", owned("apps/v1", "ReplicaSet", true), false},
		{"a Job's pod", owned("batch/v1", "Job", true), false},
		{"a DaemonSet that is not the controller", owned("apps/v1", "DaemonSet", false), false},
		{"a kind named DaemonSet in another group", owned("example.com/v1", "DaemonSet", true), false},
		{"a bare pod", &corev1.Pod{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NodeOverhead(tc.pod); got != tc.want {
				t.Errorf("NodeOverhead = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestOccupyNodeOverhead: a node that runs only DaemonSet and static pods is empty; their requests
// take room, and a workload's share stays a share of the node's allocatable.
func TestOccupyNodeOverhead(t *testing.T) {
	ctrl := true
	daemon := func(name, cpu, mem string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: name, Controller: &ctrl}}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	}
	mirror := daemon("kube-proxy", "100m", "128Mi")
	mirror.OwnerReferences = nil
	mirror.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "hash"}
	daemons := []*corev1.Pod{daemon("dcgm-exporter", "100m", "512Mi"), daemon("node-exporter", "200m", "384Mi"), mirror}

	n := model.NewNode("A100", 16000, 65536, 4)
	var counted []string
	uncounted := Occupy(&n, slices.Values(daemons), OccupyOptions{Counted: func(p *corev1.Pod, _ model.Pod, _ model.Allocation) {
		counted = append(counted, p.Name)
	}})
	// 100m + 200m + 100m of CPU and 512 + 384 + 128 MiB are taken; the node stays empty.
	want := model.NewNode("A100", 16000, 65536, 4)
	want.CPUFree, want.MemoryFree = 16000-400, 65536-1024
	if diff := cmp.Diff(want, n); diff != "" || uncounted != 0 || len(counted) != 0 {
		t.Errorf("a node with only daemons (-want +got):\n%s\nuncounted %d, counted %v", diff, uncounted, counted)
	}
	if n.Active() {
		t.Error("a node that runs only DaemonSet and static pods is active")
	}

	// One workload pod wakes it; its share is of the 16 allocatable CPUs.
	work := daemon("train", "8", "1Gi")
	work.OwnerReferences = nil
	n = model.NewNode("A100", 16000, 65536, 4)
	Occupy(&n, slices.Values(append(daemons, work)), OccupyOptions{})
	if !n.Active() || n.Pods != 1 || n.CPUFree != 16000-400-8000 {
		t.Errorf("with one workload pod: active %v, pods %d, CPU free %d; want true, 1, 7600", n.Active(), n.Pods, n.CPUFree)
	}
	if got := model.PodShare(&model.Pod{CPUMilli: 8000, MemoryMiB: 1024}, &n); got != 0.5 {
		t.Errorf("PodShare of 8 CPUs = %g, want 0.5 of the 16 allocatable", got)
	}
}
