package autoscaler

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/kube"
)

// enforcingLimits are the limits that the CostPolicies covering the target's pods set, as the
// shared translation layer works them out (kube.Policies.For); the target's pods are judged by the
// first one, or by a pod of its template when none exists, and there are none when neither can be
// read. replicaLimits keeps those that enforce.
func (r *Reconciler) enforcingLimits(ctx context.Context, st *state) ([]kube.PodLimit, error) {
	probe := r.probePod(ctx, st)
	if probe == nil {
		return nil, nil
	}
	policies := &kcloudv1alpha1.CostPolicyList{}
	if err := r.Client.List(ctx, policies); err != nil {
		return nil, fmt.Errorf("listing CostPolicies: %w", err)
	}
	return kube.PoliciesOf(policies.Items, nil).For(probe, nil).Limits, nil
}

// probePod is the pod that stands for the target's replicas: its first pod, or a pod of its
// template when none exists (nil when that cannot be read).
func (r *Reconciler) probePod(ctx context.Context, st *state) *corev1.Pod {
	if len(st.pods) > 0 {
		return st.pods[0]
	}
	if p, err := r.templatePod(ctx, st); err == nil {
		return p
	}
	return nil
}
