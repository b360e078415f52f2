package simulator

import (
	"slices"

	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/traces"
)

// ReplayResult is one replay run.
type ReplayResult struct {
	Pods, Scheduled  int
	Waited, NeverRan int
	NodeHours        float64
	CostUSD          float64
	EnergyKWh        float64
	CarbonKg         float64
}

// replayPod is a pod with its trace times resolved: it wants to run from start for duration seconds.
type replayPod struct {
	pod      *Pod
	start    int64
	duration int64
}

// runReplay follows the trace's own timeline: pods arrive at their creation time and leave after
// their lifetime; a pod that fits nowhere waits, and when a pod leaves, the waiting pods that fit its
// node start there, oldest first, keeping their lifetime; one still waiting when its own deletion
// time passes never runs. A node without pods is scaled in and costs nothing.
func runReplay(c *Cluster, trace []Pod, times [][2]int64, types []model.PodType, policy string, w Weights, seed int64) (ReplayResult, error) {
	pol, err := NewPolicy(policy, w)
	if err != nil {
		return ReplayResult{}, err
	}
	s := newState(c, types, seed)
	var end int64
	for _, t := range times {
		end = max(end, t[0], t[1])
	}
	var arrivals []replayPod
	for i := range trace {
		start, stop := times[i][0], times[i][1]
		if start == traces.NoTime {
			start = 0
		}
		if stop == traces.NoTime {
			stop = end
		}
		if stop <= start {
			continue
		}
		arrivals = append(arrivals, replayPod{pod: &trace[i], start: start, duration: stop - start})
	}
	slices.SortStableFunc(arrivals, func(a, b replayPod) int { return int(a.start - b.start) })

	type running struct {
		stop  int64
		node  int
		pod   *Pod
		alloc model.Allocation
	}
	var (
		res     = ReplayResult{Pods: len(arrivals)}
		active  []running // kept sorted by stop
		pending []replayPod
		waited  = map[*Pod]bool{}
		now     int64
	)
	advance := func(t int64) {
		if dt := float64(t-now) / 3600; dt > 0 {
			res.NodeHours += dt * float64(s.activeNodes)
			res.CostUSD += dt * s.totalCost
			res.EnergyKWh += dt * s.totalPow / 1000
			res.CarbonKg += dt * s.totalCarbon / 1000
		}
		now = t
	}
	start := func(rp replayPod) bool {
		node, a := s.place(pol, rp.pod)
		if node < 0 {
			return false
		}
		a = s.assign(node, rp.pod, a)
		res.Scheduled++
		r := running{stop: now + rp.duration, node: node, pod: rp.pod, alloc: a}
		at, _ := slices.BinarySearchFunc(active, r.stop, func(x running, t int64) int { return int(x.stop - t) })
		active = slices.Insert(active, at, r)
		return true
	}
	next := 0
	for next < len(arrivals) || len(active) > 0 {
		// Departures before arrivals at the same instant.
		if len(active) > 0 && (next == len(arrivals) || active[0].stop <= arrivals[next].start) {
			r := active[0]
			active = active[1:]
			advance(r.stop)
			s.release(r.node, r.pod, r.alloc)
			// Only the freed node gained room: try waiting pods that now fit it, oldest first.
			kept := pending[:0]
			for _, w := range pending {
				switch {
				case w.start+w.duration <= now:
					res.NeverRan++
				case model.Fits(&w.pod.Pod, &s.c.Nodes[r.node]) && start(w):
				default:
					kept = append(kept, w)
				}
			}
			pending = kept
			continue
		}
		a := arrivals[next]
		next++
		advance(a.start)
		if !start(a) {
			if !waited[a.pod] {
				waited[a.pod] = true
				res.Waited++
			}
			pending = append(pending, a)
		}
	}
	res.NeverRan += len(pending)
	return res, nil
}
