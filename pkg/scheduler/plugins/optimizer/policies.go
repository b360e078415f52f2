package optimizer

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
)

var (
	gvrOptimizers    = kcloudv1alpha1.GroupVersion.WithResource("workloadoptimizers")
	gvrCostPolicies  = kcloudv1alpha1.GroupVersion.WithResource("costpolicies")
	gvrPowerPolicies = kcloudv1alpha1.GroupVersion.WithResource("powerpolicies")
)

// policyStore reads WorkloadOptimizers, CostPolicies and PowerPolicies through informers.
type policyStore struct {
	informers map[schema.GroupVersionResource]cache.SharedIndexInformer
	// parsed are the policies with their selectors parsed, made again after a policy changes
	// (version counts the changes), so that a cycle parses no selector.
	version atomic.Uint64
	parsed  atomic.Pointer[parsedPolicies]
}

type parsedPolicies struct {
	version  uint64
	policies *kube.Policies
}

// newPolicyStore starts the informers; deleted is called after a CostPolicy or PowerPolicy is
// deleted.
func newPolicyStore(ctx context.Context, cfg *rest.Config, deleted func()) (*policyStore, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	_, served := dc.ServerResourcesForGroupVersion(kcloudv1alpha1.GroupVersion.String())
	factory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 10*time.Minute)
	s := &policyStore{informers: map[schema.GroupVersionResource]cache.SharedIndexInformer{}}
	logger := klog.FromContext(ctx)
	for gvr, transform := range map[schema.GroupVersionResource]cache.TransformFunc{
		gvrOptimizers:    typed[kcloudv1alpha1.WorkloadOptimizer](logger, gvrOptimizers.Resource),
		gvrCostPolicies:  typed[kcloudv1alpha1.CostPolicy](logger, gvrCostPolicies.Resource),
		gvrPowerPolicies: typed[kcloudv1alpha1.PowerPolicy](logger, gvrPowerPolicies.Resource),
	} {
		inf := factory.ForResource(gvr).Informer()
		if err := inf.SetTransform(transform); err != nil {
			return nil, fmt.Errorf("informer for %s: %w", gvr.Resource, err)
		}
		if gvr != gvrOptimizers {
			bump := func() { s.version.Add(1) }
			if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc: func(any) { bump() }, UpdateFunc: func(_, _ any) { bump() }, DeleteFunc: func(any) { bump(); deleted() },
			}); err != nil {
				return nil, fmt.Errorf("informer for %s: %w", gvr.Resource, err)
			}
		}
		s.informers[gvr] = inf
	}
	factory.Start(ctx.Done())
	// A cluster without our CRDs yet must not stop the scheduler from starting: the informers keep
	// retrying and fill in when the CRDs appear.
	if served != nil {
		klog.FromContext(ctx).Info("kcloud.io/v1alpha1 is not served yet; limits from WorkloadOptimizers and policies apply once it is", "err", served)
		return s, nil
	}
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for gvr, inf := range s.informers {
		if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
			klog.FromContext(ctx).Info("Custom resources not synced yet; limits from them apply once they are", "resource", gvr.Resource)
		}
	}
	return s, nil
}

// typed converts each object the informer receives to our type once, when it arrives, so that
// PreFilter reads typed objects instead of converting every policy for every pod. An object that
// does not convert stays unstructured, and is skipped by readers.
func typed[T any](logger klog.Logger, resource string) cache.TransformFunc {
	return func(obj any) (any, error) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return obj, nil
		}
		t := new(T)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, t); err != nil {
			logger.Error(err, "Ignoring a custom resource that does not match its schema", "resource", resource, "object", klog.KObj(u))
			return obj, nil
		}
		return t, nil
	}
}

func list[T any](s *policyStore, gvr schema.GroupVersionResource) []*T {
	if s == nil {
		return nil
	}
	var out []*T
	for _, o := range s.informers[gvr].GetStore().List() {
		if t, ok := o.(*T); ok {
			out = append(out, t)
		}
	}
	return out
}

func (s *policyStore) optimizer(namespace, name string) *kcloudv1alpha1.WorkloadOptimizer {
	if s == nil || name == "" {
		return nil
	}
	o, ok, err := s.informers[gvrOptimizers].GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil
	}
	wo, _ := o.(*kcloudv1alpha1.WorkloadOptimizer)
	return wo
}

// policyFor is what the pod's WorkloadOptimizer and the policies covering it say about where it
// may go (kube.Policies.For); nothing without the custom resources.
func (s *policyStore) policyFor(pod *corev1.Pod) kube.PodPolicy {
	if s == nil {
		return kube.PodPolicy{}
	}
	return s.current().For(pod, s.optimizer(pod.Namespace, pod.Labels[kube.LabelOptimizer]))
}

// current returns the policies parsed at the latest version.
func (s *policyStore) current() *kube.Policies {
	v := s.version.Load()
	if p := s.parsed.Load(); p != nil && p.version == v {
		return p.policies
	}
	ps := kube.NewPolicies(list[kcloudv1alpha1.CostPolicy](s, gvrCostPolicies), list[kcloudv1alpha1.PowerPolicy](s, gvrPowerPolicies))
	s.parsed.Store(&parsedPolicies{version: v, policies: ps})
	return ps
}
