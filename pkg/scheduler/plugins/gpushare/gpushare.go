// Package gpushare is the KcloudGPUShare framework plugin: GPU shares after Alibaba's GPU-share
// convention (a pod asks for part of one device with the alibabacloud.com/gpu-milli annotation).
// Filter refuses a node with no device that has the share free; Reserve chooses the device (the one
// that leaves the node least fragmented, as the node view places the pod) and holds it in the
// profile's node view, so that the next pods see it before it is written, and Unreserve lets it go;
// PreBind writes it on the pod (alibabacloud.com/gpu-index) for the sharing device plugin. Pods
// without a share skip every point. It works alone or beside KcloudOptimizer, which reads the same
// node view (pkg/scheduler/nodeview).
package gpushare

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/scheduler/nodeview"
	"kcloud.io/optimizer/pkg/scheduler/pluginmetrics"
)

// Name is the plugin's name in a KubeSchedulerConfiguration.
const Name = "KcloudGPUShare"

const stateKey fwk.StateKey = "kcloud.io/gpu-share"

// Plugin is the KcloudGPUShare plugin.
type Plugin struct {
	handle                              fwk.Handle
	nodes                               *nodeview.Shared
	preFilter, filter, reserve, preBind pluginmetrics.Timer
	timed                               pluginmetrics.Cycles // the cycles whose Filter calls are timed
}

var (
	_ fwk.PreFilterPlugin = &Plugin{}
	_ fwk.FilterPlugin    = &Plugin{}
	_ fwk.ReservePlugin   = &Plugin{}
	_ fwk.PreBindPlugin   = &Plugin{}
)

// New builds the plugin; it takes no args.
func New(_ context.Context, _ runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	// The scheduler's one catalog, which KcloudOptimizer's catalogConfigMap keeps in step.
	return newPlugin(h, nodeview.SchedulerCatalog())
}

func newPlugin(h fwk.Handle, cat catalog.Provider) (*Plugin, error) {
	nodes, err := nodeview.For(h, cat)
	if err != nil {
		return nil, fmt.Errorf("%s: node view: %w", Name, err)
	}
	t := func(point string) pluginmetrics.Timer { return pluginmetrics.For(Name, point) }
	return &Plugin{handle: h, nodes: nodes, preFilter: t("PreFilter"), filter: t("Filter"), reserve: t("Reserve"), preBind: t("PreBind")}, nil
}

// Name returns the plugin's name.
func (pl *Plugin) Name() string { return Name }

// share is the pod's request, read once per cycle, and whether the cycle's Filter calls are timed
// (pluginmetrics.Cycles).
type share struct {
	pod   model.Pod
	timed bool
}

// Clone shares the state: it is not written after PreFilter.
func (s *share) Clone() fwk.StateData { return s }

func read(state fwk.CycleState) (*share, error) {
	d, err := state.Read(stateKey)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", stateKey, err)
	}
	return d.(*share), nil
}

// PreFilter reads the share's request; pods without a share skip Filter.
func (pl *Plugin) PreFilter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodes []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	defer pl.preFilter.Since(time.Now())
	if !kube.IsShare(pod) {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	state.Write(stateKey, &share{pod: kube.PodRequest(pod), timed: pl.timed.Next()})
	return nil, nil
}

// PreFilterExtensions is not implemented: nothing is kept that other pods change.
func (pl *Plugin) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// Filter refuses a node with no device that has the share free, or whose devices the catalog
// cannot read.
func (pl *Plugin) Filter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, ni fwk.NodeInfo) *fwk.Status {
	s, err := read(state)
	if err != nil {
		return fwk.AsStatus(err)
	}
	if s.timed {
		defer pl.filter.Since(time.Now())
	}
	f := pl.nodes.Facts(ni.Node())
	if f.Err != nil {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, f.Err.Error())
	}
	return nodeview.ShareStatus(&s.pod, pl.nodes.View(ni, f))
}

// Reserve chooses the share's device on the node and holds it until the pod carries it.
func (pl *Plugin) Reserve(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) *fwk.Status {
	defer pl.reserve.Since(time.Now())
	if !kube.IsShare(pod) {
		return nil
	}
	s, err := read(state)
	if err != nil {
		return fwk.AsStatus(err)
	}
	ni, err := pl.handle.SnapshotSharedLister().NodeInfos().Get(nodeName)
	if err != nil {
		return fwk.AsStatus(fmt.Errorf("reserving a GPU share for pod %s/%s on node %s: %w", pod.Namespace, pod.Name, nodeName, err))
	}
	device := -1
	if f := pl.nodes.Facts(ni.Node()); f.Err == nil {
		device = pl.nodes.View(ni, f).Place(&s.pod, &f.Econ).Alloc.Device
	}
	if device < 0 {
		return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("node %s: no device for a %d milli-GPU share", nodeName, s.pod.GPUMilli))
	}
	pl.nodes.Hold(pod.UID, nodeName, device)
	return nil
}

// Unreserve releases what Reserve held.
func (pl *Plugin) Unreserve(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) {
	pl.nodes.Release(pod.UID)
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
	defer pl.preBind.Since(time.Now())
	_, device, ok := pl.nodes.Held(pod.UID)
	if !ok || device < 0 {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, kube.AnnotationGPUIndex, strconv.Itoa(device))
	if _, err := pl.handle.ClientSet().CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fwk.AsStatus(fmt.Errorf("writing device %d on pod %s/%s: %w", device, pod.Namespace, pod.Name, err))
	}
	klog.FromContext(ctx).V(4).Info("Assigned GPU share", "pod", klog.KObj(pod), "node", nodeName, "device", device)
	return nil
}
