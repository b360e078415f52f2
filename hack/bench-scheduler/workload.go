package main

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
)

// The pod mix, by i mod 20 within each block of 20 pods: 9 whole GPUs, one 2-GPU, one 4-GPU, two
// shares of a device, a gang of three 1-GPU pods, four CPU-only pods. Every other block of 20 is
// under a WorkloadOptimizer with caps and carries the label the enforcing CostPolicy and PowerPolicy
// select: half of the pods, gangs whole.
const (
	optimizersPerRound = 10
	gangSize           = 3
	labelLimited       = "bench.kcloud.io/limited"
)

func podName(i int) string { return fmt.Sprintf("p-%05d", i) }

// benchPod is pod i of the mix.
func benchPod(ns, schedulerName string, i int) *corev1.Pod {
	block, r := i/20, i%20
	labels, annotations := map[string]string{}, map[string]string{}
	gpus := int64(0)
	switch {
	case r < 9:
		gpus = 1
	case r == 9:
		gpus = 2
	case r == 10:
		gpus = 4
	case r < 13:
		annotations[kube.AnnotationGPUMilli] = strconv.Itoa(250 * (1 + (i/7)%3)) // 250, 500 or 750
	case r < 13+gangSize:
		gpus = 1
		labels[kube.LabelGang] = fmt.Sprintf("g-%04d", block)
		annotations[kube.AnnotationGangSize] = strconv.Itoa(gangSize)
	}
	if block%2 == 0 {
		labels[labelLimited] = "true"
		labels[kube.LabelOptimizer] = optimizerName((block / 2) % optimizersPerRound)
	}
	res := corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(int64(1000+i%4*1000), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(int64(4+i%3*4)<<30, resource.BinarySI)}
	c := corev1.Container{Name: "c", Image: "example.com/bench:1", Resources: corev1.ResourceRequirements{Requests: res}}
	if gpus > 0 {
		c.Resources.Limits = corev1.ResourceList{catalog.ResourceNVIDIAGPU: *resource.NewQuantity(gpus, resource.DecimalSI)}
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: podName(i), Namespace: ns, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{SchedulerName: schedulerName, Containers: []corev1.Container{c}}}
}

func optimizerName(k int) string { return fmt.Sprintf("wo-%02d", k) }

// The caps are far above what the bench's pods cost or draw, so that every pod binds and each round
// measures scheduling, not waiting: the limit path runs in every cycle of a limited pod all the same.
const (
	optimizerMaxCostPerHour = 1e6 // USD/h, each of 10 optimizers per round
	optimizerMaxPowerWatts  = 1e8 // W
	policyMaxCostPerHour    = 1e7 // USD/h over every limited pod of the cluster
	policyBudgetUSD         = 1e9 // a month's budget, with as much remaining
	policyMaxPowerWatts     = 1e9 // W
	policyEnergyBudgetKWh   = 1e9 // kWh a month
	benchPolicyName         = "bench-limited"
	kcloudGroup             = "kcloud.io"
	kcloudVersion           = "v1alpha1"
)

var (
	gvrOptimizers    = schema.GroupVersionResource{Group: kcloudGroup, Version: kcloudVersion, Resource: "workloadoptimizers"}
	gvrCostPolicies  = schema.GroupVersionResource{Group: kcloudGroup, Version: kcloudVersion, Resource: "costpolicies"}
	gvrPowerPolicies = schema.GroupVersionResource{Group: kcloudGroup, Version: kcloudVersion, Resource: "powerpolicies"}
)

func toUnstructured(obj runtime.Object, kind string) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting a %s: %w", kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(kcloudGroup + "/" + kcloudVersion)
	u.SetKind(kind)
	return u, nil
}

// createPolicies creates the enforcing CostPolicy (a cap and a monthly budget, its remaining amount
// written to status as kcloud-operator would) and PowerPolicy (a cap and an energy budget) over the
// limited pods of every namespace.
func createPolicies(ctx context.Context, dyn dynamic.Interface) error {
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{labelLimited: "true"}}
	cp := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: benchPolicyName}, Spec: kcloudv1alpha1.CostPolicySpec{
		PolicyTarget:   kcloudv1alpha1.PolicyTarget{Selector: selector},
		MaxCostPerHour: new(float64(policyMaxCostPerHour)),
		Budget:         &kcloudv1alpha1.CostBudget{Amount: policyBudgetUSD, Period: kcloudv1alpha1.BudgetPeriodMonth},
		Enforcement:    kcloudv1alpha1.EnforcementDeny,
	}}
	u, err := toUnstructured(cp, "CostPolicy")
	if err != nil {
		return err
	}
	created, err := dyn.Resource(gvrCostPolicies).Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating CostPolicy %s: %w", benchPolicyName, err)
	}
	if err := unstructured.SetNestedField(created.Object, float64(policyBudgetUSD), "status", "remainingBudget"); err != nil {
		return err
	}
	if _, err := dyn.Resource(gvrCostPolicies).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("writing the status of CostPolicy %s: %w", benchPolicyName, err)
	}
	pp := &kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: benchPolicyName}, Spec: kcloudv1alpha1.PowerPolicySpec{
		PolicyTarget:  kcloudv1alpha1.PolicyTarget{Selector: selector},
		MaxPowerWatts: new(float64(policyMaxPowerWatts)),
		EnergyBudget:  &kcloudv1alpha1.EnergyBudget{KilowattHours: policyEnergyBudgetKWh, Period: kcloudv1alpha1.BudgetPeriodMonth},
		Enforcement:   kcloudv1alpha1.EnforcementDeny,
	}}
	if u, err = toUnstructured(pp, "PowerPolicy"); err != nil {
		return err
	}
	if _, err := dyn.Resource(gvrPowerPolicies).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating PowerPolicy %s: %w", benchPolicyName, err)
	}
	return nil
}

// createOptimizers creates a round's WorkloadOptimizers, each with a cost and a power cap.
func createOptimizers(ctx context.Context, dyn dynamic.Interface, ns string) error {
	for k := range optimizersPerRound {
		wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: optimizerName(k), Namespace: ns},
			Spec: kcloudv1alpha1.WorkloadOptimizerSpec{
				WorkloadType:     kcloudv1alpha1.WorkloadTraining,
				CostConstraints:  &kcloudv1alpha1.CostConstraints{MaxCostPerHour: new(float64(optimizerMaxCostPerHour))},
				PowerConstraints: &kcloudv1alpha1.PowerConstraints{MaxPowerUsage: new(float64(optimizerMaxPowerWatts))},
			}}
		u, err := toUnstructured(wo, "WorkloadOptimizer")
		if err != nil {
			return err
		}
		if _, err := dyn.Resource(gvrOptimizers).Namespace(ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating WorkloadOptimizer %s/%s: %w", ns, wo.Name, err)
		}
	}
	return nil
}
