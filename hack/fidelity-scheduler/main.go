// Command fidelity-scheduler checks that kcloud-scheduler does what `kcloud simulate` predicts, at
// load: the simulator places the openb default trace's pods in order on the openb fleet until GPU
// allocation passes 90% (--until) of the fleet's GPUs, and that prefix of the trace is created on
// the local cluster's openb fleet one pod at a time, each bound or reported unschedulable before the
// next, for kcloud-scheduler, then (its pods deleted) for the upstream kube-scheduler with a plain
// configuration. It compares the placements pod by pod (the simulator's node, or an identical twin
// of it: same shape, same occupancy just before the pod) and in total: GPU allocation, hourly cost
// and power, all three priced and powered by one function of the product's rules. The upstream row
// shows how far apart two different schedulers land. The last line is
// alloc_pct=A alloc_diff_pct=B cost_diff_pct=C power_diff_pct=D same_node_pct=E upstream_same_node_pct=F.
// Run it with `make fidelity-scheduler`.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kcloud.io/optimizer/config"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/scheduler/nodeview"
	"kcloud.io/optimizer/pkg/simulator"
	"kcloud.io/optimizer/pkg/traces"
)

const kcloudName = "kcloud-scheduler" // SchedulerConfig's profile

func main() {
	binDir := flag.String("bin-dir", "bin/controlplane/current", "control-plane binaries")
	sched := flag.String("kcloud-scheduler", "bin/kcloud-scheduler", "kcloud-scheduler binary")
	until := flag.Float64("until", 0.9, "place the trace's pods until the simulator's GPU allocation passes this fraction of the fleet's GPUs")
	maxPods := flag.Int("max-pods", 0, "if set, place at most this many pods (a quick run short of the target allocation)")
	flag.Parse()
	if err := run(*binDir, *sched, *until, *maxPods); err != nil {
		fmt.Fprintln(os.Stderr, "fidelity-scheduler:", err)
		os.Exit(1)
	}
}

// fleetNodes are the cluster's nodes in the trace's node order, with the facts kcloud-scheduler
// reads from them (nodeview: catalog facts, economics, shape).
type fleetNodes struct {
	nodes []*corev1.Node
	facts []*nodeview.Facts
	index map[string]int // node name -> index
}

func run(binDir, sched string, until float64, maxPods int) error {
	ctx := context.Background()
	begin := time.Now()
	all, err := traces.ReadPods(traces.OpenbDefaultPods)
	if err != nil {
		return err
	}
	tnodes, err := traces.ReadNodes(traces.OpenbAllNodes)
	if err != nil {
		return err
	}
	c, stop, err := devcluster.UpTemporary(ctx, devcluster.Options{BinDir: binDir, Profile: "openb",
		Scheduler: sched, SchedulerConfig: config.SchedulerConfig})
	if err != nil {
		return err
	}
	defer stop()
	upSeconds := time.Since(begin).Seconds()
	stopIdleScheduler(c)
	cfg := rest.CopyConfig(c.Config)
	cfg.ContentType = runtime.ContentTypeProtobuf // lighter on a busy API server than JSON
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	fl, err := readFleet(ctx, cs, tnodes)
	if err != nil {
		return err
	}
	simStart := time.Now()
	want, pods, err := simulate(tnodes, fl, all, until, maxPods)
	if err != nil {
		return err
	}
	simSeconds := time.Since(simStart).Seconds()
	fmt.Fprintf(os.Stderr, "simulator: %d pods to pass %.0f%% GPU allocation, %d placed, in %.1fs\n", len(pods), 100*until, want.Scheduled, simSeconds)

	taints, err := watchTaints(ctx, cs)
	if err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // kcloud-scheduler's caches
	kc, err := runRound(ctx, cs, kcloudName, kcloudName, pods, fl.index)
	if err != nil {
		return err
	}
	if err := deleteAll(ctx, cs, kc.pods); err != nil {
		return err
	}
	if err := startUpstream(c, binDir); err != nil {
		return err
	}
	up, err := runRound(ctx, cs, "upstream", upstreamName, pods, fl.index)
	if err != nil {
		return err
	}
	r := report{pods: pods, total: len(all), fl: fl, want: want, kcloud: kc, upstream: up,
		upSeconds: upSeconds, simSeconds: simSeconds, until: until, tainted: taints.count()}
	r.print(time.Since(begin).Seconds())
	return nil
}

