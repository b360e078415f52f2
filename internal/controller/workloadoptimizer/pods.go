package workloadoptimizer

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
)

// IndexOptimizer indexes pods by "<namespace>/<value of the link label>".
const IndexOptimizer = "kcloud.io/optimizer"

// IndexPodByOptimizer is the field indexer for IndexOptimizer.
func IndexPodByOptimizer(o ctrl.Object) []string {
	if v := o.GetLabels()[kube.LabelOptimizer]; v != "" {
		return []string{o.GetNamespace() + "/" + v}
	}
	return nil
}

// findPods collects the workload's pods: those with the link label, and those the target's or the
// optimizer's selector matches. The pods are the cache's own, not copies (every reconcile reads
// every pod of its workload): nothing may modify them.
func (r *Reconciler) findPods(ctx context.Context, st *state) error {
	wo := st.wo
	linked := &corev1.PodList{}
	if err := r.Client.List(ctx, linked, ctrl.InNamespace(wo.Namespace), ctrl.MatchingFields{IndexOptimizer: wo.Namespace + "/" + wo.Name},
		ctrl.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing linked pods: %w", err)
	}
	seen := map[types.UID]bool{}
	add := func(p *corev1.Pod) {
		if !seen[p.UID] {
			seen[p.UID] = true
			st.pods = append(st.pods, p)
		}
	}
	for i := range linked.Items {
		add(&linked.Items[i])
	}
	var selectors []labels.Selector
	if wo.Spec.Selector != nil {
		// A selector stored before admission checked it: find the pods without it (linking a
		// superset would put other workloads' pods under this one's limits) and say so.
		if sel, err := metav1.LabelSelectorAsSelector(wo.Spec.Selector); err != nil {
			st.selectorErr = fmt.Errorf("spec.selector: %w", err)
		} else {
			selectors = append(selectors, sel)
		}
	}
	if ref := wo.Spec.TargetRef; ref != nil {
		sel, err := r.targetSelector(ctx, wo.Namespace, ref)
		if err != nil {
			st.targetErr = err
		} else {
			selectors = append(selectors, sel)
		}
	}
	for _, sel := range selectors {
		if sel.Empty() {
			continue // a selector matching everything would claim every pod of the namespace
		}
		pods := &corev1.PodList{}
		if err := r.Client.List(ctx, pods, ctrl.InNamespace(wo.Namespace), ctrl.MatchingLabelsSelector{Selector: sel}, ctrl.UnsafeDisableDeepCopy); err != nil {
			return fmt.Errorf("listing pods matching %s: %w", sel, err)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			// A pod linked to another optimizer stays with it.
			if other := p.Labels[kube.LabelOptimizer]; other == "" || other == wo.Name {
				add(p)
			}
		}
	}
	sort.Slice(st.pods, func(i, j int) bool { return st.pods[i].Name < st.pods[j].Name })
	return nil
}

// targetSelector reads the target workload's pod selector (spec.selector, as every scalable
// workload kind has).
func (r *Reconciler) targetSelector(ctx context.Context, namespace string, ref *kcloudv1alpha1.TargetReference) (labels.Selector, error) {
	apiVersion := ref.APIVersion
	if apiVersion == "" {
		apiVersion = kube.DefaultAPIVersion(ref.Kind)
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil || apiVersion == "" {
		return nil, fmt.Errorf("spec.targetRef: kind %s needs an apiVersion", ref.Kind)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gv.WithKind(ref.Kind))
	if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%s %s/%s not found", ref.Kind, namespace, ref.Name)
		}
		return nil, fmt.Errorf("reading %s %s/%s: %w", ref.Kind, namespace, ref.Name, err)
	}
	raw, found, err := unstructured.NestedMap(u.Object, "spec", "selector")
	if err != nil || !found {
		return nil, fmt.Errorf("%s %s/%s has no spec.selector", ref.Kind, namespace, ref.Name)
	}
	ls := &metav1.LabelSelector{}
	if err := runtimeConvert(raw, ls); err != nil {
		return nil, fmt.Errorf("%s %s/%s: spec.selector: %w", ref.Kind, namespace, ref.Name, err)
	}
	return metav1.LabelSelectorAsSelector(ls)
}

// linkPods puts the link label on pods found through the target or selector, so the scheduler's
// limits count them with the rest of the workload, and keeps every pod's priority annotation at
// the optimizer's spec.priority, so kcloud-scheduler's queue follows a changed priority.
func (r *Reconciler) linkPods(ctx context.Context, st *state) error {
	priority := kube.PriorityAnnotation(kube.SpecPriority(st.wo))
	for i, cached := range st.pods {
		linked := cached.Labels[kube.LabelOptimizer] == st.wo.Name
		if (linked && cached.Annotations[kube.AnnotationPriority] == priority) || !cached.DeletionTimestamp.IsZero() {
			continue
		}
		p := cached.DeepCopy() // the cache's pod is shared
		st.pods[i] = p
		patch := ctrl.MergeFrom(cached)
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		if !linked {
			p.Labels[kube.LabelOptimizer] = st.wo.Name
			p.Annotations[kube.AnnotationLinkedByOperator] = "true"
		}
		p.Annotations[kube.AnnotationPriority] = priority
		if err := r.Client.Patch(ctx, p, patch); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("labelling pod %s: %w", p.Name, err)
		}
	}
	return nil
}

// finalize removes the link label (and priority) the operator added and then the finalizer.
func (r *Reconciler) finalize(ctx context.Context, wo *kcloudv1alpha1.WorkloadOptimizer) error {
	if !controllerutil.ContainsFinalizer(wo, kcloudv1alpha1.FinalizerCleanup) {
		return nil
	}
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, ctrl.InNamespace(wo.Namespace), ctrl.MatchingFields{IndexOptimizer: wo.Namespace + "/" + wo.Name}); err != nil {
		return fmt.Errorf("WorkloadOptimizer %s/%s: listing linked pods: %w", wo.Namespace, wo.Name, err)
	}
	unlinked := 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Annotations[kube.AnnotationLinkedByOperator] != "true" {
			continue
		}
		patch := ctrl.MergeFrom(p.DeepCopy())
		delete(p.Labels, kube.LabelOptimizer)
		delete(p.Annotations, kube.AnnotationLinkedByOperator)
		delete(p.Annotations, kube.AnnotationPriority)
		if err := r.Client.Patch(ctx, p, patch); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("WorkloadOptimizer %s/%s: unlabelling pod %s: %w", wo.Namespace, wo.Name, p.Name, err)
		}
		unlinked++
	}
	patch := ctrl.MergeFromWithOptions(wo.DeepCopy(), ctrl.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(wo, kcloudv1alpha1.FinalizerCleanup)
	if err := r.Client.Patch(ctx, wo, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("WorkloadOptimizer %s/%s: removing finalizer: %w", wo.Namespace, wo.Name, err)
	}
	r.Recorder.Eventf(wo, nil, corev1.EventTypeNormal, "CleanedUp", "Finalize",
		"removed the link label the operator added from %d pod(s)", unlinked)
	log.FromContext(ctx).Info("Cleaned up workload", "workloadOptimizer", klog.KObj(wo), "unlinkedPods", unlinked)
	return nil
}
