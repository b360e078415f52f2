package gang

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/scheduler/internal/schedtest"
)

// member is a pod of gang g of size n, bound to node ("": not bound).
func member(name, g, n, node string) *corev1.Pod {
	p := schedtest.Pod(name)
	p.Labels[kube.LabelGang], p.Annotations[kube.AnnotationGangSize] = g, n
	p.Spec.NodeName = node
	return p
}

// gangFramework is a profile with KcloudGang alone (a one-second timeout), its informers started
// over a cluster holding the pods.
func gangFramework(t *testing.T, pods ...*corev1.Pod) framework.Framework {
	newGang := func(ctx context.Context, _ runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
		return New(ctx, &runtime.Unknown{Raw: []byte(`{"gangTimeoutSeconds":1}`), ContentType: runtime.ContentTypeJSON}, h)
	}
	nodes := []*corev1.Node{schedtest.T4Node("n1", 4, false, false), schedtest.T4Node("n2", 4, false, false)}
	objs := make([]runtime.Object, len(pods))
	for i, p := range pods {
		objs[i] = p
	}
	fw := schedtest.NewFramework(t, fake.NewClientset(objs...), nodes, pods, schedtest.Plugin{Name: Name, New: newGang, Points: []string{"Permit"}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fw.SharedInformerFactory().Start(ctx.Done())
	fw.SharedInformerFactory().WaitForCacheSync(ctx.Done())
	return fw
}

// permit runs Permit for a pod placed on its node, and registers it as waiting when asked to wait,
// as the scheduler does.
func permit(t *testing.T, fw framework.Framework, p *corev1.Pod) *fwk.Status {
	t.Helper()
	waits, st := fw.RunPermitPlugins(context.Background(), framework.NewCycleState(), p, p.Spec.NodeName)
	if st.IsWait() {
		if waits[Name] != time.Second {
			t.Errorf("%s waits %v, want the configured 1s", p.Name, waits[Name])
		}
		fw.AddWaitingPod(p, waits)
	}
	return st
}

// The first pods of a gang wait; the one that completes it lets all of them bind.
func TestPermitHoldsTheGangUntilComplete(t *testing.T) {
	a, b, c := member("a", "g", "3", "n1"), member("b", "g", "3", "n2"), member("c", "g", "3", "n1")
	// The cluster shows a and b bound; c is the pod being permitted last.
	other := member("x", "g", "3", "n2")
	other.Namespace = "elsewhere" // a gang of the same name in another namespace counts for nothing
	fw := gangFramework(t, a, b, other)
	if st := permit(t, fw, a); !st.IsWait() {
		t.Fatalf("a, 2 of 3 placed: %v, want Wait", st)
	}
	if st := permit(t, fw, b); !st.IsWait() {
		t.Fatalf("b, 2 of 3 placed: %v, want Wait", st)
	}
	if st := permit(t, fw, c); !st.IsSuccess() {
		t.Fatalf("c completes the gang: %v, want Success", st)
	}
	for _, p := range []*corev1.Pod{a, b} {
		if st := fw.WaitOnPermit(context.Background(), p); !st.IsSuccess() {
			t.Errorf("%s after the gang completed: %v, want allowed", p.Name, st)
		}
	}
}

// Pods waiting here count before the informer shows them bound; a finished pod of the gang and a
// pod not yet placed count for nothing.
func TestPermitCountsWaitingPodsNotBound(t *testing.T) {
	a, b, c := member("a", "g", "3", ""), member("b", "g", "3", ""), member("c", "g", "3", "")
	done := member("done", "g", "3", "n1")
	done.Status.Phase = corev1.PodSucceeded
	pending := member("pending", "g", "3", "")
	fw := gangFramework(t, a, b, c, done, pending)
	place := func(p *corev1.Pod) *corev1.Pod { q := p.DeepCopy(); q.Spec.NodeName = "n1"; return q }
	if st := permit(t, fw, place(a)); !st.IsWait() {
		t.Fatalf("a, 1 of 3 placed (a finished pod and a pending one do not count): %v, want Wait", st)
	}
	if st := permit(t, fw, place(b)); !st.IsWait() {
		t.Fatalf("b, 2 of 3 placed: %v, want Wait", st)
	}
	if st := permit(t, fw, place(c)); !st.IsSuccess() {
		t.Fatalf("c completes the gang with a and b waiting: %v, want Success", st)
	}
}

// A gang that never completes is rejected once its timeout passes.
func TestPermitRejectsAnIncompleteGangAfterTheTimeout(t *testing.T) {
	a := member("a", "g", "2", "n1")
	fw := gangFramework(t, a)
	if st := permit(t, fw, a); !st.IsWait() {
		t.Fatalf("a, 1 of 2 placed: %v, want Wait", st)
	}
	start := time.Now()
	st := fw.WaitOnPermit(context.Background(), a)
	if st.Code() != fwk.Unschedulable || time.Since(start) < 500*time.Millisecond {
		t.Errorf("an incomplete gang after its timeout: %v after %v, want Unschedulable after about 1s", st, time.Since(start))
	}
}

// Pods without a gang, or with a gang of one, pass at once.
func TestPermitPassesPodsWithoutAGang(t *testing.T) {
	fw := gangFramework(t)
	solo := member("solo", "g", "1", "n1")
	plain := schedtest.Pod("plain")
	plain.Spec.NodeName = "n1"
	broken := member("broken", "g", "many", "n1")
	for _, p := range []*corev1.Pod{plain, solo, broken} {
		if st := permit(t, fw, p); !st.IsSuccess() {
			t.Errorf("%s: %v, want Success", p.Name, st)
		}
	}
}
