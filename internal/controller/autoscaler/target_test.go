package autoscaler

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
)

func TestTargetObject(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ref     kcloudv1alpha1.TargetReference
		want    string // the object's Go type, "" for an error
		wantErr string
	}{
		{"a Deployment without apiVersion is apps/v1", kcloudv1alpha1.TargetReference{Kind: "Deployment", Name: "bert"}, "*v1.Deployment", ""},
		{"an apps/v1 StatefulSet", kcloudv1alpha1.TargetReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "bert"}, "*v1.StatefulSet", ""},
		{"a ReplicaSet without apiVersion", kcloudv1alpha1.TargetReference{Kind: "ReplicaSet", Name: "bert"}, "*v1.ReplicaSet", ""},
		{"a Job has no scale subresource", kcloudv1alpha1.TargetReference{Kind: "Job", Name: "train"}, "",
			"targetRef Job ai/train has no scale subresource: a Job's size is its parallelism"},
		{"another group is not scaled", kcloudv1alpha1.TargetReference{APIVersion: "apps/v1beta2", Kind: "Deployment", Name: "bert"}, "",
			"apps/v1beta2 Deployment ai/bert: the autoscaler scales apps/v1 Deployments, StatefulSets and ReplicaSets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj, err := targetObject(&tc.ref, "ai")
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", obj); got != tc.want || obj.GetNamespace() != "ai" || obj.GetName() != tc.ref.Name {
				t.Errorf("got %s %s/%s, want %s ai/%s", got, obj.GetNamespace(), obj.GetName(), tc.want, tc.ref.Name)
			}
		})
	}
}

func TestPodTemplate(t *testing.T) {
	tpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "bert"}}}
	for _, obj := range []client.Object{
		&appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: tpl}},
		&appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Template: tpl}},
		&appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Template: tpl}},
	} {
		got, err := podTemplate(obj)
		if err != nil || got.Labels["app"] != "bert" {
			t.Errorf("%T: template %+v, %v; want the one with app=bert", obj, got, err)
		}
	}
	if _, err := podTemplate(&batchv1.Job{}); err == nil || err.Error() != "*v1.Job has no pod template" {
		t.Errorf("Job: error %v, want *v1.Job has no pod template", err)
	}
}
