// Command fidelity-scheduler checks that kcloud-scheduler does what `kcloud simulate` predicts: the
// first N pods of the openb default trace, created one after another on the local cluster's openb
// fleet and placed by kcloud-scheduler, against the simulator placing the same pods in the same order
// with the same policy. It prints GPU allocation, hourly cost and power of both and their difference;
// the last line is alloc_diff_pct=X cost_diff_pct=Y power_diff_pct=Z. Run it with
// `make fidelity-scheduler`.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kcloud.io/optimizer/config"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/simulator"
	"kcloud.io/optimizer/pkg/traces"
)

const region = "cn-hangzhou" // the openb fleet's region in pkg/devcluster

func main() {
	binDir := flag.String("bin-dir", "bin/controlplane/current", "control-plane binaries")
	sched := flag.String("kcloud-scheduler", "bin/kcloud-scheduler", "kcloud-scheduler binary")
	n := flag.Int("pods", 1000, "pods of the trace to place")
	flag.Parse()
	if err := run(*binDir, *sched, *n); err != nil {
		fmt.Fprintln(os.Stderr, "fidelity-scheduler:", err)
		os.Exit(1)
	}
}

func run(binDir, sched string, n int) error {
	ctx := context.Background()
	all, err := traces.ReadPods(traces.OpenbDefaultPods)
	if err != nil {
		return err
	}
	pods := all[:n]
	c, stop, err := devcluster.UpTemporary(ctx, devcluster.Options{BinDir: binDir, Profile: "openb",
		Scheduler: sched, SchedulerConfig: config.SchedulerConfig})
	if err != nil {
		return err
	}
	defer stop()
	start := time.Now()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // kcloud-scheduler's caches
	placed := 0
	for i, p := range pods {
		pod := toPod(p)
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return err
		}
		// One at a time, so kcloud-scheduler sees them in the trace's order, as the simulator does.
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			got, err := cs.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
			if err == nil && got.Spec.NodeName != "" && (shareOf(p) == 0 || got.Annotations[kube.AnnotationGPUIndex] != "") {
				placed++
				break
			}
		}
		if (i+1)%250 == 0 {
			fmt.Fprintf(os.Stderr, "[%5.1fs] %d pods created, %d placed\n", time.Since(start).Seconds(), i+1, placed)
		}
	}
	got, err := clusterTotals(ctx, cs)
	if err != nil {
		return err
	}
	nodes, err := traces.ReadNodes(traces.OpenbAllNodes)
	if err != nil {
		return err
	}
	cat := catalog.Default()
	econ := func(tn traces.Node) (model.Economics, error) {
		return cat.Economics(catalog.NodeFacts{Name: tn.Name, AcceleratorModel: tn.Model, AcceleratorCount: tn.GPUs,
			CPUMilli: tn.CPUMilli, MemoryMiB: tn.MemoryMiB, Region: region, CapacityType: catalog.CapacityOnDemand})
	}
	want, err := simulator.PlaceInOrder(nodes, econ, pods, all, "kcloud", model.DefaultWeights, simulator.FirstSeed)
	if err != nil {
		return err
	}
	diff := func(a, b float64) float64 { return 100 * math.Abs(a-b) / math.Max(math.Abs(b), 1e-9) }
	fmt.Printf("first %d pods of the openb default trace on the openb fleet (1,523 nodes), one at a time\n", n)
	fmt.Printf("%-26s %12s %12s %12s\n", "", "placed", "GPU (milli)", "USD/h")
	fmt.Printf("%-26s %12d %12d %12.2f %10.0f W\n", "kcloud-scheduler", got.Scheduled, got.AllocatedGPU, got.CostPerHour, got.PowerWatts)
	fmt.Printf("%-26s %12d %12d %12.2f %10.0f W\n", "kcloud simulate (kcloud)", want.Scheduled, want.AllocatedGPU, want.CostPerHour, want.PowerWatts)
	fmt.Printf("alloc_diff_pct=%.2f cost_diff_pct=%.2f power_diff_pct=%.2f\n",
		diff(float64(got.AllocatedGPU), float64(want.AllocatedGPU)), diff(got.CostPerHour, want.CostPerHour), diff(got.PowerWatts, want.PowerWatts))
	return nil
}

func shareOf(p traces.Pod) int64 {
	if p.NumGPU == 1 && p.GPUMilli < model.MilliPerGPU {
		return p.GPUMilli
	}
	return 0
}

func toPod(p traces.Pod) *corev1.Pod {
	res := corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(p.CPUMilli, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(p.MemoryMiB<<20, resource.BinarySI)}
	ctr := corev1.Container{Name: "c", Image: "example.com/openb:1", Resources: corev1.ResourceRequirements{Requests: res}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: "default", Annotations: map[string]string{}},
		Spec: corev1.PodSpec{SchedulerName: "kcloud-scheduler", Containers: []corev1.Container{ctr}}}
	if m := shareOf(p); m > 0 {
		pod.Annotations[kube.AnnotationGPUMilli] = strconv.FormatInt(m, 10)
	} else if p.NumGPU > 0 {
		pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{catalog.ResourceNVIDIAGPU: *resource.NewQuantity(int64(p.NumGPU), resource.DecimalSI)}
	}
	return pod
}

// clusterTotals reads what the pods hold on the cluster and prices and powers the active nodes.
func clusterTotals(ctx context.Context, cs kubernetes.Interface) (simulator.Totals, error) {
	var t simulator.Totals
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return t, err
	}
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return t, err
	}
	byNode := map[string][]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		t.Pods++
		if p.Spec.NodeName != "" {
			t.Scheduled++
			byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
		}
	}
	cat := catalog.Default()
	for i := range nodes.Items {
		node := &nodes.Items[i]
		facts, err := catalog.FactsFromNode(node)
		if err != nil {
			return t, err
		}
		e, err := cat.Economics(facts)
		if err != nil {
			return t, err
		}
		n := model.NewNode(facts.AcceleratorModel, node.Status.Allocatable.Cpu().MilliValue(), node.Status.Allocatable.Memory().Value()>>20, facts.AcceleratorCount)
		for _, p := range byNode[node.Name] {
			req := kube.PodRequest(p)
			a := model.Allocation{Device: -1}
			if req.IsShare() {
				if a.Device = kube.DeviceIndex(p); a.Device < 0 {
					continue // bound but its device not written yet: not placed by the scheduler's account
				}
			}
			model.Assign(&req, &n, a)
		}
		t.AllocatedGPU += n.AllocatedGPU
		t.CostPerHour += model.NodeCost(&n, &e)
		t.PowerWatts += model.NodePower(&n, &e)
	}
	return t, nil
}
