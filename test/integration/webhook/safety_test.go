package webhook

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
)

// TestWebhookServerDown stops the operator, and with it the webhook server: pods are still
// created (the pod webhooks fail open within their 2-second timeout), invalid custom resources are
// still refused by the apiserver's own schema validation, and valid ones wait for the validating
// webhook (it fails closed). The operator is started again afterwards.
func TestWebhookServerDown(t *testing.T) {
	ctx := context.Background()
	ns := "wh-down"
	namespace(t, ns)
	optimizer(t, ns, "trainer", nil)
	stopOperator()
	defer func() {
		if err := startOperator(); err != nil {
			t.Fatalf("restarting the operator: %v", err)
		}
	}()

	for _, p := range []*corev1.Pod{basePod(ns, "ordinary"), func() *corev1.Pod {
		p := basePod(ns, "linked")
		p.Labels[kube.LabelOptimizer] = "trainer"
		return p
	}()} {
		start := time.Now()
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatalf("pod %s refused with the webhook server down: %v", p.Name, err)
		}
		if p.Spec.SchedulerName != corev1.DefaultSchedulerName {
			t.Errorf("pod %s mutated with no webhook server: %q", p.Name, p.Spec.SchedulerName)
		}
		t.Logf("pod %s created in %s with the webhook server down", p.Name, time.Since(start).Round(time.Millisecond))
	}

	bad := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: ns},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: "gaming"}}
	err := k8s.Create(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), `spec.workloadType: Unsupported value: "gaming"`) {
		t.Errorf("invalid optimizer: %v, want the schema's refusal", err)
	}
	good := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "good", Namespace: ns},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadBatch}}
	err = k8s.Create(ctx, good)
	if err == nil || !strings.Contains(err.Error(), "vworkloadoptimizer.kcloud.io") {
		t.Errorf("valid optimizer with the validating webhook down: %v, want a refusal naming the webhook (fail closed)", err)
	}
}
