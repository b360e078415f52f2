package autoscaler

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/events"
	"kcloud.io/optimizer/pkg/kube"
)

// readTarget reads the target's scale subresource; false, with AbleToScale False, when the target
// is missing or cannot be scaled.
func (r *Reconciler) readTarget(ctx context.Context, st *state) (bool, error) {
	ref := st.wo.Spec.TargetRef
	notScalable := func(reason, msg string) (bool, error) {
		st.setCondition(kcloudv1alpha1.ConditionAbleToScale, metav1.ConditionFalse, reason, msg,
			&events.Event{Type: corev1.EventTypeWarning, Reason: reason, Action: actionAutoscale, Note: msg})
		return false, nil
	}
	obj, err := targetObject(ref, st.wo.Namespace)
	if err != nil {
		return notScalable(kcloudv1alpha1.ReasonTargetNotScalable, err.Error())
	}
	scale := &autoscalingv1.Scale{}
	if err := r.Client.SubResource("scale").Get(ctx, obj, scale); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return notScalable(kcloudv1alpha1.ReasonTargetNotFound, fmt.Sprintf("%s %s/%s not found", ref.Kind, st.wo.Namespace, ref.Name))
		case apierrors.IsForbidden(err), apierrors.IsMethodNotSupported(err), meta.IsNoMatchError(err):
			return notScalable(kcloudv1alpha1.ReasonTargetNotScalable, fmt.Sprintf("%s %s/%s: no usable scale subresource: %v", ref.Kind, st.wo.Namespace, ref.Name, err))
		}
		return false, fmt.Errorf("reading the scale of %s %s/%s: %w", ref.Kind, st.wo.Namespace, ref.Name, err)
	}
	st.target, st.scale = obj, scale
	st.setCondition(kcloudv1alpha1.ConditionAbleToScale, metav1.ConditionTrue, kcloudv1alpha1.ReasonTargetScalable,
		fmt.Sprintf("%s %s/%s has %d replicas", ref.Kind, st.wo.Namespace, ref.Name, scale.Spec.Replicas), nil)
	return true, nil
}

// targetObject is an empty object of the target's kind to address its scale subresource.
func targetObject(ref *kcloudv1alpha1.TargetReference, namespace string) (client.Object, error) {
	apiVersion := ref.APIVersion
	if apiVersion == "" {
		apiVersion = kube.DefaultAPIVersion(ref.Kind)
	}
	var obj client.Object
	switch {
	case ref.Kind == "Job":
		return nil, fmt.Errorf("targetRef Job %s/%s has no scale subresource: a Job's size is its parallelism", namespace, ref.Name)
	case apiVersion == "apps/v1" && ref.Kind == "Deployment":
		obj = &appsv1.Deployment{}
	case apiVersion == "apps/v1" && ref.Kind == "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case apiVersion == "apps/v1" && ref.Kind == "ReplicaSet":
		obj = &appsv1.ReplicaSet{}
	default:
		return nil, fmt.Errorf("%s %s %s/%s: the autoscaler scales apps/v1 Deployments, StatefulSets and ReplicaSets", apiVersion, ref.Kind, namespace, ref.Name)
	}
	obj.SetNamespace(namespace)
	obj.SetName(ref.Name)
	return obj, nil
}

// listPods lists the target's pods by its scale's selector.
func (r *Reconciler) listPods(ctx context.Context, st *state) error {
	if st.scale.Status.Selector == "" {
		return nil
	}
	sel, err := labels.Parse(st.scale.Status.Selector)
	if err != nil {
		return fmt.Errorf("selector %q of %s: %w", st.scale.Status.Selector, targetName(st), err)
	}
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(st.wo.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return fmt.Errorf("listing the pods of %s: %w", targetName(st), err)
	}
	for i := range pods.Items {
		st.pods = append(st.pods, &pods.Items[i])
	}
	return nil
}

// templatePod is a pod of the target's template, to price a replica and find the policies covering
// it before any runs. It is read once per evaluation.
func (r *Reconciler) templatePod(ctx context.Context, st *state) (*corev1.Pod, error) {
	if st.template == nil && st.tplErr == nil {
		st.template, st.tplErr = r.readTemplatePod(ctx, st)
	}
	return st.template, st.tplErr
}

func (r *Reconciler) readTemplatePod(ctx context.Context, st *state) (*corev1.Pod, error) {
	if st.target == nil {
		return nil, fmt.Errorf("no target")
	}
	obj := st.target.DeepCopyObject().(client.Object)
	if err := r.Reader.Get(ctx, client.ObjectKeyFromObject(st.target), obj); err != nil {
		return nil, fmt.Errorf("reading %s: %w", targetName(st), err)
	}
	tpl, err := podTemplate(obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", targetName(st), err)
	}
	pod := &corev1.Pod{ObjectMeta: *tpl.ObjectMeta.DeepCopy(), Spec: *tpl.Spec.DeepCopy()}
	pod.Namespace = st.wo.Namespace
	return pod, nil
}

// podTemplate is the pod template of a scalable target.
func podTemplate(obj client.Object) (*corev1.PodTemplateSpec, error) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template, nil
	case *appsv1.StatefulSet:
		return &o.Spec.Template, nil
	case *appsv1.ReplicaSet:
		return &o.Spec.Template, nil
	}
	return nil, fmt.Errorf("%T has no pod template", obj)
}

// writeScale sets the target's replicas through its scale subresource.
func (r *Reconciler) writeScale(ctx context.Context, st *state, replicas int32) error {
	scale := st.scale.DeepCopy()
	scale.Spec.Replicas = replicas
	return r.Client.SubResource("scale").Update(ctx, st.target, client.WithSubResourceBody(scale))
}

// targetName names the target in messages, e.g. "Deployment ai/bert".
func targetName(st *state) string {
	return fmt.Sprintf("%s %s/%s", st.wo.Spec.TargetRef.Kind, st.wo.Namespace, st.wo.Spec.TargetRef.Name)
}
