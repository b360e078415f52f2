// Package v1alpha1 holds the admission webhooks: the pod mutator that applies a WorkloadOptimizer's
// policy to its pods at creation, the pod validator that refuses pods a deny-mode policy has no
// room for, and the validators of the three kinds for the rules CEL cannot express.
package v1alpha1

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/accounting"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
)

// Pod annotations the mutator reads and writes.
const (
	// AnnotationOptimizer names a pod's optimizer explicitly (the label kcloud.io/optimizer works too).
	AnnotationOptimizer = "kcloud.io/optimizer"
	// SchedulerName is kcloud-scheduler's profile.
	SchedulerName = "kcloud-scheduler"
)

// spotTaintKeys are the taints clouds and Karpenter put on spot nodes; a pod whose optimizer prefers
// spot tolerates them.
var spotTaintKeys = []string{
	"karpenter.sh/capacity-type",
	"cloud.google.com/gke-spot",
	"cloud.google.com/gke-preemptible",
	"kubernetes.azure.com/scalesetpriority",
	"eks.amazonaws.com/capacityType",
	"kcloud.io/spot",
}

// Offers tells which accelerator resources the fleet offers, with how many devices in all.
type Offers func(ctx context.Context) map[corev1.ResourceName]int64

// PodMutator applies a WorkloadOptimizer's policy to the pods it covers.
type PodMutator struct {
	Client  client.Reader
	Catalog catalog.Provider // read at each request: the watched catalog in force
	Offers  Offers
}

var _ admission.Handler = &PodMutator{}

// Handle mutates a pod at creation; a pod no optimizer covers is returned exactly as it came.
// Failures allow the pod unchanged: the pod webhook must never block the cluster.
func (m *PodMutator) Handle(ctx context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := json.Unmarshal(req.Object.Raw, pod); err != nil {
		return admission.Allowed("").WithWarnings(fmt.Sprintf("kcloud: pod not decoded, left unchanged: %v", err))
	}
	ns := pod.Namespace
	if ns == "" {
		ns = req.Namespace // pods created by controllers often carry none yet
	}
	list := &kcloudv1alpha1.WorkloadOptimizerList{}
	if err := m.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
		return admission.Allowed("").WithWarnings(fmt.Sprintf("kcloud: WorkloadOptimizers not read, pod left unchanged: %v", err))
	}
	wo := OptimizerFor(pod, list.Items)
	var warnings []string
	if wo != nil {
		var offers map[corev1.ResourceName]int64
		if m.Offers != nil {
			offers = m.Offers(ctx)
		}
		cat, _ := m.Catalog.Current()
		warnings = Apply(pod, wo, cat, offers)
	}
	// The accounting finalizer from the start, so even a pod deleted before the operator's leader
	// sees it is charged (the controller adds it to pods admitted without it).
	charged, err := m.charged(ctx, pod, ns, wo)
	if err != nil {
		warnings = append(warnings, fmt.Sprintf("kcloud: policies not read, no accounting finalizer: %v", err))
	}
	if charged {
		controllerutil.AddFinalizer(pod, kcloudv1alpha1.FinalizerAccounting)
	}
	if wo == nil && !charged {
		return admission.Allowed("").WithWarnings(warnings...)
	}
	out, err := json.Marshal(pod)
	if err != nil {
		return admission.Allowed("").WithWarnings(fmt.Sprintf("kcloud: pod not encoded, left unchanged: %v", err))
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, out).WithWarnings(warnings...)
}

// charged reports whether a ledger charges the pod: a policy covers it, or its optimizer has a budget.
func (m *PodMutator) charged(ctx context.Context, pod *corev1.Pod, ns string, wo *kcloudv1alpha1.WorkloadOptimizer) (bool, error) {
	policies, err := accounting.PoliciesFrom(ctx, m.Client)
	if err != nil {
		return false, err
	}
	in := pod
	if in.Namespace == "" {
		in = pod.DeepCopy()
		in.Namespace = ns
	}
	return len(accounting.LedgersOf(in, policies, wo)) > 0, nil
}

// OptimizerFor picks the optimizer that covers a pod: the one its label or annotation names, else
// one whose target owns it, else one whose selector matches it (the first by name when several do).
func OptimizerFor(pod *corev1.Pod, wos []kcloudv1alpha1.WorkloadOptimizer) *kcloudv1alpha1.WorkloadOptimizer {
	sort.Slice(wos, func(i, j int) bool { return wos[i].Name < wos[j].Name })
	for _, name := range []string{pod.Labels[kube.LabelOptimizer], pod.Annotations[AnnotationOptimizer]} {
		if name == "" {
			continue
		}
		for i := range wos {
			if wos[i].Name == name {
				return &wos[i]
			}
		}
		return nil // named, but not here (yet): leave the pod alone rather than guess
	}
	for i := range wos {
		if ref := wos[i].Spec.TargetRef; ref != nil && ownedBy(pod, ref) {
			return &wos[i]
		}
	}
	for i := range wos {
		if s := wos[i].Spec.Selector; s != nil {
			sel, err := metav1.LabelSelectorAsSelector(s)
			if err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
				return &wos[i]
			}
		}
	}
	return nil
}

