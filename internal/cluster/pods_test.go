package cluster

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kcloud.io/optimizer/pkg/model"
)

func TestRunInterval(t *testing.T) {
	created := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	started := created.Add(time.Minute)
	finished := started.Add(time.Hour)
	pod := func(phase corev1.PodPhase, start *time.Time, finishes ...time.Time) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}, Status: corev1.PodStatus{Phase: phase}}
		if start != nil {
			p.Status.StartTime = &metav1.Time{Time: *start}
		}
		for _, f := range finishes {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(f)}}})
		}
		return p
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want model.Interval
	}{
		{"running", pod(corev1.PodRunning, &started), model.Interval{Start: started}},
		{"no start time yet", pod(corev1.PodRunning, nil), model.Interval{Start: created}},
		{"succeeded: the last container's finish", pod(corev1.PodSucceeded, &started, finished.Add(-time.Minute), finished), model.Interval{Start: started, End: finished}},
		{"failed without a finish time counts nothing", pod(corev1.PodFailed, &started), model.Interval{Start: started, End: started}},
	}
	for _, tc := range tests {
		if got := RunInterval(tc.pod); !got.Start.Equal(tc.want.Start) || !got.End.Equal(tc.want.End) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
