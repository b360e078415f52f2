package v1alpha1

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
)

// Training operators' and serving frameworks' owner kinds.
var (
	trainingKinds = []string{"PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "PaddleJob", "JAXJob", "TrainJob", "JobSet", "RayJob"}
	servingKinds  = []string{"InferenceService", "ServingRuntime", "RayService", "LeaderWorkerSet"}
)

// Labels the training and serving operators put on their pods.
var (
	trainingLabels = []string{"training.kubeflow.org/job-name", "training.kubeflow.org/replica-type", "jobset.sigs.k8s.io/jobset-name"}
	servingLabels  = []string{"serving.kserve.io/inferenceservice", "component.serving.kserve.io", "ray.io/serve"}
)

// Image name fragments of well-known serving servers and training stacks.
var (
	servingImages  = []string{"vllm", "tritonserver", "text-generation-inference", "torchserve", "tensorflow/serving", "sglang", "kserve", "lmdeploy", "tensorrt-llm", "ollama"}
	trainingImages = []string{"deepspeed", "megatron", "nemo", "pytorch-training", "horovod", "train"}
)

// InferWorkloadType guesses what a pod is from an explicit annotation, its owner's kind, the labels
// operators put on their pods, and its images; it says what gave it away. "" when nothing does.
func InferWorkloadType(pod *corev1.Pod) (kcloudv1alpha1.WorkloadType, string) {
	switch t := kcloudv1alpha1.WorkloadType(pod.Annotations[kube.AnnotationWorkloadType]); t {
	case kcloudv1alpha1.WorkloadTraining, kcloudv1alpha1.WorkloadServing, kcloudv1alpha1.WorkloadInference, kcloudv1alpha1.WorkloadBatch:
		return t, "annotation " + kube.AnnotationWorkloadType
	}
	for _, o := range pod.OwnerReferences {
		switch {
		case contains(trainingKinds, o.Kind):
			return kcloudv1alpha1.WorkloadTraining, "owner " + o.Kind
		case contains(servingKinds, o.Kind):
			return kcloudv1alpha1.WorkloadServing, "owner " + o.Kind
		}
	}
	for _, l := range trainingLabels {
		if _, ok := pod.Labels[l]; ok {
			return kcloudv1alpha1.WorkloadTraining, "label " + l
		}
	}
	for _, l := range servingLabels {
		if _, ok := pod.Labels[l]; ok {
			return kcloudv1alpha1.WorkloadServing, "label " + l
		}
	}
	for _, c := range pod.Spec.Containers {
		img := strings.ToLower(c.Image)
		for _, s := range servingImages {
			if strings.Contains(img, s) {
				return kcloudv1alpha1.WorkloadServing, "image " + c.Image
			}
		}
		for _, s := range trainingImages {
			if strings.Contains(img, s) {
				return kcloudv1alpha1.WorkloadTraining, "image " + c.Image
			}
		}
	}
	if o := metav1.GetControllerOfNoCopy(pod); o != nil && (o.Kind == "Job" || o.Kind == "CronJob") {
		return kcloudv1alpha1.WorkloadBatch, "owner " + o.Kind
	}
	return "", ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
