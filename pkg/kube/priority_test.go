package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
