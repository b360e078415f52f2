package integration

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/operator"
)

// TestDeletedPodsChargedOnce: the accounting finalizer keeps a deleted pod until the ledgers that
// charge it (a CostPolicy and a PowerPolicy here) have accounted it to its deletion. A pod that
// starts and is deleted between two accountings, one deleted while the operator is stopped, and one
// whose node was deleted first are each charged exactly their run, computed here from the times
// the test recorded (start it set, deletion the apiserver returned) and the node's price.
func TestDeletedPodsChargedOnce(t *testing.T) {
	ctx := context.Background()
	ns := "op-final"
	ensureNamespace(t, ns)
	base := time.Now().Truncate(time.Second)
	clk := clocktesting.NewFakeClock(base)
	nodes := map[string]*corev1.Node{}
	for _, n := range []string{"op-final-a", "op-final-b", "op-final-c"} {
		nodes[n] = t4Node(t, n, "on-demand")
	}
	price := nodePrice(t, nodes["op-final-a"]) // each pod holds its node's only GPU: the whole price
	cp := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "op-final"},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}},
			Budget: &kcloudv1alpha1.CostBudget{Amount: 1000, Period: kcloudv1alpha1.BudgetPeriodMonth}}}
	pp := &kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "op-final"},
		Spec: kcloudv1alpha1.PowerPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}}, PreferGreen: true}}
	for _, o := range []client.Object{cp, pp} {
		if err := k8sClient.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), o) })
	}
	// The test's own record of each pod's run.
	type run struct{ start, end time.Time }
	runs := map[string]*run{}
	start := func(name, node string, at time.Time) *corev1.Pod {
		runs[name] = &run{start: at}
		return runningPod(t, ns, name, node, at, nil)
	}
	del := func(p *corev1.Pod) {
		t.Helper()
		if err := k8sClient.Delete(ctx, p, client.GracePeriodSeconds(0)); err != nil {
			t.Fatal(err)
		}
		got := &corev1.Pod{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(p), got); err != nil {
			t.Fatalf("pod %s is gone at once: the finalizer did not hold it (%v)", p.Name, err)
		}
		runs[p.Name].end = got.DeletionTimestamp.Time
	}
	want := func(until time.Time) float64 {
		h := 0.0
		for _, r := range runs {
			end := r.end
			if end.IsZero() || end.After(until) {
				end = until
			}
			h += end.Sub(r.start).Hours()
		}
		return h * price
	}
	waitHeld := func(p *corev1.Pod) {
		t.Helper()
		waitFor(t, "finalizer on "+p.Name, func() error {
			got := &corev1.Pod{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(p), got); err != nil {
				return err
			}
			if !slices.Contains(got.Finalizers, kcloudv1alpha1.FinalizerAccounting) {
				return fmt.Errorf("finalizers %v", got.Finalizers)
			}
			return nil
		})
	}
	waitGone := func(p *corev1.Pod) {
		t.Helper()
		waitFor(t, p.Name+" released", func() error {
			err := k8sClient.Get(ctx, client.ObjectKeyFromObject(p), &corev1.Pod{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there (%v)", err)
		})
	}
	// advance moves the operator's clock, never ahead of real time (the apiserver stamps deletions
	// with real time; a clock ahead of it would charge pods for time before they were deleted).
	advance := func(at time.Time) {
		if at.Before(time.Now().Add(time.Minute)) {
			time.Sleep(time.Until(at))
		}
		clk.SetTime(at)
	}
	spendAt := func(at time.Time) {
		t.Helper()
		advance(at)
		w := want(at)
		waitFor(t, fmt.Sprintf("spend %.6f at %s", w, at.Format(time.RFC3339)), func() error {
			got := &kcloudv1alpha1.CostPolicy{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cp), got); err != nil {
				return err
			}
			if u := got.Status.AccountedUntil; u == nil || !u.Time.Equal(at) {
				return fmt.Errorf("accountedUntil %v", u)
			}
			if math.Abs(got.Status.CurrentSpend-w) > 1e-9 {
				figures := ""
				if c := meta.FindStatusCondition(got.Status.Conditions, kcloudv1alpha1.ConditionFiguresComplete); c != nil {
					figures = c.Message
				}
				return fmt.Errorf("spend %.9f, want %.9f (FiguresComplete: %s)", got.Status.CurrentSpend, w, figures)
			}
			return nil
		})
	}

	long := start("long", "op-final-a", base.Add(-time.Hour))
	stop := startStoppableOperator(t, clk)
	waitHeld(long)

	// A pod that starts and goes between two accountings.
	short := start("short", "op-final-b", base)
	waitHeld(short)
	time.Sleep(2 * time.Second)
	del(short)
	// The operator's now passes the deletion once its cache has seen it, as real time would (this
	// suite runs without the settle delay, which covers that in production).
	time.Sleep(time.Second)
	advance(runs["short"].end.Add(5 * time.Second))
	waitGone(short)
	spendAt(runs["short"].end.Add(5 * time.Second))

	// A pod whose node goes first: charged at the node's last known price.
	// It starts at the operator's now (after the last accounting) and is deleted a few seconds of
	// real time later, so its run is after what the ledger has already accounted.
	orphan := start("orphan", "op-final-c", clk.Now())
	waitHeld(orphan)
	if err := k8sClient.Delete(ctx, nodes["op-final-c"]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(runs["orphan"].start.Add(3 * time.Second)))
	del(orphan)
	time.Sleep(time.Second)
	advance(runs["orphan"].end.Add(2 * time.Second))
	waitGone(orphan)
	spendAt(runs["orphan"].end.Add(2 * time.Second))

	// A pod deleted while the operator is stopped stays until the operator is back.
	stop()
	del(long)
	time.Sleep(time.Second)
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(long), &corev1.Pod{}); err != nil {
		t.Fatalf("pod deleted while the operator is down is gone (%v): its last interval is lost", err)
	}
	last := runs["long"].end.Add(10 * time.Second)
	advance(last)
	startStoppableOperator(t, clk)
	waitGone(long)
	spendAt(last)
	// Nothing more is charged once every pod is gone.
	spendAt(last.Add(time.Hour))

	// A pod that no ledger charges any more (its policies deleted) loses the finalizer.
	kept := start("kept", "op-final-a", last)
	waitHeld(kept)
	for _, o := range []client.Object{cp, pp} {
		if err := k8sClient.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "finalizer off kept once nothing charges it", func() error {
		got := &corev1.Pod{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(kept), got); err != nil {
			return err
		}
		if slices.Contains(got.Finalizers, kcloudv1alpha1.FinalizerAccounting) {
			return fmt.Errorf("finalizers %v", got.Finalizers)
		}
		return nil
	})
}

// startStoppableOperator starts the operator and returns what stops it (also run at the end).
func startStoppableOperator(t *testing.T, clk *clocktesting.FakeClock) func() {
	t.Helper()
	ctrllog.SetLogger(testr.New(t))
	mgr, err := operator.New(cfg, operator.Options{MetricsAddr: "0", ProbeAddr: "0", Clock: clk, SkipNameValidation: true,
		AccountingInterval: 200 * time.Millisecond, ReoptimizeInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator stopped with: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}
