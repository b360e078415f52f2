package gpushare

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/scheduler/internal/schedtest"
)

var sharePoints = []string{"PreFilter", "Filter", "Reserve", "PreBind"}

// KcloudGPUShare alone in a profile: Filter refuses the node without room for the share, Reserve
// picks the device that has it, PreBind writes that device on the pod, and the held device is
// seen by the next share before any annotation.
func TestShareAloneReservesAndWritesTheDevice(t *testing.T) {
	ctx := context.Background()
	// "partly" has 400 milli free on device 0 and device 1 whole; "full" has 300 free.
	partly := schedtest.T4Node("partly", 2, false, false)
	full := schedtest.T4Node("full", 1, false, false)
	onPartly := schedtest.Pod("x", schedtest.WithShare("600"), schedtest.WithDevice("0"))
	onPartly.Spec.NodeName = "partly"
	onFull := schedtest.Pod("y", schedtest.WithShare("700"), schedtest.WithDevice("0"))
	onFull.Spec.NodeName = "full"
	p := schedtest.Pod("p", schedtest.WithShare("500"))
	cs := fake.NewClientset(p)
	fw := schedtest.NewFramework(t, cs, []*corev1.Node{partly, full}, []*corev1.Pod{onPartly, onFull},
		schedtest.Plugin{Name: Name, New: New, Points: sharePoints})

	state := framework.NewCycleState()
	if _, st, _ := fw.RunPreFilterPlugins(ctx, state, p); !st.IsSuccess() {
		t.Fatal(st)
	}
	infos, _ := fw.SnapshotSharedLister().NodeInfos().List()
	for _, ni := range infos {
		st := fw.RunFilterPlugins(ctx, state, p, ni)
		switch ni.Node().Name {
		case "partly":
			if !st.IsSuccess() {
				t.Errorf("partly: %v, want its whole device to take the share", st)
			}
		case "full":
			if st.Code() != fwk.Unschedulable || !strings.Contains(st.Message(), "no device with 500 milli-GPU free") {
				t.Errorf("full: %v, want refused for want of a device", st)
			}
		}
	}
	if st := fw.RunReservePluginsReserve(ctx, state, p, "partly"); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := fw.RunPreBindPlugins(ctx, state, p, "partly"); !st.IsSuccess() {
		t.Fatal(st)
	}
	got, err := cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := got.Annotations[kube.AnnotationGPUIndex]; d != "1" {
		t.Errorf("device written on the pod: %q, want 1 (device 0 has 400 free)", d)
	}

	// The reserved pod, assumed on the node, holds device 1: a 600 share has no room left there.
	ni, _ := fw.SnapshotSharedLister().NodeInfos().Get("partly")
	assumed := p.DeepCopy()
	assumed.Spec.NodeName = "partly"
	ni.(*framework.NodeInfo).AddPod(assumed)
	q := schedtest.Pod("q", schedtest.WithShare("600"))
	state = framework.NewCycleState()
	fw.RunPreFilterPlugins(ctx, state, q)
	if st := fw.RunFilterPlugins(ctx, state, q, ni); st.IsSuccess() {
		t.Error("a 600 share fits beside the held 500 one and the 600 one")
	}

	// A share reserved then unreserved holds nothing: PreBind writes no device.
	r := schedtest.Pod("r", schedtest.WithShare("200"))
	if _, err := cs.CoreV1().Pods(r.Namespace).Create(ctx, r, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	state = framework.NewCycleState()
	fw.RunPreFilterPlugins(ctx, state, r)
	if st := fw.RunReservePluginsReserve(ctx, state, r, "partly"); !st.IsSuccess() {
		t.Fatal(st)
	}
	fw.RunReservePluginsUnreserve(ctx, state, r, "partly")
	if st := fw.RunPreBindPlugins(ctx, state, r, "partly"); !st.IsSuccess() {
		t.Fatal(st)
	}
	if got, _ := cs.CoreV1().Pods(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{}); got.Annotations[kube.AnnotationGPUIndex] != "" {
		t.Errorf("device %q written after Unreserve", got.Annotations[kube.AnnotationGPUIndex])
	}
}

// Pods without a share pass through every point of the plugin untouched.
func TestShareSkipsPodsWithoutAShare(t *testing.T) {
	ctx := context.Background()
	p := schedtest.Pod("p", schedtest.WithGPUs(catalog.ResourceNVIDIAGPU, 1))
	cs := fake.NewClientset(p)
	fw := schedtest.NewFramework(t, cs, []*corev1.Node{schedtest.T4Node("n", 1, false, false)}, nil,
		schedtest.Plugin{Name: Name, New: New, Points: sharePoints})
	state := framework.NewCycleState()
	if _, st, _ := fw.RunPreFilterPlugins(ctx, state, p); !st.IsSuccess() {
		t.Fatal(st)
	}
	if !state.GetSkipFilterPlugins().Has(Name) {
		t.Error("Filter should be skipped for a pod without a share")
	}
	if st := fw.RunReservePluginsReserve(ctx, state, p, "n"); !st.IsSuccess() {
		t.Errorf("Reserve: %v", st)
	}
	if st := fw.RunPreBindPlugins(ctx, state, p, "n"); !st.IsSuccess() {
		t.Errorf("PreBind: %v", st)
	}
	got, _ := cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	if _, ok := got.Annotations[kube.AnnotationGPUIndex]; ok {
		t.Error("a device was written on a pod without a share")
	}
}
