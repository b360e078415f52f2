package priority

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"kcloud.io/optimizer/pkg/kube"
)

var t0 = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

// queued is a pod as the scheduling queue holds it: PriorityClass value, optimizer priority
// annotation ("" for none) and the seconds after t0 it was queued.
func queued(t *testing.T, name string, podPriority int32, optimizer string, at int) *framework.QueuedPodInfo {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ml", Annotations: map[string]string{}},
		Spec: corev1.PodSpec{Priority: &podPriority}}
	if optimizer != "" {
		pod.Annotations[kube.AnnotationPriority] = optimizer
	}
	pi, err := framework.NewPodInfo(pod)
	if err != nil {
		t.Fatal(err)
	}
	return &framework.QueuedPodInfo{PodInfo: pi, QueueingParams: framework.QueueingParams{Timestamp: t0.Add(time.Duration(at) * time.Second)}}
}

func TestLess(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b func(t *testing.T) *framework.QueuedPodInfo
		want bool
	}{
		{"PriorityClass first, over optimizer priority and age",
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "a", 1000, "0", 9) },
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "b", 0, "100", 0) }, true},
		{"lower PriorityClass after",
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "a", 0, "100", 0) },
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "b", 1000, "0", 9) }, false},
		{"same PriorityClass: higher optimizer priority first though queued later",
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "hi", 0, "90", 5) },
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "lo", 0, "10", 0) }, true},
		{"lower optimizer priority after",
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "lo", 0, "10", 0) },
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "hi", 0, "90", 5) }, false},
		{"no optimizer ranks at the default 50, above 49",
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "plain", 0, "", 5) },
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "low", 0, "49", 0) }, true},
		{"no optimizer ranks at the default 50, below 51",
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "plain", 0, "", 0) },
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "high", 0, "51", 5) }, false},
		{"a malformed annotation ranks at the default: ties go to the earlier",
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "bad", 0, "urgent", 0) },
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "plain", 0, "50", 5) }, true},
		{"all equal: earlier first",
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "a", 0, "50", 0) },
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "b", 0, "50", 1) }, true},
		{"all equal: later after",
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "b", 0, "50", 1) },
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "a", 0, "50", 0) }, false},
		{"identical: neither first",
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "a", 0, "50", 0) },
			func(t *testing.T) *framework.QueuedPodInfo { return queued(t, "b", 0, "50", 0) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (&Plugin{}).Less(tc.a(t), tc.b(t)); got != tc.want {
				t.Errorf("Less = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPodGroupRanksAsItsHighestPod: a gang waiting as a pod group is ordered by its highest
// optimizer priority.
func TestPodGroupRanksAsItsHighestPod(t *testing.T) {
	pod := func(ann string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{kube.AnnotationPriority: ann}}}
	}
	group := &framework.QueuedPodGroupInfo{
		PodGroupInfo: &framework.PodGroupInfo{Namespace: "ml", Name: "gang", Type: fwk.PodGroupKeyType,
			PodGroup: &schedulingv1beta1.PodGroup{ObjectMeta: metav1.ObjectMeta{Name: "gang", Namespace: "ml"}}, UnscheduledPods: []*corev1.Pod{pod("20"), pod("70"), pod("40")}},
		QueueingParams: framework.QueueingParams{Timestamp: t0.Add(time.Minute)},
	}
	if got := optimizerPriority(group); got != 70 {
		t.Fatalf("pod group's optimizer priority = %d, want 70 (its highest pod)", got)
	}
	if !(&Plugin{}).Less(group, queued(t, "single", 0, "60", 0)) {
		t.Error("a pod group at 70 is not ahead of an earlier single pod at 60")
	}
}
