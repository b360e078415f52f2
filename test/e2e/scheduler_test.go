package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

func namespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := suite.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = suite.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

type podOpt func(*corev1.Pod)

func share(milli int) podOpt {
	return func(p *corev1.Pod) { p.Annotations[kube.AnnotationGPUMilli] = strconv.Itoa(milli) }
}

func gpus(n int64) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{catalog.ResourceNVIDIAGPU: *resource.NewQuantity(n, resource.DecimalSI)}
	}
}

// onModel selects the nodes of an accelerator model by the label its vendor's feature discovery
// sets (nvidia.com/gpu.product=Tesla-T4, ...), as on a real cluster, whose nodes carry no
// kcloud.io/accelerator-model.
func onModel(m string) podOpt {
	key, value := productLabel(m)
	return func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{key: value} }
}

func productLabel(model string) (key, value string) {
	dev, err := catalog.Default().Device(model)
	if err != nil {
		panic(err)
	}
	return dev.ProductLabelKey, dev.ProductLabel
}

func label(k, v string) podOpt { return func(p *corev1.Pod) { p.Labels[k] = v } }

func annotation(k, v string) podOpt { return func(p *corev1.Pod) { p.Annotations[k] = v } }

func kcloudPod(ns, name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{}, Annotations: map[string]string{}},
		Spec: corev1.PodSpec{
			SchedulerName: "kcloud-scheduler",
			Containers: []corev1.Container{{Name: "c", Image: "example.com/job:1", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}}}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func create(t *testing.T, pods ...*corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		if _, err := suite.Client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// waitPods polls the namespace's pods until done says so or the timeout passes.
func waitPods(t *testing.T, ns string, timeout time.Duration, done func([]corev1.Pod) bool) []corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		list, err := suite.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if done(list.Items) || time.Now().After(deadline) {
			return list.Items
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func bound(pods []corev1.Pod) int {
	n := 0
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			n++
		}
	}
	return n
}

// events returns the messages of the FailedScheduling events of a pod.
func failedScheduling(t *testing.T, ns, pod string) []string {
	t.Helper()
	list, err := suite.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod + ",reason=FailedScheduling"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Message)
	}
	return out
}

func nodePrice(t *testing.T, name string) float64 {
	t.Helper()
	n, err := suite.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	facts, err := catalog.FactsFromNode(n)
	if err != nil {
		t.Fatal(err)
	}
	p, err := catalog.Default().Price(facts)
	if err != nil {
		t.Fatal(err)
	}
	return p.USDPerHour
}

// TestCheapestFeasibleNodeWins: among identical T4 nodes (on-demand and spot), the spot one, the
// cheapest by the catalog, gets the pod.
func TestCheapestFeasibleNodeWins(t *testing.T) {
	ns := namespace(t, "e2e-cheapest")
	create(t, kcloudPod(ns, "infer", gpus(1), onModel("T4")))
	pods := waitPods(t, ns, time.Minute, func(p []corev1.Pod) bool { return bound(p) == 1 })
	if bound(pods) != 1 {
		t.Fatalf("pod not scheduled")
	}
	chosen := pods[0].Spec.NodeName
	key, value := productLabel("T4")
	t4Selector := key + "=" + value
	nodes, err := suite.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: t4Selector})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if p := nodePrice(t, n.Name); p < nodePrice(t, chosen) {
			t.Errorf("pod on %s (%.2f USD/h), but %s costs %.2f USD/h", chosen, nodePrice(t, chosen), n.Name, p)
		}
		// Every candidate runs its DaemonSets: the choice above is cost-aware only because they
		// leave a node empty (kube.NodeOverhead). Counted as workloads, they make every node
		// "running", waking none costs anything, and the pod lands on the first that packs it.
		if daemons := daemonPodsOn(t, n.Name); daemons == 0 {
			t.Errorf("node %s runs no DaemonSet pods: the production-like fleet is missing them", n.Name)
		}
	}
	t.Logf("pod on %s at %.2f USD/h among %d T4 nodes, each running its DaemonSets", chosen, nodePrice(t, chosen), len(nodes.Items))
}

// daemonPodsOn counts the running DaemonSet pods on a node.
func daemonPodsOn(t *testing.T, node string) int {
	t.Helper()
	pods, err := suite.Client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := range pods.Items {
		if kube.NodeOverhead(&pods.Items[i]) && pods.Items[i].Status.Phase == corev1.PodRunning {
			n++
		}
	}
	return n
}

