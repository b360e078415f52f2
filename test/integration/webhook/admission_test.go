package webhook

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
)

// TestPodMutations creates pods through the apiserver, which calls the mutating webhook over TLS,
// and checks what was stored.
func TestPodMutations(t *testing.T) {
	fleet(t)
	ns := "wh-mutate"
	namespace(t, ns)
	namespace(t, "kube-system")
	optimizer(t, ns, "trainer", func(wo *kcloudv1alpha1.WorkloadOptimizer) {
		wo.Spec.Resources = kcloudv1alpha1.WorkloadResources{CPU: quantity("16"), Memory: quantity("64Gi"), GPU: 4}
		wo.Spec.CostConstraints = &kcloudv1alpha1.CostConstraints{PreferSpot: true}
		wo.Spec.PowerConstraints = &kcloudv1alpha1.PowerConstraints{PreferGreen: true}
		wo.Spec.PlacementPolicy = &kcloudv1alpha1.PlacementPolicy{NodeSelector: map[string]string{"topology.kubernetes.io/region": "us-east-1"},
			Affinity: []kcloudv1alpha1.AffinityRule{{Type: "gpu_workload", Key: "nvidia.com/gpu.product", Value: "NVIDIA-A100-SXM4-40GB", Weight: 80}}}
	})
	optimizer(t, ns, "npu-serving", func(wo *kcloudv1alpha1.WorkloadOptimizer) {
		wo.Spec.WorkloadType = kcloudv1alpha1.WorkloadServing
		wo.Spec.Resources = kcloudv1alpha1.WorkloadResources{NPU: 2}
		wo.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "npu-serving"}}
	})
	optimizer(t, ns, "web", func(wo *kcloudv1alpha1.WorkloadOptimizer) {
		wo.Spec.WorkloadType = kcloudv1alpha1.WorkloadServing
		wo.Spec.TargetRef = &kcloudv1alpha1.TargetReference{Kind: "Deployment", Name: "web"}
		wo.Spec.Resources = kcloudv1alpha1.WorkloadResources{GPU: 1}
	})
	time.Sleep(500 * time.Millisecond) // the webhook reads optimizers from the operator's cache

	gpu := func(n int64) corev1.ResourceList {
		return corev1.ResourceList{catalog.ResourceNVIDIAGPU: *resource.NewQuantity(n, resource.DecimalSI)}
	}
	tests := []struct {
		name  string
		pod   func() *corev1.Pod
		check func(t *testing.T, p *corev1.Pod)
		warn  string
	}{
		{"linked by label: scheduler, resources, placement, spot, green",
			func() *corev1.Pod { p := basePod(ns, "trainer-0"); p.Labels[kube.LabelOptimizer] = "trainer"; return p },
			func(t *testing.T, p *corev1.Pod) {
				c := p.Spec.Containers[0]
				if p.Spec.SchedulerName != "kcloud-scheduler" {
					t.Errorf("schedulerName %q", p.Spec.SchedulerName)
				}
				if q := c.Resources.Requests[catalog.ResourceNVIDIAGPU]; q.Value() != 4 {
					t.Errorf("nvidia.com/gpu request %v, want 4", q.String())
				}
				if q := c.Resources.Limits[catalog.ResourceNVIDIAGPU]; q.Value() != 4 {
					t.Errorf("nvidia.com/gpu limit %v, want 4", q.String())
				}
				if q := c.Resources.Requests[corev1.ResourceCPU]; q.String() != "16" {
					t.Errorf("cpu %v", q.String())
				}
				if p.Spec.NodeSelector["topology.kubernetes.io/region"] != "us-east-1" {
					t.Errorf("nodeSelector %v", p.Spec.NodeSelector)
				}
				prefs := p.Spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution
				if len(prefs) != 2 || prefs[0].Weight != 80 || prefs[1].Preference.MatchExpressions[0].Key != catalog.LabelGreenEnergy {
					t.Errorf("preferred affinity %+v", prefs)
				}
				if !hasToleration(p, "karpenter.sh/capacity-type") || !hasToleration(p, "cloud.google.com/gke-spot") {
					t.Errorf("tolerations %+v lack the spot taints", p.Spec.Tolerations)
				}
				if p.Annotations["kcloud.io/workload-type"] != "training" {
					t.Errorf("annotations %v", p.Annotations)
				}
			}, ""},
		{"the pod's own accelerator request is kept",
			func() *corev1.Pod {
				p := basePod(ns, "trainer-own")
				p.Labels[kube.LabelOptimizer] = "trainer"
				p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: gpu(1), Requests: gpu(1)}
				return p
			},
			func(t *testing.T, p *corev1.Pod) {
				if q := p.Spec.Containers[0].Resources.Limits[catalog.ResourceNVIDIAGPU]; q.Value() != 1 {
					t.Errorf("gpu limit %v, want the pod's own 1", q.String())
				}
			}, ""},
		{"found by selector: linked, npu mapped to the NPU the fleet offers most",
			func() *corev1.Pod { p := basePod(ns, "npu-0"); p.Labels["app"] = "npu-serving"; return p },
			func(t *testing.T, p *corev1.Pod) {
				if p.Labels[kube.LabelOptimizer] != "npu-serving" || p.Annotations["kcloud.io/linked-by-operator"] != "true" {
					t.Errorf("labels %v annotations %v", p.Labels, p.Annotations)
				}
				if q := p.Spec.Containers[0].Resources.Limits[catalog.ResourceRebellionsATOM]; q.Value() != 2 {
					t.Errorf("limits %v, want rebellions.ai/ATOM: 2 (8 ATOM devices against 4 RNGD)", p.Spec.Containers[0].Resources.Limits)
				}
			}, ""},
		{"owned by the target Deployment's ReplicaSet",
			func() *corev1.Pod {
				p := basePod(ns, "web-7d9f-abcde")
				p.Labels["pod-template-hash"] = "7d9f"
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f", UID: "u1", Controller: ptr.To(true)}}
				p.Spec.Containers[0].Image = "vllm/vllm-openai:v0.6"
				return p
			},
			func(t *testing.T, p *corev1.Pod) {
				if p.Labels[kube.LabelOptimizer] != "web" || p.Spec.SchedulerName != "kcloud-scheduler" {
					t.Errorf("labels %v scheduler %q", p.Labels, p.Spec.SchedulerName)
				}
			}, ""},
		{"image says serving, optimizer says training: a warning",
			func() *corev1.Pod {
				p := basePod(ns, "trainer-vllm")
				p.Labels[kube.LabelOptimizer] = "trainer"
				p.Spec.Containers[0].Image = "vllm/vllm-openai:v0.6"
				return p
			},
			func(t *testing.T, p *corev1.Pod) {}, "pod looks like serving (image vllm/vllm-openai:v0.6) but WorkloadOptimizer trainer says training"},
		{"no optimizer covers it: unchanged",
			func() *corev1.Pod { p := basePod(ns, "plain"); p.Labels["app"] = "other"; return p },
			func(t *testing.T, p *corev1.Pod) {
				if p.Spec.SchedulerName != corev1.DefaultSchedulerName || len(p.Labels) != 1 || len(p.Annotations) != 0 || p.Spec.Affinity != nil {
					t.Errorf("uncovered pod changed: scheduler %q labels %v annotations %v", p.Spec.SchedulerName, p.Labels, p.Annotations)
				}
			}, ""},
		{"another scheduler's pod is not ours",
			func() *corev1.Pod {
				p := basePod(ns, "volcano")
				p.Labels[kube.LabelOptimizer] = "trainer"
				p.Spec.SchedulerName = "volcano"
				return p
			},
			func(t *testing.T, p *corev1.Pod) {
				if p.Spec.SchedulerName != "volcano" || len(p.Annotations) != 0 {
					t.Errorf("volcano pod changed: %q %v", p.Spec.SchedulerName, p.Annotations)
				}
			}, ""},
		{"kube-system is never touched",
			func() *corev1.Pod {
				p := basePod("kube-system", "sys")
				p.Labels[kube.LabelOptimizer] = "trainer"
				return p
			},
			func(t *testing.T, p *corev1.Pod) {
				if p.Spec.SchedulerName != corev1.DefaultSchedulerName || len(p.Annotations) != 0 {
					t.Errorf("kube-system pod changed: %q %v", p.Spec.SchedulerName, p.Annotations)
				}
			}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pod()
			warnings.take()
			if err := k8s.Create(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
			got := strings.Join(warnings.take(), "\n")
			if tc.warn != "" && !strings.Contains(got, tc.warn) {
				t.Errorf("warnings %q, want %q", got, tc.warn)
			}
			if tc.warn == "" && got != "" {
				t.Errorf("unexpected warnings %q", got)
			}
		})
	}
}

