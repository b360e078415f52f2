package autoscaler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/model"
)

func TestBehaviourOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		as   kcloudv1alpha1.AutoScaling
		want behaviour
	}{
		{"defaults: predictive, 5 minutes each", kcloudv1alpha1.AutoScaling{},
			behaviour{mode: model.ScalingPredictive, window: 5 * time.Minute, lead: 5 * time.Minute}},
		{"reactive, with its own window and lead", kcloudv1alpha1.AutoScaling{AutoScalingBehavior: kcloudv1alpha1.AutoScalingBehavior{
			Mode: kcloudv1alpha1.ScalingReactive, StabilizationWindowSeconds: ptr.To[int32](60), LeadSeconds: ptr.To[int32](90)}},
			behaviour{mode: model.ScalingReactive, window: time.Minute, lead: 90 * time.Second}},
		{"a window of 0 disables stabilization", kcloudv1alpha1.AutoScaling{AutoScalingBehavior: kcloudv1alpha1.AutoScalingBehavior{
			Mode: kcloudv1alpha1.ScalingPredictive, StabilizationWindowSeconds: ptr.To[int32](0)}},
			behaviour{mode: model.ScalingPredictive, window: 0, lead: 5 * time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := behaviourOf(&tc.as); got != tc.want {
				t.Errorf("behaviourOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestKeepRecent(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	recent := []model.Recommendation{{At: at(0), Replicas: 6}, {At: at(2), Replicas: 5}, {At: at(4), Replicas: 4}}
	for _, tc := range []struct {
		name string
		now  time.Time
		want []model.Recommendation
	}{
		{"older than the window fall off", at(6), []model.Recommendation{{At: at(2), Replicas: 5}, {At: at(4), Replicas: 4}, {At: at(6), Replicas: 3}}},
		{"this step's replaces an earlier one of the same step", at(4),
			[]model.Recommendation{{At: at(0), Replicas: 6}, {At: at(2), Replicas: 5}, {At: at(4), Replicas: 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]model.Recommendation(nil), recent...)
			got := keepRecent(in, tc.now, 5*time.Minute, 3)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("keepRecent (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(recent, in); diff != "" {
				t.Errorf("the input changed (-was +now):\n%s", diff)
			}
		})
	}
}

func TestLimitConditionReason(t *testing.T) {
	// The ScalingLimited reason is the field of the bound, as the API documents it.
	for limit, want := range map[model.ScalingLimit]string{
		model.LimitMinReplicas: "MinReplicas",
		model.LimitMaxReplicas: "MaxReplicas",
		model.LimitCostCap:     "MaxCostPerHour",
		model.LimitPowerCap:    "MaxPowerUsage",
		model.LimitBudget:      "Budget",
		"":                     "",
	} {
		if got := limitConditionReason(limit); got != want {
			t.Errorf("limitConditionReason(%q) = %q, want %q", limit, got, want)
		}
	}
}
