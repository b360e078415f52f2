package accounting

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
)

// TestBudgetsSpent: one pod on a g4dn.xlarge (0.5260 USD/h in the price table,
// pkg/catalog/data/aws_gpu_instances_pricing_vantage_2023.csv) runs from 10:00 to 11:00 under a
// deny-mode budget of 0.40 USD, which it reaches at 10:00 + 0.40/0.526 h = 10:45:37.5. Whatever the
// stored ledger, the budget is spent from that instant on and not before it.
func TestBudgetsSpent(t *testing.T) {
	day := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	at := func(h, m, s int) time.Time {
		return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
	}
	rl := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"),
		catalog.ResourceNVIDIAGPU: resource.MustParse("1")}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "t4", ResourceVersion: "1", Labels: map[string]string{
		catalog.LabelInstanceType: "g4dn.xlarge", catalog.LabelRegion: "us-west-2", catalog.LabelNVIDIAGPUProduct: "Tesla-T4"}},
		Status: corev1.NodeStatus{Allocatable: rl, Capacity: rl, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	gpu := corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("1")}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "train", UID: "train", ResourceVersion: "1"},
		Spec: corev1.PodSpec{NodeName: "t4", Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: gpu, Limits: gpu}}}},
		Status: corev1.PodStatus{Phase: corev1.PodSucceeded, StartTime: &metav1.Time{Time: at(10, 0, 0)},
			ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(at(11, 0, 0))}}}}}}
	nodes := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	pods := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	if err := nodes.Add(node); err != nil {
		t.Fatal(err)
	}
	if err := pods.Add(pod); err != nil {
		t.Fatal(err)
	}
	f := cluster.New(nil, cluster.Options{Pods: cluster.IndexerStore{Indexer: pods}, Nodes: cluster.IndexerStore{Indexer: nodes}})
	ctx := context.Background()
	if fig, err := f.PodFigures(ctx, pod, nil); err != nil || fig.CostPerHour != 0.526 {
		t.Fatalf("the pod costs %v USD/h (%v): the test's figures assume the price table's 0.5260 for the whole node", fig.CostPerHour, err)
	}
	newPod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "new"}}

	tm := func(t time.Time) *metav1.Time { return &metav1.Time{Time: t} }
	policy := func(mode kcloudv1alpha1.EnforcementMode, start, until *metav1.Time, spend float64) kcloudv1alpha1.CostPolicy {
		cp := kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "ml", ResourceVersion: "1"},
			Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{"ml"}}, Enforcement: mode,
				Budget: &kcloudv1alpha1.CostBudget{Amount: 0.40, Period: kcloudv1alpha1.BudgetPeriodDay}}}
		cp.Status.PeriodStart, cp.Status.AccountedUntil, cp.Status.CurrentSpend = start, until, spend
		cp.Status.RemainingBudget = ptr.To(0.40 - spend)
		return cp
	}
	deny, warn := kcloudv1alpha1.EnforcementDeny, kcloudv1alpha1.EnforcementWarn
	yesterday := tm(day.Add(-24 * time.Hour))
	tests := []struct {
		name string
		cp   kcloudv1alpha1.CostPolicy
		at   time.Time
		want string // a fragment of the verdict; "" not spent
	}{
		{"ledger at 10:30, before the crossing", policy(deny, tm(day), tm(at(10, 30, 0)), 0.263), at(10, 45, 30), ""},
		{"ledger at 10:30, after the crossing", policy(deny, tm(day), tm(at(10, 30, 0)), 0.263), at(10, 45, 45), "budget of 0.40 USD per day is spent (0.4011 USD by 2026-12-02T10:45:45Z)"},
		{"ledger at 11:00, before the crossing", policy(deny, tm(day), tm(at(11, 0, 0)), 0.526), at(10, 45, 36), ""},
		{"ledger at 11:00, after the crossing", policy(deny, tm(day), tm(at(11, 0, 0)), 0.526), at(10, 45, 39), "is spent (reached at 2026-12-02T10:45:3"},
		{"ledger at 10:30 not spent, asked at 10:20", policy(deny, tm(day), tm(at(10, 30, 0)), 0.263), at(10, 20, 0), ""},
		{"no ledger yet", policy(deny, nil, nil, 0), at(10, 50, 0), "is spent (0.4383 USD by"},
		{"yesterday's ledger", policy(deny, yesterday, tm(yesterday.Add(time.Hour)), 5), at(10, 50, 0), "is spent (0.4383 USD by"},
		{"asked for yesterday", policy(deny, tm(day), tm(at(11, 0, 0)), 0.526), day.Add(-time.Minute), ""},
		{"warn mode", policy(warn, tm(day), tm(at(11, 0, 0)), 0.526), at(10, 50, 0), ""},
	}
	// An energy budget by the same rule: a pod drawing anything for 50 minutes spends 1 Wh, and no
	// T4 node draws 1 MWh in an hour.
	energy := func(kwh float64) kcloudv1alpha1.PowerPolicy {
		return kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "ml-energy", ResourceVersion: "1"},
			Spec: kcloudv1alpha1.PowerPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{"ml"}}, Enforcement: deny,
				EnergyBudget: &kcloudv1alpha1.EnergyBudget{KilowattHours: kwh, Period: kcloudv1alpha1.BudgetPeriodDay}}}
	}
	for _, tc := range []struct {
		name string
		pp   kcloudv1alpha1.PowerPolicy
		want string
	}{
		{"energy budget spent", energy(0.001), "PowerPolicy ml-energy (enforcement deny): energy budget of 0.00 kWh per day is spent ("},
		{"energy budget left", energy(1000), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limits := kube.PoliciesOf(nil, []kcloudv1alpha1.PowerPolicy{tc.pp}).For(newPod, nil).Limits
			got, err := (&Budgets{Fleet: f}).Spent(ctx, limits, at(10, 50, 0))
			if err != nil {
				t.Fatal(err)
			}
			verdict := strings.Join(got, "; ")
			if (tc.want == "") != (verdict == "") || !strings.Contains(verdict, tc.want) {
				t.Errorf("verdict %q, want %q", verdict, tc.want)
			}
		})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &Budgets{Fleet: f}
			limits := kube.PoliciesOf([]kcloudv1alpha1.CostPolicy{tc.cp}, nil).For(newPod, nil).Limits
			got, err := b.Spent(ctx, limits, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			verdict := strings.Join(got, "; ")
			if (tc.want == "") != (verdict == "") || !strings.Contains(verdict, tc.want) {
				t.Errorf("verdict %q, want %q", verdict, tc.want)
			}
		})
	}
}
