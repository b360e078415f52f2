package autoscaler

import (
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func hpa(name, apiVersion, kind, target string, owners ...metav1.OwnerReference) autoscalingv2.HorizontalPodAutoscaler {
	return autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ai", Name: name, OwnerReferences: owners},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: apiVersion, Kind: kind, Name: target},
		},
	}
}

func scaledObject(name string, target map[string]any) unstructured.Unstructured {
	so := unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"scaleTargetRef": target}}}
	so.SetGroupVersionKind(ScaledObjectGVK)
	so.SetNamespace("ai")
	so.SetName(name)
	return so
}

func TestExternalScalers(t *testing.T) {
	web := targetOf("", "Deployment", "web")
	kedaOwner := metav1.OwnerReference{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject", Name: "web-so", UID: "u1"}
	for _, tc := range []struct {
		name string
		hpas []autoscalingv2.HorizontalPodAutoscaler
		sos  []unstructured.Unstructured
		want []string
	}{
		{"none", nil, nil, []string{}},
		{"an HPA of the target", []autoscalingv2.HorizontalPodAutoscaler{hpa("web-hpa", "apps/v1", "Deployment", "web")}, nil,
			[]string{"HorizontalPodAutoscaler ai/web-hpa"}},
		{"an HPA of another Deployment does not count",
			[]autoscalingv2.HorizontalPodAutoscaler{hpa("other", "apps/v1", "Deployment", "api")}, nil, []string{}},
		{"an HPA of a StatefulSet of the same name does not count",
			[]autoscalingv2.HorizontalPodAutoscaler{hpa("web-sts", "apps/v1", "StatefulSet", "web")}, nil, []string{}},
		{"an HPA of another group does not count",
			[]autoscalingv2.HorizontalPodAutoscaler{hpa("argo", "argoproj.io/v1alpha1", "Deployment", "web")}, nil, []string{}},
		{"an HPA of an older apps version still counts",
			[]autoscalingv2.HorizontalPodAutoscaler{hpa("old", "apps/v1beta2", "Deployment", "web")}, nil, []string{"HorizontalPodAutoscaler ai/old"}},
		{"an HPA without apiVersion counts",
			[]autoscalingv2.HorizontalPodAutoscaler{hpa("bare", "", "Deployment", "web")}, nil, []string{"HorizontalPodAutoscaler ai/bare"}},
		{"a ScaledObject with KEDA's defaults (a Deployment)", nil,
			[]unstructured.Unstructured{scaledObject("web-so", map[string]any{"name": "web"})}, []string{"ScaledObject ai/web-so"}},
		{"KEDA's own HPA is named by its ScaledObject, once",
			[]autoscalingv2.HorizontalPodAutoscaler{hpa("keda-hpa-web-so", "apps/v1", "Deployment", "web", kedaOwner)},
			[]unstructured.Unstructured{scaledObject("web-so", map[string]any{"name": "web", "kind": "Deployment", "apiVersion": "apps/v1"})},
			[]string{"ScaledObject ai/web-so"}},
		{"a ScaledObject of a StatefulSet does not count", nil,
			[]unstructured.Unstructured{scaledObject("sts-so", map[string]any{"name": "web", "kind": "StatefulSet"})}, []string{}},
		{"two autoscalers are both named, sorted",
			[]autoscalingv2.HorizontalPodAutoscaler{hpa("z-hpa", "apps/v1", "Deployment", "web")},
			[]unstructured.Unstructured{scaledObject("a-so", map[string]any{"name": "web"})},
			[]string{"HorizontalPodAutoscaler ai/z-hpa", "ScaledObject ai/a-so"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := externalScalers(web, tc.hpas, tc.sos)
			names := make([]string, len(got))
			for i, e := range got {
				names[i] = e.String()
			}
			if len(names) != len(tc.want) {
				t.Fatalf("got %q, want %q", names, tc.want)
			}
			for i := range names {
				if names[i] != tc.want[i] {
					t.Fatalf("got %q, want %q", names, tc.want)
				}
			}
		})
	}
}

func TestScaleTargetChangedPassesOnlyTargetAndOwnerChanges(t *testing.T) {
	p := scaleTargetChanged()
	old := hpa("web-hpa", "apps/v1", "Deployment", "web")
	statusOnly := old.DeepCopy()
	statusOnly.Status.CurrentReplicas = 7
	retarget := old.DeepCopy()
	retarget.Spec.ScaleTargetRef.Name = "api"
	owned := old.DeepCopy()
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject", Name: "so", UID: "u"}}
	for _, tc := range []struct {
		name string
		new  *autoscalingv2.HorizontalPodAutoscaler
		want bool
	}{
		{"a status change", statusOnly, false},
		{"a new target", retarget, true},
		{"a new owner", owned, true},
	} {
		if got := p.Update(event.UpdateEvent{ObjectOld: &old, ObjectNew: tc.new}); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
