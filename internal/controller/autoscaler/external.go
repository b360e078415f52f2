package autoscaler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/events"
	"kcloud.io/optimizer/pkg/kube"
)

// A HorizontalPodAutoscaler or a KEDA ScaledObject on the optimizer's target would fight the
// autoscaler over one scale subresource (each undoing the other's write every step), so while one
// exists the autoscaler writes nothing and says so in ScalingDelegated.

// ScaledObjectGVK is KEDA's ScaledObject. Its CRD may not be installed: it is read unstructured, and
// a kind the API server does not serve counts as no ScaledObject.
var ScaledObjectGVK = schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"}

// ScaledObjectRecheck is how long the autoscaler trusts that ScaledObjects are not served before it
// asks again: each request for a group the API server lacks re-reads discovery, too costly for
// every evaluation.
const ScaledObjectRecheck = 5 * time.Minute

const (
	kindHPA          = "HorizontalPodAutoscaler"
	kindScaledObject = "ScaledObject"
)

// scaleTarget is what an autoscaler scales: the API group, kind and name (any version of a group
// addresses the same object).
type scaleTarget struct {
	group, kind, name string
}

// targetOf is the scaleTarget of a reference; an empty apiVersion is the kind's usual one, so a
// reference that leaves it out still counts (standing back wrongly costs less than a fight).
func targetOf(apiVersion, kind, name string) scaleTarget {
	if apiVersion == "" {
		apiVersion = kube.DefaultAPIVersion(kind)
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		gv = schema.GroupVersion{Group: apiVersion}
	}
	return scaleTarget{group: gv.Group, kind: kind, name: name}
}

// optimizerTarget is the scaleTarget of an optimizer's targetRef.
func optimizerTarget(ref *kcloudv1alpha1.TargetReference) scaleTarget {
	return targetOf(ref.APIVersion, ref.Kind, ref.Name)
}

// scaleTargetOf is what an HPA or a ScaledObject scales; false for other objects.
func scaleTargetOf(obj client.Object) (scaleTarget, bool) {
	switch o := obj.(type) {
	case *autoscalingv2.HorizontalPodAutoscaler:
		ref := o.Spec.ScaleTargetRef
		return targetOf(ref.APIVersion, ref.Kind, ref.Name), true
	case *unstructured.Unstructured:
		if o.GroupVersionKind().GroupKind() != ScaledObjectGVK.GroupKind() {
			return scaleTarget{}, false
		}
		// KEDA's defaults: a Deployment of apps/v1.
		name, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "name")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "kind")
		apiVersion, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "apiVersion")
		if kind == "" {
			kind = "Deployment"
		}
		if apiVersion == "" {
			apiVersion = "apps/v1"
		}
		return targetOf(apiVersion, kind, name), true
	}
	return scaleTarget{}, false
}

// externalScaler names another autoscaler of the target.
type externalScaler struct {
	kind, namespace, name string
}

func (e externalScaler) String() string {
	return fmt.Sprintf("%s %s/%s", e.kind, e.namespace, e.name)
}

// hpaScaler is the autoscaler behind an HPA of the target: the ScaledObject that owns it (KEDA
// drives each ScaledObject through an HPA of its own, keda-hpa-<name>, and the user wrote the
// ScaledObject), else the HPA itself.
func hpaScaler(hpa *autoscalingv2.HorizontalPodAutoscaler, t scaleTarget) (externalScaler, bool) {
	if got, _ := scaleTargetOf(hpa); got != t {
		return externalScaler{}, false
	}
	for _, o := range hpa.OwnerReferences {
		if gv, err := schema.ParseGroupVersion(o.APIVersion); err == nil && o.Kind == kindScaledObject && gv.Group == ScaledObjectGVK.Group {
			return externalScaler{kind: kindScaledObject, namespace: hpa.Namespace, name: o.Name}, true
		}
	}
	return externalScaler{kind: kindHPA, namespace: hpa.Namespace, name: hpa.Name}, true
}