// ownedBy reports whether the pod's controller is the target, or a ReplicaSet of the target
// Deployment (named <deployment>-<pod-template-hash>), without reading either from the API.
func ownedBy(pod *corev1.Pod, ref *kcloudv1alpha1.TargetReference) bool {
	owner := metav1.GetControllerOfNoCopy(pod)
	if owner == nil {
		return false
	}
	if owner.Kind == ref.Kind && owner.Name == ref.Name {
		return true
	}
	hash := pod.Labels["pod-template-hash"]
	return ref.Kind == "Deployment" && owner.Kind == "ReplicaSet" && hash != "" && owner.Name == ref.Name+"-"+hash
}

// Apply writes the optimizer's policy into the pod and returns warnings for the user. It only adds
// what is missing, so applying it twice changes nothing the second time.
func Apply(pod *corev1.Pod, wo *kcloudv1alpha1.WorkloadOptimizer, cat *catalog.Catalog, offers map[corev1.ResourceName]int64) []string {
	var warnings []string
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	if pod.Labels[kube.LabelOptimizer] != wo.Name {
		pod.Labels[kube.LabelOptimizer] = wo.Name
		pod.Annotations[kube.AnnotationLinkedByOperator] = "true"
	}
	pod.Annotations[kube.AnnotationPriority] = kube.PriorityAnnotation(kube.SpecPriority(wo))
	// Inferred before the annotation is written: the annotation is one of inference's inputs.
	inferred, why := InferWorkloadType(pod)
	declared := pod.Annotations[kube.AnnotationWorkloadType]
	if declared == "" {
		declared = string(wo.Spec.WorkloadType)
		pod.Annotations[kube.AnnotationWorkloadType] = declared
		if inferred != "" && !sameFamily(inferred, wo.Spec.WorkloadType) {
			warnings = append(warnings, fmt.Sprintf("pod looks like %s (%s) but WorkloadOptimizer %s says %s", inferred, why, wo.Name, declared))
		}
	}
	if pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == corev1.DefaultSchedulerName {
		pod.Spec.SchedulerName = SchedulerName
	}
	warnings = append(warnings, addAccelerators(pod, wo, cat, offers)...)
	addPlacement(pod, wo)
	return warnings
}

// sameFamily treats serving and inference as one: both answer requests.
func sameFamily(a, b kcloudv1alpha1.WorkloadType) bool {
	serving := func(t kcloudv1alpha1.WorkloadType) bool {
		return t == kcloudv1alpha1.WorkloadServing || t == kcloudv1alpha1.WorkloadInference
	}
	return a == b || (serving(a) && serving(b))
}

// addAccelerators adds the optimizer's resources to the first container when no container asks
// for an accelerator (or CPU and memory) itself.
func addAccelerators(pod *corev1.Pod, wo *kcloudv1alpha1.WorkloadOptimizer, cat *catalog.Catalog, offers map[corev1.ResourceName]int64) []string {
	if len(pod.Spec.Containers) == 0 {
		return nil
	}
	var warnings []string
	c := &pod.Spec.Containers[0]
	if c.Resources.Requests == nil {
		c.Resources.Requests = corev1.ResourceList{}
	}
	r := wo.Spec.Resources
	if r.CPU != nil && !anyRequests(pod, corev1.ResourceCPU) {
		c.Resources.Requests[corev1.ResourceCPU] = *r.CPU
	}
	if r.Memory != nil && !anyRequests(pod, corev1.ResourceMemory) {
		c.Resources.Requests[corev1.ResourceMemory] = *r.Memory
	}
	if asksAccelerator(pod) || kube.ShareMilli(pod) > 0 {
		return nil
	}
	for _, want := range []struct {
		count int32
		kind  catalog.AcceleratorKind
	}{{r.GPU, catalog.KindGPU}, {r.NPU, catalog.KindNPU}} {
		if want.count <= 0 {
			continue
		}
		res := ResourceFor(want.kind, cat, offers)
		if res == "" {
			warnings = append(warnings, fmt.Sprintf("spec.resources.%s: the fleet offers no %s; the pod asks for none", want.kind, strings.ToUpper(string(want.kind))))
			continue
		}
		q := *resource.NewQuantity(int64(want.count), resource.DecimalSI)
		c.Resources.Requests[res] = q
		if c.Resources.Limits == nil {
			c.Resources.Limits = corev1.ResourceList{}
		}
		c.Resources.Limits[res] = q // extended resources need limits equal to requests
	}
	return warnings
}

