// Package gang is the KcloudGang framework plugin: Permit holds the pods of a gang (label
// kcloud.io/gang, annotation kcloud.io/gang-size) until every pod of the gang has a place, then
// lets all of them bind; after gangTimeoutSeconds (KcloudGangArgs) the waiting pods are rejected
// and go back to the queue, so that a gang binds all together or not at all. It reads only the
// scheduler's snapshot and needs no other kcloud plugin.
package gang

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/scheduler/apis/config"
	"kcloud.io/optimizer/pkg/scheduler/pluginmetrics"
)

// Name is the plugin's name in a KubeSchedulerConfiguration.
const Name = "KcloudGang"

// Plugin is the KcloudGang plugin.
type Plugin struct {
	handle  fwk.Handle
	timeout time.Duration
	permit  pluginmetrics.Timer
}

var _ fwk.PermitPlugin = &Plugin{}

// New builds the plugin from its args (config.KcloudGangArgs).
func New(_ context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, err := config.DecodeGang(obj)
	if err != nil {
		return nil, err
	}
	return &Plugin{handle: h, timeout: time.Duration(*args.GangTimeoutSeconds) * time.Second, permit: pluginmetrics.For(Name, "Permit")}, nil
}

// Name returns the plugin's name.
func (pl *Plugin) Name() string { return Name }

// Permit lets a pod without a gang through; a gang's pod waits until the gang's pods placed (bound,
// or waiting here) make the whole gang, and the one that completes it allows all of them.
func (pl *Plugin) Permit(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, nodeName string) (*fwk.Status, time.Duration) {
	defer pl.permit.Since(time.Now())
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
	return fwk.NewStatus(fwk.Wait, fmt.Sprintf("gang %s: %d of %d pods have a place", gang, placed, size)), pl.timeout
}

// gangOf returns the pod's gang and its size, or "" when it has none.
func gangOf(pod *corev1.Pod) (string, int) {
	g := pod.Labels[kube.LabelGang]
	if g == "" {
		return "", 0
	}
	n, err := strconv.Atoi(pod.Annotations[kube.AnnotationGangSize])
	if err != nil {
		return g, 0
	}
	return g, n
}

// placedInGang counts the gang's other pods already bound or assumed on a node.
func (pl *Plugin) placedInGang(pod *corev1.Pod, gang string) int {
	nodes, err := pl.handle.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		return 0
	}
	n := 0
	for _, ni := range nodes {
		for _, pi := range ni.GetPods() {
			p := pi.GetPod()
			if p.UID != pod.UID && p.Namespace == pod.Namespace && p.Labels[kube.LabelGang] == gang {
				n++
			}
		}
	}
	return n
}
