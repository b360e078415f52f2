package model

import (
	"cmp"
	"slices"
)

// PodType is one kind of pod in a target workload, with its share of the workload. GPU fragmentation
// is measured against a target workload: capacity that the workload's typical pods cannot use is
// fragmented (FGD, Weng et al., USENIX ATC'23).
type PodType struct {
	CPUMilli   int64
	GPUCount   int
	GPUMilli   int64
	Models     []string
	Popularity float64 // share of the workload, summing to 1 over the types
}

// TypicalPodTypes groups pods by (CPU, GPU count, GPU share, models), orders the groups by count
// (ties: larger CPU, then GPU share, GPU count, models), keeps the smallest prefix covering at least
// coverage (0..1) of the pods and renormalises their popularity to 1. FGD uses coverage 0.95.
func TypicalPodTypes(pods []Pod, coverage float64) []PodType {
	type key struct {
		cpu, milli int64
		count      int
		models     string
	}
	counts := map[key]int{}
	models := map[key][]string{}
	for _, p := range pods {
		k := key{p.CPUMilli, p.GPUMilli, p.GPUCount, joinModels(p.Models)}
		counts[k]++
		models[k] = p.Models
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(
			cmp.Compare(counts[b], counts[a]),
			cmp.Compare(b.cpu, a.cpu),
			cmp.Compare(b.milli, a.milli),
			cmp.Compare(b.count, a.count),
			cmp.Compare(a.models, b.models),
		)
	})
	var types []PodType
	covered, total := 0, len(pods)
	for _, k := range keys {
		if total > 0 && float64(covered) >= coverage*float64(total) {
			break
		}
		covered += counts[k]
		types = append(types, PodType{CPUMilli: k.cpu, GPUCount: k.count, GPUMilli: k.milli, Models: models[k], Popularity: float64(counts[k])})
	}
	for i := range types {
		types[i].Popularity /= float64(covered)
	}
	return types
}

func joinModels(m []string) string {
	s := ""
	for i, x := range m {
		if i > 0 {
			s += "|"
		}
		s += x
	}
	return s
}

// Fragmentation is the node's expected fragmented accelerator capacity, in milli-GPUs, against the
// target workload: for each pod type, the free capacity that type could not use on this node,
// weighted by its popularity. A type that cannot run here at all (no GPU request, wrong model, too
// little CPU, too few devices with room) sees all free capacity as fragmented; otherwise the free
// capacity of devices with less room than it needs. Memory is not considered, as in FGD.
func Fragmentation(n *Node, types []PodType) float64 {
	var free int64
	for i := 0; i < n.Devices; i++ {
		free += n.DeviceFree[i]
	}
	if free == 0 {
		return 0
	}
	f := 0.0
	for t := range types {
		f += types[t].Popularity * float64(typeFragment(n, &types[t], free))
	}
	return f
}

func typeFragment(n *Node, t *PodType, free int64) int64 {
	if t.GPUMilli == 0 || t.GPUCount == 0 || t.CPUMilli > n.CPUFree {
		return free
	}
	if len(t.Models) > 0 && !slices.Contains(t.Models, n.Model) {
		return free
	}
	fitting := 0
	var unusable int64
	for i := 0; i < n.Devices; i++ {
		if d := n.DeviceFree[i]; d >= t.GPUMilli {
			fitting++
		} else {
			unusable += d
		}
	}
	if fitting < t.GPUCount {
		return free
	}
	return unusable
}

// PlaceShare chooses where a pod goes on a node and how that changes the node's fragmentation:
// for a share of one device, the device that leaves the node least fragmented (the first such
// device), as FGD does; whole-device pods take the lowest-index free devices. before is the node's
// current Fragmentation against types; the result's FragDelta is after minus before.
func PlaceShare(p *Pod, n *Node, types []PodType, before float64) (Allocation, float64) {
	if !p.IsShare() {
		after := *n
		Assign(p, &after, Allocation{Device: -1})
		return Allocation{Device: -1}, Fragmentation(&after, types) - before
	}
	best, dev := 0.0, -1
	var cands [MaxDevicesPerNode]int
	for _, d := range ShareCandidates(p, n, cands[:0]) {
		after := *n
		Assign(p, &after, Allocation{Device: d})
		if delta := Fragmentation(&after, types) - before; dev < 0 || delta < best {
			best, dev = delta, d
		}
	}
	return Allocation{Device: dev}, best
}