func hasToleration(p *corev1.Pod, key string) bool {
	for _, t := range p.Spec.Tolerations {
		if t.Key == key {
			return true
		}
	}
	return false
}

// TestDenials: pods a deny-mode policy has no room for, and custom resources that break a rule
// across objects or against the catalog, are refused with a message naming the rule and figures.
func TestDenials(t *testing.T) {
	fleet(t)
	ctx := context.Background()
	ns := "wh-deny"
	namespace(t, ns)
	// A pod that has already spent the tiny budget of a deny-mode CostPolicy.
	spender := basePod(ns, "spender")
	spender.Spec.NodeName = "a100-0"
	spender.Spec.Containers[0].Resources.Limits = corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("1")}
	spender.Annotations = map[string]string{"kcloud.io/ignore": "true"} // the webhooks skip it; it is the fixture
	if err := k8s.Create(ctx, spender); err != nil {
		t.Fatal(err)
	}
	spender.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &metav1.Time{Time: time.Now().Add(-time.Hour)}}
	if err := k8s.Status().Update(ctx, spender); err != nil {
		t.Fatal(err)
	}
	tinyBudget := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "wh-spent"},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}},
			Budget: &kcloudv1alpha1.CostBudget{Amount: 0.01, Period: kcloudv1alpha1.BudgetPeriodMonth}, Enforcement: kcloudv1alpha1.EnforcementDeny}}
	capped := &kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "wh-watts"},
		Spec: kcloudv1alpha1.PowerPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}}, MaxPowerWatts: ptr.To(10.0),
			Enforcement: kcloudv1alpha1.EnforcementDeny}}
	teamCap := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "wh-team-cap"},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{"wh-team"}}, MaxCostPerHour: ptr.To(50.0),
			SpotPolicy: kcloudv1alpha1.SpotAvoid}}
	for _, o := range []client.Object{tinyBudget, capped, teamCap} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// The operator accounts the spender's hour against the budget.
	deadline := time.Now().Add(time.Minute)
	for {
		got := &kcloudv1alpha1.CostPolicy{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(tinyBudget), got); err != nil {
			t.Fatal(err)
		}
		if got.Status.RemainingBudget != nil && *got.Status.RemainingBudget < 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("budget never spent: %+v", got.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}

	bogusSelector := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Bogus", Values: []string{"x"}}}}
	gpuPod := basePod(ns, "new-job")
	gpuPod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("1")}
	tests := []struct {
		name string
		obj  client.Object
		want []string // every fragment must be in the error
	}{
		{"pod under a spent deny-mode budget and a power cap", gpuPod, []string{
			"CostPolicy wh-spent (enforcement deny): budget of 0.01 USD per month is spent",
			"PowerPolicy wh-watts (enforcement deny): maxPowerWatts 10 W: covered pods draw", "this pod adds at least"}},
		{"optimizer cap above its policy's cap", &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "greedy", Namespace: "wh-team"},
			Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadBatch, CostConstraints: &kcloudv1alpha1.CostConstraints{MaxCostPerHour: ptr.To(80.0)}}},
			[]string{"spec.costConstraints.maxCostPerHour: Invalid value: 80: exceeds maxCostPerHour 50 of CostPolicy wh-team-cap"}},
		{"new optimizer under a spent deny-mode budget", &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: ns},
			Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadBatch}},
			[]string{"spec: Forbidden: CostPolicy wh-spent (enforcement deny) covers this workload and its budget of 0.01 USD per month is spent"}},
		{"power cap below the accelerators' idle draw", &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "frugal", Namespace: "wh-team"},
			Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadTraining, Resources: kcloudv1alpha1.WorkloadResources{GPU: 8},
				PowerConstraints: &kcloudv1alpha1.PowerConstraints{MaxPowerUsage: ptr.To(20.0)}}},
			[]string{"spec.powerConstraints.maxPowerUsage: Invalid value: 20: is below the least the requested accelerators draw idle"}},
		{"spot rules in conflict", &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "wh-spot-only"},
			Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{"wh-team", "other"}}, SpotPolicy: kcloudv1alpha1.SpotRequire}},
			[]string{"spec.spotPolicy: Invalid value: \"require\": conflicts with CostPolicy wh-team-cap (spotPolicy avoid)"}},
		{"deny-mode carbon limit no grid meets", &kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "wh-spotless"},
			Spec: kcloudv1alpha1.PowerPolicySpec{MaxCarbonIntensity: ptr.To(1.0), Enforcement: kcloudv1alpha1.EnforcementDeny}},
			[]string{"spec.maxCarbonIntensity: Invalid value: 1: is below every grid in the catalog"}},
		{"CostPolicy selector with an unknown operator", &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "wh-bogus"},
			Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Selector: bogusSelector}, MaxCostPerHour: ptr.To(5.0), Enforcement: kcloudv1alpha1.EnforcementDeny}},
			[]string{`spec.selector.matchExpressions[0].operator: Invalid value: "Bogus": not a valid selector operator`}},
		{"PowerPolicy selector with an unknown operator", &kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "wh-bogus"},
			Spec: kcloudv1alpha1.PowerPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Selector: bogusSelector}, PreferGreen: true}},
			[]string{`spec.selector.matchExpressions[0].operator: Invalid value: "Bogus": not a valid selector operator`}},
		{"optimizer selector with a bad label value", &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "badsel", Namespace: "wh-team"},
			Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadBatch,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "not ok!"}}}},
			[]string{`spec.selector.matchLabels: Invalid value: "not ok!"`}},
	}
	namespace(t, "wh-team")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := k8s.Create(ctx, tc.obj)
			if err == nil {
				t.Fatalf("created; want refused with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// A pod outside the policies' namespaces is admitted.
	free := basePod("wh-team", "free")
	if err := k8s.Create(ctx, free); err != nil {
		t.Errorf("pod outside every deny-mode policy refused: %v", err)
	}
	// A DaemonSet's pod under the spent budget is admitted: refusing it leaves a node without it.
	ds := basePod(ns, "node-agent")
	ds.Spec.Containers[0].Resources.Limits = corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("1")}
	ds.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "node-agent", UID: "0b6c7d52-1b1f-4c8e-9d3a-6a1f2c3d4e5f", Controller: ptr.To(true)}}
	if err := k8s.Create(ctx, ds); err != nil {
		t.Errorf("DaemonSet pod under a spent deny-mode budget refused: %v", err)
	}
}
