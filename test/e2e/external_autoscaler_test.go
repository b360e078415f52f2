package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
)

// TestAutoscalerStandsBackForAnHPA: a Deployment of 4 replicas under an optimizer whose
// maxCostPerHour affords 2. While a HorizontalPodAutoscaler scales the same Deployment (the local
// cluster's kube-controller-manager runs the HPA controller; with no metrics API it leaves the
// count alone), the optimizer reports ScalingDelegated with the HPA's name and a Warning event,
// and the Deployment keeps its 4 replicas over several evaluations. Once the HPA is deleted the
// autoscaler resumes and brings the Deployment down to the cap's 2.
func TestAutoscalerStandsBackForAnHPA(t *testing.T) {
	ctx := context.Background()
	c := crClient(t)
	ns := namespace(t, "e2e-hpa")
	const step = 3 * time.Second
	t.Cleanup(restartOperator(t, fmt.Sprintf("--autoscale-interval=%s", step)))

	nodes, err := suite.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: catalog.LabelInstanceType + "=p5.48xlarge"})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("want the fleet's one p5.48xlarge node: %v, %v", nodes, err)
	}
	requests := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	perReplica, _ := expectedFigures(t, &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c",
		Resources: corev1.ResourceRequirements{Requests: requests}}}}}, &nodes.Items[0])
	maxCost := 2.5 * perReplica

	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](4), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			NodeSelector: map[string]string{catalog.LabelInstanceType: "p5.48xlarge"},
			Containers:   []corev1.Container{{Name: "web", Image: "example.com/web:1", Resources: corev1.ResourceRequirements{Requests: requests}}}}}}}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "web-hpa", Namespace: ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr.To[int32](1), MaxReplicas: 10,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](80)}}}}}}
	if err := c.Create(ctx, hpa); err != nil {
		t.Fatal(err)
	}
	wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: kcloudv1alpha1.WorkloadOptimizerSpec{
		WorkloadType:    kcloudv1alpha1.WorkloadServing,
		TargetRef:       &kcloudv1alpha1.TargetReference{Kind: "Deployment", Name: "web"},
		CostConstraints: &kcloudv1alpha1.CostConstraints{MaxCostPerHour: &maxCost},
		AutoScaling: &kcloudv1alpha1.AutoScaling{MinReplicas: 1, MaxReplicas: 10,
			Metrics: []kcloudv1alpha1.ScalingMetric{{Type: kcloudv1alpha1.MetricCost, Threshold: 100}}}}}
	if err := c.Create(ctx, wo); err != nil {
		t.Fatal(err)
	}

	delegated := func(want metav1.ConditionStatus) func() error {
		return func() error {
			got := &kcloudv1alpha1.WorkloadOptimizer{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(wo), got); err != nil {
				return err
			}
			if got.Status.AutoScaling == nil {
				return errorf("no status.autoScaling yet")
			}
			cond := meta.FindStatusCondition(got.Status.AutoScaling.Conditions, kcloudv1alpha1.ConditionScalingDelegated)
			if cond == nil || cond.Status != want {
				return errorf(fmt.Sprintf("ScalingDelegated %+v, want %s", cond, want))
			}
			if want == metav1.ConditionTrue && (cond.Reason != kcloudv1alpha1.ReasonExternalAutoscaler || !strings.Contains(cond.Message, "HorizontalPodAutoscaler "+ns+"/web-hpa")) {
				return errorf(fmt.Sprintf("ScalingDelegated %s: %s, want reason %s naming the HPA", cond.Reason, cond.Message, kcloudv1alpha1.ReasonExternalAutoscaler))
			}
			return nil
		}
	}
	eventually(t, time.Minute, delegated(metav1.ConditionTrue))
	eventually(t, 30*time.Second, func() error {
		if r := asEventReasons(t, ns, "web"); !strings.Contains(r, kcloudv1alpha1.ReasonExternalAutoscaler) {
			return errorf(fmt.Sprintf("events %q, want %s", r, kcloudv1alpha1.ReasonExternalAutoscaler))
		}
		return nil
	})
	// Several evaluations with the HPA there: the replicas stay as the test set them.
	for deadline := time.Now().Add(4 * step); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		got, err := suite.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *got.Spec.Replicas != 4 {
			t.Fatalf("the Deployment went to %d replicas while an HPA scales it; want the 4 the test set", *got.Spec.Replicas)
		}
	}

	if err := c.Delete(ctx, hpa); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, delegated(metav1.ConditionFalse))
	eventually(t, time.Minute, func() error {
		got, err := suite.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if *got.Spec.Replicas != 2 {
			return errorf(fmt.Sprintf("the Deployment has %d replicas; want 2, what maxCostPerHour %.4f affords at %.4f USD/h a replica", *got.Spec.Replicas, maxCost, perReplica))
		}
		return nil
	})
}
