package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kcloud.io/optimizer/pkg/model"
)

func TestOptimizerPriority(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        int32
	}{
		{"no annotations", nil, 50},
		{"lowest", map[string]string{AnnotationPriority: "0"}, 0},
		{"highest", map[string]string{AnnotationPriority: "100"}, 100},
		{"spec example", map[string]string{AnnotationPriority: "80"}, 80},
		{"above the range", map[string]string{AnnotationPriority: "101"}, 50},
		{"negative", map[string]string{AnnotationPriority: "-1"}, 50},
		{"not a number", map[string]string{AnnotationPriority: "high"}, 50},
		{"a fraction", map[string]string{AnnotationPriority: "70.5"}, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: tc.annotations}}
			if got := OptimizerPriority(pod); got != tc.want {
				t.Errorf("OptimizerPriority = %d, want %d", got, tc.want)
			}
		})
	}
	if got := PriorityAnnotation(80); got != "80" {
		t.Errorf("PriorityAnnotation(80) = %q", got)
	}
}

func TestPodRank(t *testing.T) {
	class := int32(1000)
	tests := []struct {
		name string
		pod  *corev1.Pod
		want model.Rank
	}{
		{"neither set: class 0, the default optimizer priority", &corev1.Pod{}, model.Rank{Class: 0, Optimizer: 50}},
		{"both set", &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationPriority: "90"}},
			Spec:       corev1.PodSpec{Priority: &class},
		}, model.Rank{Class: 1000, Optimizer: 90}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := PodRank(tc.pod); got != tc.want {
				t.Errorf("PodRank = %+v, want %+v", got, tc.want)
			}
		})
	}
}
