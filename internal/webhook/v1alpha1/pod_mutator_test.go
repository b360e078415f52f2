package v1alpha1

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
)

func wo(name string, mutate func(*kcloudv1alpha1.WorkloadOptimizer)) kcloudv1alpha1.WorkloadOptimizer {
	w := kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadTraining}}
	if mutate != nil {
		mutate(&w)
	}
	return w
}

func TestOptimizerFor(t *testing.T) {
	controller := func(kind, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{Kind: kind, Name: name, Controller: ptr.To(true)}}
	}
	wos := []kcloudv1alpha1.WorkloadOptimizer{
		wo("by-target", func(w *kcloudv1alpha1.WorkloadOptimizer) {
			w.Spec.TargetRef = &kcloudv1alpha1.TargetReference{Kind: "Deployment", Name: "api"}
		}),
		wo("by-job", func(w *kcloudv1alpha1.WorkloadOptimizer) {
			w.Spec.TargetRef = &kcloudv1alpha1.TargetReference{Kind: "PyTorchJob", APIVersion: "kubeflow.org/v1", Name: "bert"}
		}),
		wo("by-selector", func(w *kcloudv1alpha1.WorkloadOptimizer) {
			w.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
		}),
		wo("empty-selector", func(w *kcloudv1alpha1.WorkloadOptimizer) { w.Spec.Selector = &metav1.LabelSelector{} }),
	}
	tests := []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"label names it", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{kube.LabelOptimizer: "by-selector"}}}, "by-selector"},
		{"annotation names it", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationOptimizer: "by-job"}}}, "by-job"},
		{"named but absent: none", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{kube.LabelOptimizer: "gone", "app": "x"}}}, ""},
		{"ReplicaSet of the Deployment", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"pod-template-hash": "5f7"},
			OwnerReferences: controller("ReplicaSet", "api-5f7")}}, "by-target"},
		{"ReplicaSet of another Deployment", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"pod-template-hash": "5f7"},
			OwnerReferences: controller("ReplicaSet", "api-v2-5f7")}}, ""},
		{"owned directly", corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: controller("PyTorchJob", "bert")}}, "by-job"},
		{"selector", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}}, "by-selector"},
		{"an empty selector claims nothing", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "y"}}}, ""},
	}
	for _, tc := range tests {
		got := OptimizerFor(&tc.pod, wos)
		name := ""
		if got != nil {
			name = got.Name
		}
		if name != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, name, tc.want)
		}
	}
}

func TestInferWorkloadType(t *testing.T) {
	tests := []struct {
		name string
		pod  corev1.Pod
		want kcloudv1alpha1.WorkloadType
	}{
		{"annotation", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{kube.AnnotationWorkloadType: "batch"}}}, kcloudv1alpha1.WorkloadBatch},
		{"PyTorchJob owner", corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{Kind: "PyTorchJob"}}}}, kcloudv1alpha1.WorkloadTraining},
		{"KServe label", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"serving.kserve.io/inferenceservice": "llm"}}}, kcloudv1alpha1.WorkloadServing},
		{"vLLM image", corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Image: "docker.io/vllm/vllm-openai:latest"}}}}, kcloudv1alpha1.WorkloadServing},
		{"DeepSpeed image", corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Image: "ghcr.io/acme/deepspeed:0.14"}}}}, kcloudv1alpha1.WorkloadTraining},
		{"plain Job", corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{Kind: "Job", Controller: ptr.To(true)}}}}, kcloudv1alpha1.WorkloadBatch},
		{"nothing to go by", corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Image: "nginx"}}}}, ""},
	}
	for _, tc := range tests {
		if got, _ := InferWorkloadType(&tc.pod); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestApplyIsIdempotent(t *testing.T) {
	w := wo("trainer", func(w *kcloudv1alpha1.WorkloadOptimizer) {
		w.Spec.Resources = kcloudv1alpha1.WorkloadResources{CPU: ptr.To(resource.MustParse("8")), GPU: 2, NPU: 1}
		w.Spec.CostConstraints = &kcloudv1alpha1.CostConstraints{PreferSpot: true}
		w.Spec.PowerConstraints = &kcloudv1alpha1.PowerConstraints{PreferGreen: true}
		w.Spec.PlacementPolicy = &kcloudv1alpha1.PlacementPolicy{NodeSelector: map[string]string{"zone": "a"},
			Affinity: []kcloudv1alpha1.AffinityRule{{Type: "gpu_workload", Key: "gpu", Value: "a100"}}}
	})
	offers := map[corev1.ResourceName]int64{catalog.ResourceNVIDIAGPU: 16, catalog.ResourceFuriosaRNGD: 8, catalog.ResourceRebellionsATOM: 4}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	Apply(pod, &w, catalog.Default(), offers)
	once := pod.DeepCopy()
	if warnings := Apply(pod, &w, catalog.Default(), offers); len(warnings) != 0 {
		t.Errorf("second Apply warned: %v", warnings)
	}
	if diff := cmp.Diff(once, pod); diff != "" {
		t.Errorf("second Apply changed the pod (-once +twice):\n%s", diff)
	}
	if q := pod.Spec.Containers[0].Resources.Limits[catalog.ResourceFuriosaRNGD]; q.Value() != 1 {
		t.Errorf("npu mapped to %v, want furiosa.ai/rngd (8 devices against 4)", pod.Spec.Containers[0].Resources.Limits)
	}
}

// TestApplyWritesPriority: the pod carries its optimizer's spec.priority, replacing whatever the
// pod said, so kcloud-scheduler's queue ranks it as the optimizer does.
func TestApplyWritesPriority(t *testing.T) {
	w := wo("serving", func(w *kcloudv1alpha1.WorkloadOptimizer) { w.Spec.Priority = new(int32(80)) })
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{kube.AnnotationPriority: "100"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	Apply(pod, &w, catalog.Default(), nil)
	if got := pod.Annotations[kube.AnnotationPriority]; got != "80" {
		t.Errorf("%s = %q, want the optimizer's 80", kube.AnnotationPriority, got)
	}
}

func TestResourceFor(t *testing.T) {
	cat := catalog.Default()
	tests := []struct {
		name   string
		kind   catalog.AcceleratorKind
		offers map[corev1.ResourceName]int64
		want   corev1.ResourceName
	}{
		{"no fleet knowledge: NVIDIA for GPUs", catalog.KindGPU, nil, catalog.ResourceNVIDIAGPU},
		{"no fleet knowledge: no NPU", catalog.KindNPU, nil, ""},
		{"AMD-only fleet", catalog.KindGPU, map[corev1.ResourceName]int64{catalog.ResourceAMDGPU: 8}, catalog.ResourceAMDGPU},
		{"most NPUs", catalog.KindNPU, map[corev1.ResourceName]int64{catalog.ResourceNeuron: 2, catalog.ResourceRebellionsATOM: 8}, catalog.ResourceRebellionsATOM},
		{"a GPU fleet has no NPU", catalog.KindNPU, map[corev1.ResourceName]int64{catalog.ResourceNVIDIAGPU: 8}, ""},
	}
	for _, tc := range tests {
		if got := ResourceFor(tc.kind, cat, tc.offers); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