func anyRequests(pod *corev1.Pod, name corev1.ResourceName) bool {
	for _, c := range pod.Spec.Containers {
		if _, ok := c.Resources.Requests[name]; ok {
			return true
		}
		if _, ok := c.Resources.Limits[name]; ok {
			return true
		}
	}
	return false
}

func asksAccelerator(pod *corev1.Pod) bool {
	for _, r := range kube.AcceleratorResources {
		if anyRequests(pod, corev1.ResourceName(r)) {
			return true
		}
	}
	return false
}

// ResourceFor maps gpu or npu to the extended resource the fleet offers most devices of; without
// knowledge of the fleet, nvidia.com/gpu for GPUs and nothing for NPUs.
func ResourceFor(kind catalog.AcceleratorKind, cat *catalog.Catalog, offers map[corev1.ResourceName]int64) corev1.ResourceName {
	var best corev1.ResourceName
	var most int64
	names := make([]corev1.ResourceName, 0, len(offers))
	for r := range offers {
		names = append(names, r)
	}
	slices.Sort(names)
	for _, r := range names {
		devs := cat.DeviceForResource(string(r))
		if len(devs) == 0 || devs[0].Kind != kind {
			continue
		}
		if offers[r] > most {
			best, most = r, offers[r]
		}
	}
	if best == "" && kind == catalog.KindGPU && len(offers) == 0 {
		return catalog.ResourceNVIDIAGPU
	}
	return best
}

// addPlacement turns placementPolicy into a node selector and preferred node affinity, tolerates
// spot taints when spot is preferred, and prefers green nodes when asked to.
func addPlacement(pod *corev1.Pod, wo *kcloudv1alpha1.WorkloadOptimizer) {
	if p := wo.Spec.PlacementPolicy; p != nil {
		for k, v := range p.NodeSelector {
			if pod.Spec.NodeSelector == nil {
				pod.Spec.NodeSelector = map[string]string{}
			}
			if _, set := pod.Spec.NodeSelector[k]; !set {
				pod.Spec.NodeSelector[k] = v
			}
		}
		for _, rule := range p.Affinity {
			req := corev1.NodeSelectorRequirement{Key: rule.Key, Operator: corev1.NodeSelectorOpExists}
			if rule.Value != "" {
				req = corev1.NodeSelectorRequirement{Key: rule.Key, Operator: corev1.NodeSelectorOpIn, Values: []string{rule.Value}}
			}
			weight := rule.Weight
			if weight == 0 {
				weight = 100
			}
			prefer(pod, weight, req)
		}
	}
	if c := wo.Spec.CostConstraints; c != nil && c.PreferSpot {
		for _, key := range spotTaintKeys {
			tol := corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists}
			if !slices.ContainsFunc(pod.Spec.Tolerations, func(t corev1.Toleration) bool { return t.Key == key }) {
				pod.Spec.Tolerations = append(pod.Spec.Tolerations, tol)
			}
		}
	}
	if c := wo.Spec.PowerConstraints; c != nil && c.PreferGreen {
		prefer(pod, 50, corev1.NodeSelectorRequirement{Key: catalog.LabelGreenEnergy, Operator: corev1.NodeSelectorOpIn, Values: []string{"true"}})
	}
}

// prefer adds a preferred node affinity term unless an equal one is there.
func prefer(pod *corev1.Pod, weight int32, req corev1.NodeSelectorRequirement) {
	if pod.Spec.Affinity == nil {
		pod.Spec.Affinity = &corev1.Affinity{}
	}
	if pod.Spec.Affinity.NodeAffinity == nil {
		pod.Spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := pod.Spec.Affinity.NodeAffinity
	term := corev1.PreferredSchedulingTerm{Weight: weight, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{req}}}
	for _, t := range na.PreferredDuringSchedulingIgnoredDuringExecution {
		if equalTerm(t, term) {
			return
		}
	}
	na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution, term)
}

func equalTerm(a, b corev1.PreferredSchedulingTerm) bool {
	if a.Weight != b.Weight || len(a.Preference.MatchExpressions) != len(b.Preference.MatchExpressions) || len(a.Preference.MatchFields) != 0 {
		return false
	}
	for i, x := range a.Preference.MatchExpressions {
		y := b.Preference.MatchExpressions[i]
		if x.Key != y.Key || x.Operator != y.Operator || !slices.Equal(x.Values, y.Values) {
			return false
		}
	}
	return true
}