// externalScalers are the HPAs and ScaledObjects that scale t, each named once, sorted.
func externalScalers(t scaleTarget, hpas []autoscalingv2.HorizontalPodAutoscaler, scaledObjects []unstructured.Unstructured) []externalScaler {
	seen := map[externalScaler]bool{}
	for i := range hpas {
		if e, ok := hpaScaler(&hpas[i], t); ok {
			seen[e] = true
		}
	}
	for i := range scaledObjects {
		so := &scaledObjects[i]
		if got, ok := scaleTargetOf(so); ok && got == t {
			seen[externalScaler{kind: kindScaledObject, namespace: so.GetNamespace(), name: so.GetName()}] = true
		}
	}
	out := make([]externalScaler, 0, len(seen))
	for e := range seen {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b externalScaler) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// delegate sets ScalingDelegated from the target's other autoscalers; true when there is one, and
// the evaluation then stops before deciding.
func (r *Reconciler) delegate(ctx context.Context, st *state) (bool, error) {
	ns := st.wo.Namespace
	hpas := &autoscalingv2.HorizontalPodAutoscalerList{}
	if err := r.Client.List(ctx, hpas, client.InNamespace(ns)); err != nil {
		return false, fmt.Errorf("listing HorizontalPodAutoscalers in %s: %w", ns, err)
	}
	scaledObjects, err := r.listScaledObjects(ctx, ns)
	if err != nil {
		return false, err
	}
	found := externalScalers(optimizerTarget(st.wo.Spec.TargetRef), hpas.Items, scaledObjects)
	if len(found) == 0 {
		var ev *events.Event
		msg := fmt.Sprintf("no HorizontalPodAutoscaler or ScaledObject scales %s", targetName(st))
		if c := meta.FindStatusCondition(st.conds, kcloudv1alpha1.ConditionScalingDelegated); c != nil && c.Status == metav1.ConditionTrue {
			ev = &events.Event{Type: corev1.EventTypeNormal, Reason: kcloudv1alpha1.ReasonNoExternalAutoscaler, Action: actionAutoscale,
				Note: msg + ": the autoscaler resumes"}
		}
		st.setCondition(kcloudv1alpha1.ConditionScalingDelegated, metav1.ConditionFalse, kcloudv1alpha1.ReasonNoExternalAutoscaler, msg, ev)
		return false, nil
	}
	names := make([]string, len(found))
	for i, e := range found {
		names[i] = e.String()
	}
	verb := "scales"
	if len(names) > 1 {
		verb = "scale"
	}
	msg := fmt.Sprintf("%s also %s %s: the autoscaler leaves its replicas alone until that is gone", strings.Join(names, ", "), verb, targetName(st))
	st.setCondition(kcloudv1alpha1.ConditionScalingDelegated, metav1.ConditionTrue, kcloudv1alpha1.ReasonExternalAutoscaler, msg,
		&events.Event{Type: corev1.EventTypeWarning, Reason: kcloudv1alpha1.ReasonExternalAutoscaler, Action: actionAutoscale, Note: msg})
	st.delegated = msg
	return true, nil
}

// listScaledObjects lists the ScaledObjects of a namespace; none while the kind is not served.
func (r *Reconciler) listScaledObjects(ctx context.Context, ns string) ([]unstructured.Unstructured, error) {
	now := r.Clock.Now()
	r.mu.Lock()
	absent := now.Before(r.scaledObjectsAbsentUntil)
	r.mu.Unlock()
	if absent {
		return nil, nil
	}
	reader := r.ScaledObjects
	if reader == nil {
		reader = r.Reader
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(ScaledObjectGVK.GroupVersion().WithKind(ScaledObjectGVK.Kind + "List"))
	err := reader.List(ctx, list, client.InNamespace(ns))
	switch {
	case err == nil:
		return list.Items, nil
	case meta.IsNoMatchError(err), apierrors.IsNotFound(err):
		// KEDA is not installed (NotFound: its CRD went away after discovery saw it).
		r.mu.Lock()
		r.scaledObjectsAbsentUntil = now.Add(ScaledObjectRecheck)
		r.mu.Unlock()
		return nil, nil
	}
	return nil, fmt.Errorf("listing ScaledObjects in %s: %w", ns, err)
}