// TestGPUSharesNeverOvercommit: twelve 600-milli shares on three single-GPU T4 nodes: only one fits
// per device, each running share carries its device, no device holds more than 1000 milli.
func TestGPUSharesNeverOvercommit(t *testing.T) {
	ns := namespace(t, "e2e-share")
	var pods []*corev1.Pod
	for i := 0; i < 12; i++ {
		pods = append(pods, kcloudPod(ns, fmt.Sprintf("share-%02d", i), share(600), onModel("T4")))
	}
	create(t, pods...)
	waitPods(t, ns, time.Minute, func(p []corev1.Pod) bool { return bound(p) >= 3 })
	time.Sleep(3 * time.Second) // let the scheduler try the rest
	got := waitPods(t, ns, 0, func([]corev1.Pod) bool { return true })
	perDevice := map[string]int{}
	for _, p := range got {
		if p.Spec.NodeName == "" {
			continue
		}
		idx := p.Annotations[kube.AnnotationGPUIndex]
		if idx == "" {
			t.Errorf("bound share %s has no %s", p.Name, kube.AnnotationGPUIndex)
		}
		perDevice[p.Spec.NodeName+"/"+idx] += 600
	}
	for d, m := range perDevice {
		if m > 1000 {
			t.Errorf("device %s holds %d milli-GPU", d, m)
		}
	}
	if bound(got) != 3 {
		t.Errorf("%d shares bound, want 3 (one per T4 device): %v", bound(got), perDevice)
	}
	if msgs := failedScheduling(t, ns, pendingName(got)); len(msgs) == 0 || !strings.Contains(strings.Join(msgs, " "), "no device with 600 milli-GPU free") {
		t.Errorf("pending share's FailedScheduling events: %v", msgs)
	}
}

func pendingName(pods []corev1.Pod) string {
	for _, p := range pods {
		if p.Spec.NodeName == "" {
			return p.Name
		}
	}
	return ""
}

func optimizer(t *testing.T, ns, name string, maxCost float64) {
	t.Helper()
	c, err := client.New(suite.Config, client.Options{Scheme: scheme()})
	if err != nil {
		t.Fatal(err)
	}
	wo := &kcloudv1alpha1.WorkloadOptimizer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadInference,
			CostConstraints: &kcloudv1alpha1.CostConstraints{MaxCostPerHour: &maxCost}},
	}
	if err := c.Create(context.Background(), wo); err != nil {
		t.Fatal(err)
	}
	// kcloud-scheduler reads optimizers through an informer; give it a moment to see this one.
	time.Sleep(2 * time.Second)
}

// TestCostCapHolds: an optimizer capped below any node's price keeps its pod Pending, and the
// event names the limit and the figures.
func TestCostCapHolds(t *testing.T) {
	ns := namespace(t, "e2e-cap")
	optimizer(t, ns, "capped", 0.05)
	create(t, kcloudPod(ns, "capped-0", gpus(1), label(kube.LabelOptimizer, "capped")))
	var msgs []string
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if msgs = failedScheduling(t, ns, "capped-0"); len(msgs) > 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	joined := strings.Join(msgs, "\n")
	if !strings.Contains(joined, "WorkloadOptimizer e2e-cap/capped maxCostPerHour: hourly cost cap 0.05 USD/h exceeded") {
		t.Errorf("FailedScheduling events do not name the cap: %q", joined)
	}
	pods := waitPods(t, ns, 0, func([]corev1.Pod) bool { return true })
	if bound(pods) != 0 {
		t.Errorf("capped pod was bound to %s", pods[0].Spec.NodeName)
	}
}