// readFleet lists the cluster's nodes and orders them as the trace lists its nodes (the openb
// profile builds one node per trace node, in order).
func readFleet(ctx context.Context, cs kubernetes.Interface, tnodes []traces.Node) (fleetNodes, error) {
	names, err := devcluster.FleetNodes("openb", catalog.Default())
	if err != nil {
		return fleetNodes{}, err
	}
	if len(names) != len(tnodes) {
		return fleetNodes{}, fmt.Errorf("the openb profile has %d nodes, the trace %d", len(names), len(tnodes))
	}
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fleetNodes{}, err
	}
	byName := map[string]*corev1.Node{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	view := nodeview.New(catalog.Default())
	fl := fleetNodes{index: map[string]int{}}
	tainted, live, defined := 0, map[int]bool{}, map[int]bool{}
	for i := range names {
		n, ok := byName[names[i].Name]
		if !ok {
			return fl, fmt.Errorf("node %s of the openb profile is not in the cluster", names[i].Name)
		}
		// The node's own facts: a not-ready or unreachable taint the node lifecycle controller puts
		// on a node whose heartbeat is late (a busy machine) comes and goes, and would make a node
		// unlike its twins for the whole comparison.
		if own := withoutLifecycleTaints(n); own != n {
			n, tainted = own, tainted+1
		}
		f := view.Facts(n)
		if f.Err != nil {
			return fl, f.Err
		}
		live[f.Shape], defined[view.Facts(&names[i]).Shape] = true, true
		fl.nodes, fl.facts = append(fl.nodes, n), append(fl.facts, f)
		fl.index[n.Name] = i
	}
	if tainted > 0 {
		fmt.Fprintf(os.Stderr, "%d nodes carried a not-ready or unreachable taint when listed\n", tainted)
	}
	// The cluster adds to each node what it adds to every node alike (kwok's status), so the live
	// nodes fall into as many shapes as the profile defines, unless some node differs from its twins.
	if len(live) != len(defined) {
		fmt.Fprintf(os.Stderr, "the cluster's nodes have %d shapes, the profile defines %d\n", len(live), len(defined))
	}
	return fl, nil
}

// withoutLifecycleTaints is the node without the node lifecycle controller's taints, or the node
// itself when it has none.
func withoutLifecycleTaints(n *corev1.Node) *corev1.Node {
	lifecycle := func(t corev1.Taint) bool {
		return t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable
	}
	if !slices.ContainsFunc(n.Spec.Taints, lifecycle) {
		return n
	}
	own := n.DeepCopy()
	own.Spec.Taints = slices.DeleteFunc(own.Spec.Taints, lifecycle)
	return own
}

// stopIdleScheduler stops the local cluster's own kube-scheduler: the bare openb fleet runs no
// DaemonSets, so it has nothing to schedule, and it would spend a share of the machine's CPU
// following every pod and node update while the schedulers under test run.
func stopIdleScheduler(c *devcluster.Cluster) {
	for _, p := range c.Processes {
		if p.Name == "kube-scheduler" && devcluster.Alive(p.PID) {
			_ = syscall.Kill(-p.PID, syscall.SIGTERM) // its own process group, as the cluster started it
		}
	}
}

