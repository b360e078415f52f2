package main

import (
	"fmt"

	"kcloud.io/optimizer/pkg/simulator"
	"kcloud.io/optimizer/pkg/traces"
)

// report is a run's outcome.
type report struct {
	pods             []traces.Pod
	total            int // the trace's pods
	fl               fleetNodes
	want             simulator.Totals
	kcloud, upstream round
	upSeconds        float64 // the cluster's start
	simSeconds       float64
	until            float64
	tainted          int // nodes tainted not-ready or unreachable at some point of the rounds
}

func (r *report) print(seconds float64) {
	f := comparisonFleet(r.fl)
	mp := modelPods(r.pods)
	want := make([]placement, len(r.want.Placements))
	for i, pl := range r.want.Placements {
		want[i] = placement{node: pl.Node, device: pl.Device}
	}
	var capacity int64
	for _, n := range f.empty {
		capacity += int64(n.Devices) * 1000
	}
	sim := totals(r.fl, simulatedPods(r.fl, r.pods, r.want.Placements))
	kc, up := totals(r.fl, r.kcloud.pods), totals(r.fl, r.upstream.pods)
	kcAgree, upAgree := compare(f, mp, want, r.kcloud.placements), compare(f, mp, want, r.upstream.placements)
	allocPct := func(x row) float64 { return 100 * float64(x.allocatedGPU) / float64(capacity) }

	fmt.Printf("openb default trace: its first %d of %d pods, until the simulator's GPU allocation passed %.0f%%, on the openb fleet (%d nodes, %d GPUs),\n",
		len(r.pods), r.total, 100*r.until, len(f.empty), capacity/1000)
	fmt.Printf("created one at a time, each bound or unschedulable before the next; the simulator: kcloud policy, default weights, seed %d\n", simulator.FirstSeed)
	fmt.Printf("%-18s %8s %10s %12s %12s %12s %12s\n", "", "placed", "unplaced", "GPU alloc %", "USD/h", "power W", "same node %")
	line := func(name string, x row, same string) {
		fmt.Printf("%-18s %8d %10d %12.2f %12.2f %12.0f %12s\n", name, x.placed, len(r.pods)-x.placed, allocPct(x), x.cost, x.power, same)
	}
	line(kcloudName, kc, fmt.Sprintf("%.2f", kcAgree.pct()))
	line("simulator", sim, "")
	line("upstream", up, fmt.Sprintf("%.2f", upAgree.pct()))
	// The simulator row is the simulator's placement priced by the same function as the others;
	// the simulator's own running totals must agree with it.
	if w := r.want; w.Scheduled != sim.placed || w.AllocatedGPU != sim.allocatedGPU || diffPct(sim.cost, w.CostPerHour) > 1e-6 || diffPct(sim.power, w.PowerWatts) > 1e-6 {
		fmt.Printf("note: the simulator's own totals differ from its row: %d placed, %d milli-GPUs, %.2f USD/h, %.0f W\n",
			w.Scheduled, w.AllocatedGPU, w.CostPerHour, w.PowerWatts)
	}
	for _, a := range []struct {
		name  string
		agree agreement
	}{{kcloudName, kcAgree}, {"upstream", upAgree}} {
		r.printAgreement(a.name, a.agree)
	}
	if r.tainted > 0 {
		fmt.Printf("note: %d nodes were tainted not-ready or unreachable for a while during the rounds (heartbeats late on a busy machine): a scheduler keeps off a node while it is tainted, the simulator knows no heartbeats\n", r.tainted)
	}
	fmt.Printf("time: cluster start %.0fs, simulator %.1fs, kcloud-scheduler %.0fs (%.1f pods/s), upstream %.0fs (%.1f pods/s), all %.0fs\n",
		r.upSeconds, r.simSeconds, r.kcloud.seconds, float64(len(r.pods))/r.kcloud.seconds, r.upstream.seconds, float64(len(r.pods))/r.upstream.seconds, seconds)
	fmt.Printf("alloc_pct=%.2f alloc_diff_pct=%.2f cost_diff_pct=%.2f power_diff_pct=%.2f same_node_pct=%.2f upstream_same_node_pct=%.2f\n",
		allocPct(kc), diffPct(float64(kc.allocatedGPU), float64(sim.allocatedGPU)), diffPct(kc.cost, sim.cost), diffPct(kc.power, sim.power),
		kcAgree.pct(), upAgree.pct())
}

func (r *report) printAgreement(name string, a agreement) {
	fmt.Printf("%s vs simulator, pod by pod: %d on its node, %d on an identical twin, %d placed by neither; "+
		"%d placed by one side only, %d on a node of another shape, %d on a node of its shape otherwise occupied\n",
		name, a.same, a.twin, a.nowhere, a.oneSided, a.otherShape, a.otherOccupancy)
	for _, m := range a.first {
		fmt.Printf("  pod %s: simulator %s, %s %s (%s)\n", r.pods[m.pod].Name, r.nodeName(m.want), name, r.nodeName(m.got), m.why)
	}
}

func (r *report) nodeName(p placement) string {
	if p.node < 0 {
		return "none"
	}
	s := r.fl.nodes[p.node].Name
	if p.device >= 0 {
		s += fmt.Sprintf(" device %d", p.device)
	}
	return s
}
