// Package gang is the KcloudGang framework plugin: Permit holds the pods of a gang (label
// kcloud.io/gang, annotation kcloud.io/gang-size) until every pod of the gang has a place, then
// lets all of them bind; after gangTimeoutSeconds (KcloudGangArgs) the waiting pods are rejected
// and go back to the queue, so that a gang binds all together or not at all. It reads the
// scheduler's pod informer (indexed by gang) and its waiting pods, and needs no other kcloud plugin.
package gang

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
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
	pods    cache.Indexer // the scheduler's pod informer, indexed by byGang
	timeout time.Duration
	permit  pluginmetrics.Timer
}

// byGang indexes pods by "namespace/gang", so that Permit reads a gang's pods and not the cluster's.
const byGang = "kcloud.io/gang"

func gangKey(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Labels[kube.LabelGang] == "" {
		return nil, nil
	}
	return []string{p.Namespace + "/" + p.Labels[kube.LabelGang]}, nil
}

var _ fwk.PermitPlugin = &Plugin{}

// New builds the plugin from its args (config.KcloudGangArgs).
func New(_ context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, err := config.DecodeGang(obj)
	if err != nil {
		return nil, err
	}
	inf := h.SharedInformerFactory().Core().V1().Pods().Informer()
	// Every profile's KcloudGang shares the one informer: the index is added once.
	if _, ok := inf.GetIndexer().GetIndexers()[byGang]; !ok {
		if err := inf.AddIndexers(cache.Indexers{byGang: gangKey}); err != nil {
			return nil, fmt.Errorf("%s: indexing pods by gang: %w", Name, err)
		}
	}
	return &Plugin{handle: h, pods: inf.GetIndexer(), timeout: time.Duration(*args.GangTimeoutSeconds) * time.Second,
		permit: pluginmetrics.For(Name, "Permit")}, nil
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

// placedInGang counts the gang's other pods that have a place: bound (the informer shows their
// node) or waiting here. A pod allowed and still binding is neither for a moment; a gang pod retried
// in that moment waits for it to show as bound, or for its timeout.
func (pl *Plugin) placedInGang(pod *corev1.Pod, gang string) int {
	waiting := map[types.UID]bool{}
	pl.handle.IterateOverWaitingPods(func(wp fwk.WaitingPod) {
		if p := wp.GetPod(); p.Namespace == pod.Namespace && p.Labels[kube.LabelGang] == gang {
			waiting[p.UID] = true
		}
	})
	members, err := pl.pods.ByIndex(byGang, pod.Namespace+"/"+gang)
	if err != nil {
		return len(waiting)
	}
	n := 0
	for _, obj := range members {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.UID == pod.UID {
			continue
		}
		terminal := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		if waiting[p.UID] || (p.Spec.NodeName != "" && !terminal) {
			n++
			delete(waiting, p.UID)
		}
	}
	// Waiting pods the informer has not shown yet still have their place.
	for uid := range waiting {
		if uid != pod.UID {
			n++
		}
	}
	return n
}
