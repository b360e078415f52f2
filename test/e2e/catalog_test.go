package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/config"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/catalog/watch"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/kube"
)

// catalogPool is the label of the nodes TestCatalogConfigMapReprices adds, which its pods select.
const catalogPool = "catalog"

// catalogNodes adds one on-premises kwok node per model (1 GPU, 8 vCPU, 32 GiB, no instance type:
// priced by the per-device rule, so the ConfigMap's devices.csv prices them) and waits until Ready.
func catalogNodes(t *testing.T, models ...string) map[string]string {
	t.Helper()
	byModel := map[string]string{}
	for _, m := range models {
		byModel[m] = nodesInPool(t, catalogPool, "e2e-catalog-"+strings.ToLower(m), devcluster.NodeGroup{Model: m, Accelerators: 1, CPUs: 8, MemoryGiB: 32,
			Region: "ap-northeast-2", Zone: "ap-northeast-2a", Count: 1})[0]
	}
	return byModel
}

// TestCatalogConfigMapReprices: the catalog ConfigMap that kcloud-scheduler and kcloud-operator
// both watch reprices the fleet without a restart. With L40S cheaper than L4, a one-GPU pod lands
// on the L40S node; raising the L40S price changes its optimizer's status.currentCost within a
// minute and sends the next pod to the L4 node; an invalid update is refused with a Warning event
// on the ConfigMap and placements keep the last good prices.
func TestCatalogConfigMapReprices(t *testing.T) {
	ctx := context.Background()
	c := crClient(t)
	ref, err := watch.ParseRef(config.CatalogConfigMap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := suite.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ref.Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logCatalogLines(t)
		}
	})
	nodes := catalogNodes(t, "L40S", "L4")
	ns := namespace(t, "e2e-catalog")
	if err := c.Create(ctx, &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: "infer", Namespace: ns},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadInference}}); err != nil {
		t.Fatal(err)
	}

	// Host of each node: 8 x 0.031611 + 32 x 0.004237 = 0.388472 USD/h (the catalog's host rates).
	const host = 8*0.031611 + 32*0.004237
	cheapL40S := "model,idle_watts,max_watts,price_per_hour_usd\nL40S,,,0.10\nL4,,,3.00\n"
	dearL40S := "model,idle_watts,max_watts,price_per_hour_usd\nL40S,,,4.00\nL4,,,3.00\n"
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name},
		Data: map[string]string{catalog.ConfigMapKeyDevices: cheapL40S}}
	if _, err := suite.Client.CoreV1().ConfigMaps(ref.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = suite.Client.CoreV1().ConfigMaps(ref.Namespace).Delete(context.Background(), ref.Name, metav1.DeleteOptions{})
	})
	update := func(devices string) {
		t.Helper()
		cur, err := suite.Client.CoreV1().ConfigMaps(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Data[catalog.ConfigMapKeyDevices] = devices
		if _, err := suite.Client.CoreV1().ConfigMaps(ref.Namespace).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The watches see the ConfigMap within a second or two; an applied event says both did.
	waitCatalogEvent(t, ref, watch.ReasonApplied, "catalog ConfigMap "+ref.String()+" applied")

	place := func(name, wantNode string) {
		t.Helper()
		create(t, kcloudPod(ns, name, gpus(1), label(kube.LabelOptimizer, "infer"), func(p *corev1.Pod) {
			p.Spec.NodeSelector = map[string]string{poolLabel: catalogPool}
		}))
		pods := waitPods(t, ns, time.Minute, func(ps []corev1.Pod) bool {
			for _, p := range ps {
				if p.Name == name && p.Spec.NodeName != "" {
					return true
				}
			}
			return false
		})
		for _, p := range pods {
			if p.Name == name && p.Spec.NodeName != wantNode {
				t.Fatalf("pod %s on %q, want %s", name, p.Spec.NodeName, wantNode)
			}
		}
	}
	remove := func(name string) {
		t.Helper()
		zero := int64(0)
		if err := suite.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, func() error {
			if _, err := suite.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return errorf("pod " + name + " still there")
			}
			return nil
		})
	}
	currentCost := func(what string, want float64, within time.Duration) {
		t.Helper()
		wo := &kcloudv1alpha1.WorkloadOptimizer{}
		eventually(t, within, func() error {
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "infer"}, wo); err != nil {
				return err
			}
			if math.Abs(wo.Status.CurrentCost-want) > 1e-3 {
				return fmt.Errorf("%s: status.currentCost %.6f on %v, want %.6f", what, wo.Status.CurrentCost, wo.Status.AssignedNodes, want)
			}
			return nil
		})
	}

	// L40S 0.10 + host < L4 3.00 + host.
	place("first", nodes["L40S"])
	currentCost("first pod on the L40S node", 0.10+host, time.Minute)

	changed := time.Now()
	update(dearL40S)
	// The pod stays where it is (a bare pod is never rebalanced); what it costs there changes.
	currentCost("after the price change", 4.00+host, time.Minute)
	t.Logf("status.currentCost followed the ConfigMap in %.1fs", time.Since(changed).Seconds())
	remove("first")
	place("second", nodes["L4"])
	currentCost("second pod on the L4 node", 3.00+host, time.Minute)

	// Refused as a whole: had its first row applied, L40S at 0.01 would win the next pod.
	update("model,idle_watts,max_watts,price_per_hour_usd\nL40S,,,0.01\nL4,,,cheap\n")
	rejected := waitCatalogEvent(t, ref, watch.ReasonRejected, `configmap key "devices.csv" line 3: price_per_hour_usd "cheap" is not a number`)
	t.Logf("refused: %s", rejected)
	remove("second")
	place("third", nodes["L4"])
}

// waitCatalogEvent waits until both kcloud-scheduler and kcloud-operator have recorded an event of
// the reason on the catalog ConfigMap whose message contains note, and returns one message.
func waitCatalogEvent(t *testing.T, ref watch.Ref, reason, note string) string {
	t.Helper()
	var msg string
	eventually(t, time.Minute, func() error {
		list, err := suite.Client.CoreV1().Events(ref.Namespace).List(context.Background(), metav1.ListOptions{
			FieldSelector: "involvedObject.name=" + ref.Name + ",reason=" + reason})
		if err != nil {
			return err
		}
		by := map[string]bool{}
		for _, e := range list.Items {
			if strings.Contains(e.Message, note) {
				by[e.ReportingController] = true
				msg = e.Message
			}
		}
		if len(by) < 2 {
			return fmt.Errorf("%s events on %s from %v, want the scheduler's and the operator's", reason, ref, by)
		}
		return nil
	})
	return msg
}

// logCatalogLines logs what kcloud-scheduler and kcloud-operator wrote about the catalog.
func logCatalogLines(t *testing.T) {
	for _, p := range suite.State.Processes {
		if p.Name != "kcloud-scheduler" && p.Name != "kcloud-operator" {
			continue
		}
		b, err := os.ReadFile(p.Log)
		if err != nil {
			t.Logf("%s log: %v", p.Name, err)
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(strings.ToLower(line), "catalog") {
				t.Logf("%s: %s", p.Name, line)
			}
		}
	}
}
