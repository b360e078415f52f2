package accounting

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/pkg/catalog"
)

func TestCover(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	from := now.Add(-time.Hour)
	rl := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"),
		catalog.ResourceNVIDIAGPU: resource.MustParse("1")}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "t4", ResourceVersion: "1", Labels: map[string]string{
		catalog.LabelInstanceType: "g4dn.xlarge", catalog.LabelRegion: "us-west-2", catalog.LabelNVIDIAGPUProduct: "Tesla-T4"}},
		Status: corev1.NodeStatus{Allocatable: rl, Capacity: rl, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	pod := func(ns, name string, labels map[string]string, phase corev1.PodPhase, started time.Time, finished *time.Time) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "/" + name), ResourceVersion: "1", Labels: labels},
			Spec: corev1.PodSpec{NodeName: "t4", Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("1")},
				Limits:   corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("1")}}}}},
			Status: corev1.PodStatus{Phase: phase, StartTime: &metav1.Time{Time: started}}}
		if finished != nil {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(*finished)}}}}
		}
		return p
	}
	half := from.Add(30 * time.Minute)
	deleted := func(p *corev1.Pod, at time.Time) *corev1.Pod {
		p.DeletionTimestamp = &metav1.Time{Time: at}
		return p
	}
	ml := map[string]string{"team": "ml"}
	nodes := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	pods := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	if err := nodes.Add(node); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{
		pod("ml", "running", ml, corev1.PodRunning, from.Add(-time.Hour), nil),                  // the whole window
		pod("ml", "finished", ml, corev1.PodSucceeded, from.Add(-time.Hour), &half),             // half of it
		pod("ml", "other-team", map[string]string{"team": "web"}, corev1.PodRunning, from, nil), // not selected
		pod("web", "elsewhere", ml, corev1.PodRunning, from, nil),                               // another namespace
		pod("ml", "pending", ml, corev1.PodPending, from, nil),                                  // never ran
		deleted(pod("ml", "deleted", ml, corev1.PodRunning, from.Add(-time.Hour), nil), half),   // half, then held by the finalizer
	} {
		if err := pods.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	f := cluster.New(nil, cluster.Options{Pods: cluster.IndexerStore{Indexer: pods}, Nodes: cluster.IndexerStore{Indexer: nodes}})
	ctx := context.Background()
	one, err := f.PodFigures(ctx, pod("ml", "running", ml, corev1.PodRunning, from, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if one.CostPerHour <= 0 || one.PowerWatts <= 0 || one.CarbonPerKWh <= 0 {
		t.Fatalf("the T4 node is not priced, powered and on a grid: %+v", one)
	}
	target := kcloudv1alpha1.PolicyTarget{Namespaces: []string{"ml"}, Selector: &metav1.LabelSelector{MatchLabels: ml}}

	tests := []struct {
		name      string
		maxCarbon float64
		want      Covered
	}{
		// running (1 h) + finished (0.5 h) + deleted (0.5 h); only running counts now.
		{"no carbon limit", 0, Covered{Pods: 1, CostPerHour: one.CostPerHour, PowerWatts: one.PowerWatts,
			SpendUSD: 2 * one.CostPerHour, EnergyKWh: 2 * one.PowerWatts / 1000, CarbonKg: 2 * one.PowerWatts / 1000 * one.CarbonPerKWh / 1000}},
		{"a grid dirtier than the limit", one.CarbonPerKWh / 2, Covered{Pods: 1, CostPerHour: one.CostPerHour, PowerWatts: one.PowerWatts,
			SpendUSD: 2 * one.CostPerHour, EnergyKWh: 2 * one.PowerWatts / 1000, CarbonKg: 2 * one.PowerWatts / 1000 * one.CarbonPerKWh / 1000,
			AboveCarbon: []string{"ml/running on t4 (" + formatCarbon(one.CarbonPerKWh) + " gCO2/kWh)"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Cover(ctx, f, target, from, now, tc.maxCarbon)
			if err != nil {
				t.Fatal(err)
			}
			approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(a)) })
			if diff := cmp.Diff(tc.want, got, approx); diff != "" {
				t.Errorf("Cover (-want +got):\n%s", diff)
			}
		})
	}
	// A selector stored before admission checked it: the same pods as its valid part, and why.
	bad := target
	bad.Selector = &metav1.LabelSelector{MatchLabels: ml, MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near"}}}
	got, err := Cover(ctx, f, bad, from, now, 0)
	if err != nil || got.BadSelector == nil || math.Abs(got.SpendUSD-2*one.CostPerHour) > 1e-9 {
		t.Errorf("invalid selector: err %v, BadSelector %v, spend %v (want %v)", err, got.BadSelector, got.SpendUSD, 2*one.CostPerHour)
	}

	// Pods on a deleted node: at its last known figures when this fleet priced it before, unpriced
	// (named, not dropped) when it never saw the node.
	for _, p := range []*corev1.Pod{pod("ml", "on-gone", ml, corev1.PodRunning, from, nil), pod("ml", "on-unseen", ml, corev1.PodRunning, from, nil)} {
		if p.Name == "on-unseen" {
			p.Spec.NodeName = "unseen"
		}
		if err := pods.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := nodes.Delete(node); err != nil {
		t.Fatal(err)
	}
	got, err = Cover(ctx, f, target, from, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wantDeparted []string
	for _, name := range []string{"deleted", "finished", "on-gone", "running"} {
		wantDeparted = append(wantDeparted, "ml/"+name+": node t4 is deleted: charged at its last known figures")
	}
	if diff := cmp.Diff(wantDeparted, sorted(got.Departed)); diff != "" {
		t.Errorf("departed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ml/on-unseen on unseen: node unseen was deleted before this operator read it"}, got.Unpriced); diff != "" {
		t.Errorf("unpriced (-want +got):\n%s", diff)
	}
	// running, finished, deleted as before, plus an hour of on-gone; on-unseen is named instead.
	if math.Abs(got.SpendUSD-3*one.CostPerHour) > 1e-9 || got.Pods != 3 {
		t.Errorf("spend %v pods %d, want %v and 3", got.SpendUSD, got.Pods, 3*one.CostPerHour)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}

func formatCarbon(v float64) string { return fmt.Sprintf("%.0f", v) }
