// Package priority is the KcloudPriority queue-sort plugin: the scheduling queue hands out pods by
// their PriorityClass first, as kube-scheduler's PrioritySort does, then by their
// WorkloadOptimizer's spec.priority (the kcloud.io/priority annotation the operator keeps on its
// pods), then by the time they were queued. Pods waiting for the same budget, cap or capacity are
// so tried higher optimizer priority first, and the first to fit take what is left.
//
// A scheduler has one queue: every profile of a kcloud-scheduler process must name the same
// queue-sort plugin.
package priority

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// Name is the plugin's name in a KubeSchedulerConfiguration.
const Name = "KcloudPriority"

// Plugin is the KcloudPriority plugin; it keeps no state.
type Plugin struct{}

var _ fwk.QueueSortPlugin = &Plugin{}

// New builds the plugin; it takes no args.
func New(context.Context, runtime.Object, fwk.Handle) (fwk.Plugin, error) { return &Plugin{}, nil }

// Name is Name.
func (*Plugin) Name() string { return Name }

// Less orders two queued pods (or pod groups): higher pod priority first, then higher optimizer
// priority, then the one queued earlier.
func (*Plugin) Less(a, b fwk.QueuedEntityInfo) bool {
	if c := model.CompareRank(rank(a), rank(b)); c != 0 {
		return c > 0
	}
	return a.GetTimestamp().Before(b.GetTimestamp())
}

// rank is a queued pod's (or pod group's) model.Rank.
func rank(e fwk.QueuedEntityInfo) model.Rank {
	return model.Rank{Class: e.GetPriority(), Optimizer: optimizerPriority(e)}
}

// optimizerPriority is a queued pod's optimizer priority; a pod group ranks as its highest pod.
func optimizerPriority(e fwk.QueuedEntityInfo) int32 {
	switch v := e.(type) {
	case interface{ GetPodInfo() fwk.PodInfo }:
		return kube.OptimizerPriority(v.GetPodInfo().GetPod())
	case interface{ GetUnscheduledPods() []*corev1.Pod }:
		pods := v.GetUnscheduledPods()
		if len(pods) == 0 {
			return kube.DefaultOptimizerPriority
		}
		best := kube.OptimizerPriority(pods[0])
		for _, p := range pods[1:] {
			best = max(best, kube.OptimizerPriority(p))
		}
		return best
	}
	return kube.DefaultOptimizerPriority
}