// TestBurstRespectsCap: 200 share pods created at once under one hourly cap; the cost attributed to
// the bound ones never exceeds it, which needs each pod to see the ones reserved before it.
func TestBurstRespectsCap(t *testing.T) {
	ns := namespace(t, "e2e-burst")
	const capUSD = 3.0
	optimizer(t, ns, "burst", capUSD)
	var pods []*corev1.Pod
	for i := 0; i < 200; i++ {
		pods = append(pods, kcloudPod(ns, fmt.Sprintf("b-%03d", i), share(100), label(kube.LabelOptimizer, "burst")))
	}
	create(t, pods...)
	last, stable := -1, 0
	got := waitPods(t, ns, 2*time.Minute, func(p []corev1.Pod) bool {
		if b := bound(p); b == last {
			stable++
		} else {
			last, stable = b, 0
		}
		return stable >= 10
	})
	total := 0.0
	cat := catalog.Default()
	for _, p := range got {
		if p.Spec.NodeName == "" {
			continue
		}
		n, err := suite.Client.CoreV1().Nodes().Get(context.Background(), p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		facts, _ := catalog.FactsFromNode(n)
		e, err := cat.Economics(facts)
		if err != nil {
			t.Fatal(err)
		}
		node := model.NewNode(facts.AcceleratorModel, n.Status.Allocatable.Cpu().MilliValue(), n.Status.Allocatable.Memory().Value()>>20, facts.AcceleratorCount)
		pod := model.Pod{CPUMilli: 100, MemoryMiB: 128, GPUCount: 1, GPUMilli: 100}
		total += model.AttributedCost(&pod, &node, &e)
	}
	t.Logf("%d of 200 pods bound, attributed cost %.3f USD/h under a cap of %.2f", bound(got), total, capUSD)
	if total > capUSD+1e-6 {
		t.Errorf("bound pods cost %.3f USD/h, above the cap %.2f", total, capUSD)
	}
	if bound(got) == 0 || bound(got) == 200 {
		t.Errorf("%d pods bound: the cap should admit some and refuse others", bound(got))
	}
}

// TestGangAllOrNothing: three pods of a gang of four wait without binding; the fourth lets all bind.
func TestGangAllOrNothing(t *testing.T) {
	ns := namespace(t, "e2e-gang")
	mk := func(i int) *corev1.Pod {
		return kcloudPod(ns, fmt.Sprintf("worker-%d", i), gpus(1), label(kube.LabelGang, "train"), annotation(kube.AnnotationGangSize, "4"))
	}
	create(t, mk(0), mk(1), mk(2))
	time.Sleep(4 * time.Second)
	if b := bound(waitPods(t, ns, 0, func([]corev1.Pod) bool { return true })); b != 0 {
		t.Fatalf("%d of an incomplete gang bound", b)
	}
	create(t, mk(3))
	got := waitPods(t, ns, time.Minute, func(p []corev1.Pod) bool { return bound(p) == 4 })
	if bound(got) != 4 {
		t.Errorf("%d of 4 gang pods bound after the gang completed", bound(got))
	}
}

func costPolicy(t *testing.T, name, ns string, spot kcloudv1alpha1.SpotPolicy) {
	t.Helper()
	c, err := client.New(suite.Config, client.Options{Scheme: scheme()})
	if err != nil {
		t.Fatal(err)
	}
	cp := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}}, SpotPolicy: spot}}
	if err := c.Create(context.Background(), cp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), cp) })
	time.Sleep(2 * time.Second) // kcloud-scheduler's informer
}

// TestSpotPolicy: a CostPolicy that avoids spot keeps a pod off the cheaper spot T4; one that
// requires spot puts an A100 pod on a spot A100 even where an on-demand one is free.
func TestSpotPolicy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		spot     kcloudv1alpha1.SpotPolicy
		model    string
		wantSpot bool
	}{
		{"avoid", kcloudv1alpha1.SpotAvoid, "T4", false},
		{"require", kcloudv1alpha1.SpotRequire, "A100", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := namespace(t, "e2e-spot-"+tc.name)
			costPolicy(t, "spot-"+tc.name, ns, tc.spot)
			create(t, kcloudPod(ns, "p", gpus(1), onModel(tc.model)))
			pods := waitPods(t, ns, time.Minute, func(p []corev1.Pod) bool { return bound(p) == 1 })
			if bound(pods) != 1 {
				t.Fatalf("pod not scheduled")
			}
			n, err := suite.Client.CoreV1().Nodes().Get(context.Background(), pods[0].Spec.NodeName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if spot := n.Labels[catalog.LabelCapacityType] == string(catalog.CapacitySpot); spot != tc.wantSpot {
				t.Errorf("spotPolicy %s: pod on %s (capacity type %s)", tc.spot, n.Name, n.Labels[catalog.LabelCapacityType])
			}
		})
	}
}
