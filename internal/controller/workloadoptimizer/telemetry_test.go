package workloadoptimizer

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
)

func TestTelemetryFresh(t *testing.T) {
	last := time.Date(2026, 5, 1, 7, 55, 0, 0, time.UTC)
	pod := func(name, source string, stale time.Time) runningPod {
		return runningPod{pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}, fig: cluster.Figures{PowerSource: source, PowerStale: stale}}
	}
	on := cluster.TelemetryState{Configured: true, StaleAfter: 3 * time.Minute}
	failing := on
	failing.Err = errors.New("connection refused")
	for _, tc := range []struct {
		name       string
		tel        cluster.TelemetryState
		running    []runningPod
		was        *metav1.Condition
		want       metav1.ConditionStatus // "" : no condition
		reason     string
		inMessage  []string
		wantEvents int
	}{
		{name: "no telemetry, no condition", tel: cluster.TelemetryState{}, running: []runningPod{pod("a", "catalog", time.Time{})}},
		{name: "every pod measured", tel: on, running: []runningPod{pod("a", "dcgm", time.Time{}), pod("b", "dcgm+kepler", time.Time{})},
			want: metav1.ConditionTrue, reason: kcloudv1alpha1.ReasonMeasuredPowerFresh, inMessage: []string{"2 of 2", "mixed"}},
		{name: "some never reported", tel: on, running: []runningPod{pod("a", "kepler", time.Time{}), pod("b", "catalog", time.Time{})},
			want: metav1.ConditionTrue, reason: kcloudv1alpha1.ReasonMeasuredPowerFresh, inMessage: []string{"1 of 2", "others", "b"}},
		{name: "none reported", tel: on, running: []runningPod{pod("a", "catalog", time.Time{})},
			want: metav1.ConditionUnknown, reason: kcloudv1alpha1.ReasonNotMeasured},
		{name: "a stale measurement", tel: on, running: []runningPod{pod("a", "dcgm", time.Time{}), pod("b", "catalog", last)},
			want: metav1.ConditionFalse, reason: kcloudv1alpha1.ReasonMeasuredPowerStale, inMessage: []string{"b (last measured 2026-05-01T07:55:00Z)", "3m0s"},
			wantEvents: 1},
		{name: "still stale: no second event", tel: on, running: []runningPod{pod("b", "catalog", last)},
			was:  &metav1.Condition{Type: kcloudv1alpha1.ConditionTelemetryFresh, Status: metav1.ConditionFalse, Reason: kcloudv1alpha1.ReasonMeasuredPowerStale},
			want: metav1.ConditionFalse, reason: kcloudv1alpha1.ReasonMeasuredPowerStale},
		{name: "Prometheus failing", tel: failing, running: []runningPod{pod("a", "catalog", last), pod("b", "catalog", time.Time{})},
			was:  &metav1.Condition{Type: kcloudv1alpha1.ConditionTelemetryFresh, Status: metav1.ConditionFalse, Reason: kcloudv1alpha1.ReasonMeasuredPowerStale},
			want: metav1.ConditionFalse, reason: kcloudv1alpha1.ReasonTelemetryFailing, inMessage: []string{"connection refused", "2 of 2"}, wantEvents: 1},
		{name: "a partial failure that measured every pod", tel: failing, running: []runningPod{pod("a", "dcgm", time.Time{})},
			want: metav1.ConditionTrue, reason: kcloudv1alpha1.ReasonMeasuredPowerFresh},
		{name: "nothing running", tel: on, want: metav1.ConditionUnknown, reason: kcloudv1alpha1.ReasonNoRunningPods},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wo := &kcloudv1alpha1.WorkloadOptimizer{}
			if tc.was != nil {
				wo.Status.Conditions = []metav1.Condition{*tc.was}
			}
			st := &state{wo: wo, running: tc.running}
			telemetryFresh(st, tc.tel, tc.was)
			c := meta.FindStatusCondition(wo.Status.Conditions, kcloudv1alpha1.ConditionTelemetryFresh)
			switch {
			case tc.want == "" && c != nil:
				t.Fatalf("condition %+v, want none", c)
			case tc.want == "":
				return
			case c == nil:
				t.Fatalf("no condition, want %s/%s", tc.want, tc.reason)
			}
			if c.Status != tc.want || c.Reason != tc.reason {
				t.Errorf("condition %s/%s (%s), want %s/%s", c.Status, c.Reason, c.Message, tc.want, tc.reason)
			}
			for _, s := range tc.inMessage {
				if !strings.Contains(c.Message, s) {
					t.Errorf("message %q does not mention %q", c.Message, s)
				}
			}
			if len(st.events) != tc.wantEvents {
				t.Errorf("%d events %v, want %d", len(st.events), st.events, tc.wantEvents)
			}
		})
	}
}