// simulate places the trace's pods in order with the simulator's kcloud policy (`kcloud simulate`'s
// engine, the scheduler's weights, the first seed) until GPU allocation passes until of the fleet's
// GPUs, and returns that prefix of the trace and the simulator's placement of it. Trace node i is
// the cluster's node i, priced as kcloud-scheduler prices it.
func simulate(tnodes []traces.Node, fl fleetNodes, all []traces.Pod, until float64, maxPods int) (simulator.Totals, []traces.Pod, error) {
	byName := map[string]int{}
	var capacity int64
	for i, n := range tnodes {
		byName[n.Name] = i
		capacity += int64(n.GPUs) * model.MilliPerGPU
	}
	econ := func(n traces.Node) (model.Economics, error) { return fl.facts[byName[n.Name]].Econ, nil }
	place := func(pods []traces.Pod) (simulator.Totals, error) {
		return simulator.PlaceInOrder(tnodes, econ, pods, all, "kcloud", model.DefaultWeights, simulator.FirstSeed)
	}
	full, err := place(all)
	if err != nil {
		return full, nil, err
	}
	n, allocated := len(all), int64(0)
	for i, pl := range full.Placements {
		if pl.Node >= 0 {
			p := model.Pod{GPUCount: all[i].NumGPU, GPUMilli: all[i].GPUMilli}
			allocated += p.GPURequestMilli()
		}
		if float64(allocated) > until*float64(capacity) {
			n = i + 1
			break
		}
	}
	if float64(allocated) <= until*float64(capacity) {
		return full, nil, fmt.Errorf("the whole trace brings GPU allocation to %.1f%%, not past %.0f%%", 100*float64(allocated)/float64(capacity), 100*until)
	}
	if maxPods > 0 && n > maxPods {
		n = maxPods
	}
	want, err := place(all[:n])
	if err != nil {
		return want, nil, err
	}
	// The run over the prefix makes the same choices as the run over the whole trace did for it:
	// the engine is deterministic per seed.
	if !slices.Equal(want.Placements, full.Placements[:n]) {
		return want, nil, fmt.Errorf("the simulator placed the first %d pods differently in a run of its own", n)
	}
	return want, all[:n], nil
}

// row is a final placement's totals.
type row struct {
	placed       int
	allocatedGPU int64 // milli-GPUs
	cost, power  float64
}

// totals prices and powers a final placement by the product's rules, the same for every row: each
// node's pods counted by kube.Occupy on the node's capacity (kube.NodeCapacity), in admission
// order, and the node's cost and power by pkg/model with its economics as kcloud-scheduler reads
// them.
func totals(fl fleetNodes, pods []*corev1.Pod) row {
	var r row
	byNode := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			r.placed++
			byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
		}
	}
	for i, node := range fl.nodes {
		f := fl.facts[i]
		n := kube.NodeCapacity(node, f.Facts)
		on := byNode[node.Name]
		slices.SortFunc(on, kube.CompareAdmission)
		n.Pods += kube.Occupy(&n, slices.Values(on), kube.OccupyOptions{})
		r.allocatedGPU += n.AllocatedGPU
		r.cost += model.NodeCost(&n, &f.Econ)
		r.power += model.NodePower(&n, &f.Econ)
	}
	return r
}

// simulatedPods are the simulator's placements as pods bound to the cluster's nodes, with the
// devices it chose for shares written as kcloud-scheduler writes them.
func simulatedPods(fl fleetNodes, pods []traces.Pod, placements []simulator.Placement) []*corev1.Pod {
	out := make([]*corev1.Pod, len(pods))
	for i, p := range pods {
		out[i] = toPod(p, "")
		if pl := placements[i]; pl.Node >= 0 {
			out[i].Spec.NodeName = fl.nodes[pl.Node].Name
			if pl.Device >= 0 {
				out[i].Annotations[kube.AnnotationGPUIndex] = fmt.Sprint(pl.Device)
			}
		}
	}
	return out
}

// comparisonFleet is the fleet as the pod-by-pod comparison sees it.
func comparisonFleet(fl fleetNodes) fleet {
	f := fleet{}
	for i, node := range fl.nodes {
		f.empty = append(f.empty, kube.NodeCapacity(node, fl.facts[i].Facts))
		f.shapes = append(f.shapes, fl.facts[i].Shape)
	}
	return f
}

func modelPods(pods []traces.Pod) []model.Pod {
	out := make([]model.Pod, len(pods))
	for i, p := range pods {
		out[i] = model.Pod{CPUMilli: p.CPUMilli, MemoryMiB: p.MemoryMiB, GPUCount: p.NumGPU, GPUMilli: p.GPUMilli, Models: p.Models}
	}
	return out
}

func diffPct(a, b float64) float64 { return 100 * math.Abs(a-b) / math.Max(math.Abs(b), 1e-9) }
