package operator

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Options
		wantErr string
	}{
		{"nothing set", nil, Options{}, ""},
		{"namespaces trimmed", map[string]string{"WATCH_NAMESPACE": " ml, serving ,,"}, Options{WatchNamespaces: []string{"ml", "serving"}}, ""},
		{"identity", map[string]string{"POD_NAME": "kcloud-operator-7d9f-abcde", "OPERATOR_NAME": "kcloud-blue"},
			Options{PodName: "kcloud-operator-7d9f-abcde", OperatorName: "kcloud-blue"}, ""},
		{"scheduler URL", map[string]string{"CORE_SCHEDULER_URL": "https://kcloud-scheduler.kcloud-system:10259/"},
			Options{CoreSchedulerURL: "https://kcloud-scheduler.kcloud-system:10259"}, ""},
		{"scheduler URL without scheme", map[string]string{"CORE_SCHEDULER_URL": "kcloud-scheduler:10259"}, Options{},
			`CORE_SCHEDULER_URL "kcloud-scheduler:10259": want an absolute http or https URL`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o Options
			err := o.FromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, o); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTrimPodKeepsWhatTheOperatorReads(t *testing.T) {
	started := metav1.Now()
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), "nvidia.com/gpu": resource.MustParse("1")}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"kcloud.io/optimizer": "wo"},
			Annotations: map[string]string{"alibabacloud.com/gpu-index": "2"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: corev1.PodSpec{NodeName: "n1", NodeSelector: map[string]string{"a": "b"}, Tolerations: []corev1.Toleration{{Key: "spot"}},
			Containers: []corev1.Container{{Name: "c", Image: "big/image:1", Command: []string{"train"}, Env: []corev1.EnvVar{{Name: "X", Value: "y"}},
				Resources: corev1.ResourceRequirements{Requests: req}}},
			Volumes: []corev1.Volume{{Name: "data"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &started,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", Image: "big/image:1", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	}
	out, err := trimPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Pod)
	want := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"kcloud.io/optimizer": "wo"},
			Annotations: map[string]string{"alibabacloud.com/gpu-index": "2"}},
		Spec: corev1.PodSpec{NodeName: "n1", NodeSelector: map[string]string{"a": "b"}, Tolerations: []corev1.Toleration{{Key: "spot"}},
			Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: req}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &started, ContainerStatuses: []corev1.ContainerStatus{{Name: "c"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trimmed pod (-want +got):\n%s", diff)
	}
}
