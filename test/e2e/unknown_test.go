package e2e

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/kube"
)

// unknownProduct is a GPU product label no catalog lists.
const unknownProduct = "NVIDIA-B999-SXM9-512GB"

// unknownNode is an eight-GPU kwok node of a model the catalog never listed, labelled as NVIDIA's
// feature discovery labels any GPU node, with the given annotations.
func unknownNode(t *testing.T, name string, annotations map[string]string) {
	t.Helper()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("96"), corev1.ResourceMemory: resource.MustParse("1152Gi"),
		corev1.ResourcePods: resource.MustParse("110"), catalog.ResourceNVIDIAGPU: resource.MustParse("8"),
	}
	ann := map[string]string{devcluster.KwokNodeAnnotation: "fake"}
	for k, v := range annotations {
		ann[k] = v
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann, Labels: map[string]string{
			corev1.LabelHostname: name, "type": "kwok", catalog.LabelNVIDIAGPUProduct: unknownProduct, poolLabel: "unknown",
			"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": "8", catalog.LabelRegion: "us-east-1",
		}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity.DeepCopy()},
	}
	if _, err := suite.Client.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = suite.Client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	eventually(t, 2*time.Minute, func() error {
		got, err := suite.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !devcluster.NodeReady(got) {
			return errorf("node " + name + " not ready")
		}
		return nil
	})
}

// operatorMetric returns the operator's metrics text.
func operatorMetrics(t *testing.T) string {
	t.Helper()
	st, err := devcluster.ReadState(suite.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(st.OperatorMetrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func nodeEvents(t *testing.T, node, reason string) []string {
	t.Helper()
	list, err := suite.Client.EventsV1().Events("").List(context.Background(), metav1.ListOptions{FieldSelector: "regarding.name=" + node + ",reason=" + reason})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Note)
	}
	return out
}

// TestUnknownAcceleratorNode: a node whose GPU model no catalog lists takes GPU pods when its price
// annotation makes it the cheapest, and its optimizer's status shows that price; without any price
// it still runs pods no cost limit covers, keeps a capped pod Pending with an event naming the
// missing price, and its event and metric say it is unpriced.
func TestUnknownAcceleratorNode(t *testing.T) {
	ctx := context.Background()
	// Its pool: the unknown node, priced below a p4d.24xlarge of the same shape (8 GPUs, 96 vCPUs,
	// 1152 GiB), so that packing ties and the price decides.
	const node, price = "e2e-unknown-b999", 20.0 // USD/h
	known := nodesInPool(t, "unknown", "e2e-unknown-a100", devcluster.NodeGroup{InstanceType: "p4d.24xlarge", Model: "A100", Accelerators: 8,
		Region: "us-east-1", Zone: "us-east-1a", Count: 1})
	if p := nodePrice(t, known[0]); p <= price {
		t.Fatalf("the p4d.24xlarge costs %.2f USD/h: not dearer than the unknown node's %.2f", p, price)
	}
	unknownNode(t, node, map[string]string{catalog.AnnotationPricePerHour: fmt.Sprint(price)})
	inPool := func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{poolLabel: "unknown"} }

	ns := namespace(t, "e2e-unknown")
	optimizer(t, ns, "priced", 10)
	create(t, kcloudPod(ns, "priced-0", gpus(1), inPool, label(kube.LabelOptimizer, "priced")))
	pods := waitPods(t, ns, time.Minute, func(p []corev1.Pod) bool { return bound(p) == 1 })
	if bound(pods) != 1 || pods[0].Spec.NodeName != node {
		t.Fatalf("the one-GPU pod is on %q, want the cheaper node %s", pods[0].Spec.NodeName, node)
	}
	// One GPU of eight, 1 of 96 vCPUs, 128 MiB of 1152 GiB: the GPU share dominates, 1/8 of the price.
	wantCost := price / 8
	c := crClient(t)
	eventually(t, time.Minute, func() error {
		wo := &kcloudv1alpha1.WorkloadOptimizer{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "priced"}, wo); err != nil {
			return err
		}
		if s := wo.Status; math.Abs(s.CurrentCost-wantCost) > 1e-4 || s.AssignedNode != node {
			return fmt.Errorf("status currentCost %v on %q, want %v on %s", s.CurrentCost, s.AssignedNode, wantCost, node)
		}
		return nil
	})

	// The same node without a price.
	patch := []byte(`{"metadata":{"annotations":{"` + catalog.AnnotationPricePerHour + `":null}}}`)
	if _, err := suite.Client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, func() error {
		if notes := nodeEvents(t, node, "NodeUnpriced"); len(notes) == 0 || !strings.Contains(notes[0], unknownProduct) {
			return fmt.Errorf("node events NodeUnpriced: %q", notes)
		}
		if m := operatorMetrics(t); !strings.Contains(m, `kcloud_node_priced{node="`+node+`"} 0`) {
			return errorf("metrics lack kcloud_node_priced 0 for " + node)
		}
		return nil
	})
	onUnknown := func(p *corev1.Pod) {
		p.Spec.NodeSelector = map[string]string{catalog.LabelNVIDIAGPUProduct: unknownProduct}
	}
	create(t, kcloudPod(ns, "free-0", gpus(1), onUnknown))
	create(t, kcloudPod(ns, "priced-1", gpus(1), onUnknown, label(kube.LabelOptimizer, "priced")))
	pods = waitPods(t, ns, time.Minute, func(p []corev1.Pod) bool { return bound(p) == 2 && len(failedScheduling(t, ns, "priced-1")) > 0 })
	for _, p := range pods {
		switch p.Name {
		case "free-0":
			if p.Spec.NodeName != node {
				t.Errorf("a pod without cost limits on %q, want %s: an unpriced node still runs it", p.Spec.NodeName, node)
			}
		case "priced-1":
			if p.Spec.NodeName != "" {
				t.Errorf("a pod under maxCostPerHour was bound to the unpriced node %s", p.Spec.NodeName)
			}
		}
	}
	msgs := strings.Join(failedScheduling(t, ns, "priced-1"), "\n")
	if !strings.Contains(msgs, "WorkloadOptimizer "+ns+"/priced maxCostPerHour: the node has no price") || !strings.Contains(msgs, unknownProduct) {
		t.Errorf("FailedScheduling of the capped pod does not name the missing price: %q", msgs)
	}
	// The optimizer's figures say its running pod's price is unknown.
	eventually(t, time.Minute, func() error {
		wo := &kcloudv1alpha1.WorkloadOptimizer{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "priced"}, wo); err != nil {
			return err
		}
		for _, cond := range wo.Status.Conditions {
			if cond.Type == kcloudv1alpha1.ConditionFiguresComplete && cond.Status == metav1.ConditionFalse && cond.Reason == kcloudv1alpha1.ReasonUnpricedNodes {
				return nil
			}
		}
		return fmt.Errorf("no FiguresComplete=False/UnpricedNodes: %v", wo.Status.Conditions)
	})
}
