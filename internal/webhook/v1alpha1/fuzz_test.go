package v1alpha1

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
)

// The fuzz targets feed arbitrary bytes where the apiserver sends an AdmissionReview, decode them
// as the webhooks do, and run the decisions on whatever decodes. They must never panic, and the
// pod mutation must stay idempotent. `make fuzz` runs each for a minute (not part of `make test`;
// `go test` runs the seeds below as ordinary tests).

func seedReviews(f *testing.F) {
	f.Add([]byte(`{"request":{"uid":"1","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"ml","operation":"CREATE",` +
		`"object":{"metadata":{"name":"p","labels":{"kcloud.io/optimizer":"trainer"}},"spec":{"containers":[{"name":"c","image":"vllm/vllm",` +
		`"resources":{"limits":{"nvidia.com/gpu":"2"}}}]}}}}`))
	f.Add([]byte(`{"request":{"uid":"2","object":{"metadata":{"annotations":{"alibabacloud.com/gpu-milli":"460"},` +
		`"ownerReferences":[{"kind":"ReplicaSet","name":"web-abc","controller":true}],"labels":{"pod-template-hash":"abc"}},"spec":{"containers":[]}}}}`))
	f.Add([]byte(`{"request":{"uid":"3","kind":{"group":"kcloud.io","version":"v1alpha1","kind":"WorkloadOptimizer"},"object":` +
		`{"apiVersion":"kcloud.io/v1alpha1","kind":"WorkloadOptimizer","metadata":{"name":"w","namespace":"ml"},"spec":{"workloadType":"training",` +
		`"resources":{"gpu":4,"npu":2},"costConstraints":{"maxCostPerHour":1e308},"powerConstraints":{"maxPowerUsage":-1}}}}}`))
	f.Add([]byte(`{"request":{"object":{"spec":{"spotPolicy":"require","namespaces":["a"],"selector":{"matchLabels":{"x":"y"}}}}}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`not json`))
}

func fixtures() ([]kcloudv1alpha1.WorkloadOptimizer, []kcloudv1alpha1.CostPolicy, []kcloudv1alpha1.PowerPolicy) {
	spent, capUSD, watts := -1.0, 10.0, 100.0
	wos := []kcloudv1alpha1.WorkloadOptimizer{
		wo("trainer", func(w *kcloudv1alpha1.WorkloadOptimizer) {
			w.Spec.Resources = kcloudv1alpha1.WorkloadResources{GPU: 4, NPU: 1}
			w.Spec.CostConstraints = &kcloudv1alpha1.CostConstraints{PreferSpot: true}
			w.Spec.PowerConstraints = &kcloudv1alpha1.PowerConstraints{PreferGreen: true}
		}),
		wo("web", func(w *kcloudv1alpha1.WorkloadOptimizer) {
			w.Spec.TargetRef = &kcloudv1alpha1.TargetReference{Kind: "Deployment", Name: "web"}
		}),
	}
	costs := []kcloudv1alpha1.CostPolicy{{Spec: kcloudv1alpha1.CostPolicySpec{MaxCostPerHour: &capUSD, SpotPolicy: kcloudv1alpha1.SpotAvoid,
		Budget: &kcloudv1alpha1.CostBudget{Amount: 1}, Enforcement: kcloudv1alpha1.EnforcementDeny}, Status: kcloudv1alpha1.CostPolicyStatus{RemainingBudget: &spent}}}
	costs[0].Name = "team"
	powers := []kcloudv1alpha1.PowerPolicy{{Spec: kcloudv1alpha1.PowerPolicySpec{MaxPowerWatts: &watts, Enforcement: kcloudv1alpha1.EnforcementDeny}}}
	return wos, costs, powers
}

func decodeRequest(t *testing.T, data []byte) (admission.Request, bool) {
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &review); err != nil || review.Request == nil {
		return admission.Request{}, false
	}
	return admission.Request{AdmissionRequest: *review.Request}, true
}

// FuzzPodAdmission decodes a pod as the mutating and validating webhooks do and runs them.
func FuzzPodAdmission(f *testing.F) {
	seedReviews(f)
	cat := catalog.Default()
	decoder := admission.NewDecoder(scheme())
	offers := map[corev1.ResourceName]int64{catalog.ResourceNVIDIAGPU: 8, catalog.ResourceRebellionsATOM: 4}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, ok := decodeRequest(t, data)
		if !ok {
			return
		}
		pod := &corev1.Pod{}
		if err := decoder.DecodeRaw(req.Object, pod); err != nil {
			return
		}
		wos, costs, powers := fixtures()
		if w := OptimizerFor(pod, wos); w != nil {
			Apply(pod, w, cat, offers)
			once := pod.DeepCopy()
			if warnings := Apply(pod, w, cat, offers); len(warnings) != 0 {
				t.Fatalf("second Apply warned: %v", warnings)
			}
			if diff := cmp.Diff(once, pod); diff != "" {
				t.Fatalf("Apply is not idempotent (-once +twice):\n%s", diff)
			}
		}
		CheckPod(pod, costs, powers, func() (model.Totals, bool) { return model.Totals{CostPerHour: 1, PowerWatts: 50}, true }, nil)
	})
}

// FuzzPolicyValidation decodes the three kinds as the validating webhooks do and runs the rules.
func FuzzPolicyValidation(f *testing.F) {
	seedReviews(f)
	cat := catalog.Default()
	decoder := admission.NewDecoder(scheme())
	pv := &PowerPolicyValidator{Catalog: cat}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, ok := decodeRequest(t, data)
		if !ok {
			return
		}
		_, costs, _ := fixtures()
		for _, obj := range []runtime.Object{&kcloudv1alpha1.WorkloadOptimizer{}, &kcloudv1alpha1.CostPolicy{}, &kcloudv1alpha1.PowerPolicy{}} {
			if err := decoder.DecodeRaw(req.Object, obj); err != nil {
				continue
			}
			switch o := obj.(type) {
			case *kcloudv1alpha1.WorkloadOptimizer:
				CheckOptimizer(o, costs, cat, true)
			case *kcloudv1alpha1.CostPolicy:
				CheckSpotConflicts(o, costs)
			case *kcloudv1alpha1.PowerPolicy:
				_, _ = pv.validate(o)
			}
		}
	})
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = corev1.AddToScheme(s)
	_ = kcloudv1alpha1.AddToScheme(s)
	return s
}
