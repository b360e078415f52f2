// Package schedtest builds the nodes, pods and NodeInfos the scheduler plugins' tests share.
package schedtest

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/defaultbinder"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/queuesort"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/kubernetes/pkg/scheduler/metrics"
	tf "k8s.io/kubernetes/pkg/scheduler/testing/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
)

// T4Node is a g4dn.12xlarge in us-west-2 with gpus Tesla T4 devices, spot or on-demand, on green
// energy or not.
func T4Node(name string, gpus int64, spot, green bool) *corev1.Node {
	capType := "on-demand"
	if spot {
		capType = "spot"
	}
	labels := map[string]string{catalog.LabelInstanceType: "g4dn.12xlarge", catalog.LabelRegion: "us-west-2",
		catalog.LabelCapacityType: capType, catalog.LabelNVIDIAGPUProduct: "Tesla-T4"}
	if green {
		labels[catalog.LabelGreenEnergy] = "true"
	}
	rl := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("48"), corev1.ResourceMemory: resource.MustParse("192Gi"),
		corev1.ResourcePods: resource.MustParse("110"), catalog.ResourceNVIDIAGPU: *resource.NewQuantity(gpus, resource.DecimalSI)}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, ResourceVersion: "1"},
		Status: corev1.NodeStatus{Capacity: rl, Allocatable: rl}}
}

// Pod is a pod of namespace ns asking for 2 CPUs and 4Gi, its UID its name.
func Pod(name string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name), Labels: map[string]string{}, Annotations: map[string]string{}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}}}}}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// WithShare asks for a share of m milli-GPUs.
func WithShare(m string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Annotations[kube.AnnotationGPUMilli] = m }
}

// WithDevice writes the device chosen for a share.
func WithDevice(d string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Annotations[kube.AnnotationGPUIndex] = d }
}

// WithGPUs asks for n whole devices of an extended resource.
func WithGPUs(res string, n int64) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceName(res): *resource.NewQuantity(n, resource.DecimalSI)}
		p.Spec.Containers[0].Resources.Requests[corev1.ResourceName(res)] = *resource.NewQuantity(n, resource.DecimalSI)
	}
}

// NodeInfo is the scheduler's NodeInfo of a node running pods.
func NodeInfo(n *corev1.Node, pods ...*corev1.Pod) *framework.NodeInfo {
	ni := framework.NewNodeInfo(pods...)
	ni.SetNode(n)
	return ni
}

// Plugin is a plugin to enable in a test framework, at the extension points named (PreFilter,
// Filter, PreScore, Score, Reserve, Permit, PreBind).
type Plugin struct {
	Name   string
	New    frameworkruntime.PluginFactory
	Points []string
}

// NewFramework is a scheduling profile as kube-scheduler builds it, with only the plugins given
// (and the queue sort and binder every profile needs), over a snapshot of the nodes and pods, with
// cs as its client and informers from cs.
func NewFramework(t testing.TB, cs kubernetes.Interface, nodes []*corev1.Node, pods []*corev1.Pod, plugins ...Plugin) framework.Framework {
	t.Helper()
	metrics.Register() // the framework records every extension point's duration
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	regs := []tf.RegisterPluginFunc{
		tf.RegisterQueueSortPlugin(queuesort.Name, queuesort.New),
		tf.RegisterBindPlugin(defaultbinder.Name, defaultbinder.New),
	}
	for _, p := range plugins {
		regs = append(regs, tf.RegisterPluginAsExtensions(p.Name, p.New, p.Points...))
	}
	fw, err := tf.NewFramework(ctx, regs, "kcloud-scheduler",
		frameworkruntime.WithClientSet(cs),
		frameworkruntime.WithInformerFactory(informers.NewSharedInformerFactory(cs, 0)),
		frameworkruntime.WithSnapshotSharedLister(cache.NewSnapshot(pods, nodes)),
		frameworkruntime.WithWaitingPods(frameworkruntime.NewWaitingPodsMap()))
	if err != nil {
		t.Fatal(err)
	}
	return fw
}
