package kube

// The labels and annotations the product reads and writes, declared once. Every package that reads
// a pod or node for the model names them from here.
const (
	// LabelOptimizer links a pod to its WorkloadOptimizer in the same namespace. The pod mutator
	// also reads it as an annotation (a pod may name its optimizer either way).
	LabelOptimizer = "kcloud.io/optimizer"
	// AnnotationLinkedByOperator marks pods whose link label the product added (the pod mutator, or
	// the operator finding pods through targetRef or selector), so the optimizer's finalizer removes
	// only what the product put there.
	AnnotationLinkedByOperator = "kcloud.io/linked-by-operator"
	// AnnotationWorkloadType says what a pod is: training, serving, inference or batch. The pod
	// mutator writes the optimizer's workloadType unless the user set one.
	AnnotationWorkloadType = "kcloud.io/workload-type"
	// AnnotationIgnore set to "true" opts a pod out of the pod webhooks and the budget guard (the
	// webhooks' matchConditions name it in their CEL expressions).
	AnnotationIgnore = "kcloud.io/ignore"
	// AnnotationPriority is the spec.priority of the pod's WorkloadOptimizer (0..100), written by the
	// pod mutator and kept current by the operator, so that kcloud-scheduler's queue can order
	// pods by it without reading the optimizers.
	AnnotationPriority = "kcloud.io/priority"

	// LabelGang groups the pods of a job that must be placed all together or not at all.
	LabelGang = "kcloud.io/gang"
	// AnnotationGangSize is the number of pods of the gang.
	AnnotationGangSize = "kcloud.io/gang-size"

	// GPU sharing follows Alibaba's open GPU-share convention (the one the openb traces come from):
	// a pod asks for part of one GPU with an annotation instead of the nvidia.com/gpu resource, and
	// the scheduler writes the chosen device's index for the sharing device plugin to honour.

	// AnnotationGPUMilli asks for a share of one device in 1/1000 (1..999).
	AnnotationGPUMilli = "alibabacloud.com/gpu-milli"
	// AnnotationGPUIndex is the device the scheduler chose for a share.
	AnnotationGPUIndex = "alibabacloud.com/gpu-index"
)
