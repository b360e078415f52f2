package model

// CurvePoint is a device's draw at a utilization between 0 and 1.
type CurvePoint struct {
	Utilization float64
	Watts       float64
}

// PowerCurve is a device's draw as a function of utilization, linear between points sorted by
// utilization; below the first point it draws the first point's watts, above the last the last's.
type PowerCurve []CurvePoint

// WattsAt returns the draw at utilization u (NaN counts as 0).
func (c PowerCurve) WattsAt(u float64) float64 {
	if len(c) == 0 {
		return 0
	}
	if u != u || u <= c[0].Utilization {
		return c[0].Watts
	}
	for i := 1; i < len(c); i++ {
		if u <= c[i].Utilization {
			a, b := c[i-1], c[i]
			if b.Utilization == a.Utilization {
				return b.Watts
			}
			return a.Watts + (b.Watts-a.Watts)*(u-a.Utilization)/(b.Utilization-a.Utilization)
		}
	}
	return c[len(c)-1].Watts
}

// Economics are the price, power and carbon facts of one node (from pkg/catalog).
type Economics struct {
	PricePerHour    float64 // USD/h while the node is up
	HostIdleWatts   float64 // CPU, memory and board at 0% CPU
	HostMaxWatts    float64 // ... at 100% CPU
	Device          PowerCurve
	CarbonIntensity float64 // gCO2/kWh of the node's grid
	Spot            bool
	Green           bool
	// Unpriced, when set, says why the node has no price: PricePerHour is then 0 and means unknown,
	// not free. A pod under a cost cap or budget is not placed there (CheckLimits), and scores give
	// the node a neutral cost term.
	Unpriced string
	// Unpowered, when set, says why the node's accelerators have no power figure: Device is empty
	// and only the host's draw is known. A pod under a power cap or energy budget is not placed there.
	Unpowered string
}

// Active reports whether a node is up: a node without workload pods (its DaemonSets do not count, see
// AssignOverhead) counts as scaled in, as a cluster autoscaler or Karpenter would remove it, and
// neither costs nor draws anything.
func (n *Node) Active() bool { return n.Pods > 0 }

// NodeCost is what the node costs per hour in its current state.
func NodeCost(n *Node, e *Economics) float64 {
	if !n.Active() {
		return 0
	}
	return e.PricePerHour
}

// NodePower is what the node draws in its current state, in watts. An allocated share of a device is
// assumed to run at a utilization equal to the share; allocated CPU at full load.
func NodePower(n *Node, e *Economics) float64 {
	if !n.Active() {
		return 0
	}
	w := e.HostIdleWatts
	if n.CPUMilli > 0 {
		w += (e.HostMaxWatts - e.HostIdleWatts) * float64(n.CPUMilli-n.CPUFree) / float64(n.CPUMilli)
	}
	for i := 0; i < n.Devices; i++ {
		w += e.Device.WattsAt(float64(MilliPerGPU-n.DeviceFree[i]) / MilliPerGPU)
	}
	return w
}

// Marginal is what placing a pod on a node adds to the cluster's hourly cost, power and emissions.
type Marginal struct {
	CostPerHour   float64 // USD/h: the node's price when the pod wakes it, else 0
	PowerWatts    float64 // W: the node's idle draw when the pod wakes it, plus the load the pod adds
	CarbonPerHour float64 // gCO2/h
}

// MarginalOf computes the marginal cost, power and carbon of placing p on n with allocation a,
// without changing n.
func MarginalOf(p *Pod, n *Node, a Allocation, e *Economics) Marginal {
	after := *n
	Assign(p, &after, a)
	dp := NodePower(&after, e) - NodePower(n, e)
	return Marginal{
		CostPerHour:   NodeCost(&after, e) - NodeCost(n, e),
		PowerWatts:    dp,
		CarbonPerHour: dp / 1000 * e.CarbonIntensity,
	}
}

// PodShare is the fraction of a node a pod holds, by its dominant resource: the larger of its share
// of the node's devices, CPU and memory. A pod's attributed cost is its share of the node's price.
func PodShare(p *Pod, n *Node) float64 {
	s := 0.0
	if n.Devices > 0 {
		s = float64(p.GPURequestMilli()) / float64(int64(n.Devices)*MilliPerGPU)
	}
	if n.CPUMilli > 0 {
		s = max(s, float64(p.CPUMilli)/float64(n.CPUMilli))
	}
	if n.MemoryMiB > 0 {
		s = max(s, float64(p.MemoryMiB)/float64(n.MemoryMiB))
	}
	return min(s, 1)
}

// AttributedCost is the hourly cost a pod is charged for on a node: its dominant share of the price.
func AttributedCost(p *Pod, n *Node, e *Economics) float64 {
	return PodShare(p, n) * e.PricePerHour
}

// PowerParts is AttributedPower in its parts, W, so that a measurement of some of them (by DCGM or
// Kepler) replaces those alone and the model supplies the rest.
type PowerParts struct {
	HostIdle          float64 // the pod's dominant share of the host's idle draw
	HostActive        float64 // the host's draw above idle for the pod's CPU
	AcceleratorIdle   float64 // the pod's dominant share of the devices' idle draw
	AcceleratorActive float64 // the pod's devices' draw above idle at its share of them
}

// AttributedPowerParts splits AttributedPower into its parts; they sum to it.
func AttributedPowerParts(p *Pod, n *Node, e *Economics) PowerParts {
	share := PodShare(p, n)
	out := PowerParts{HostIdle: share * e.HostIdleWatts, AcceleratorIdle: share * float64(n.Devices) * e.Device.WattsAt(0)}
	if n.CPUMilli > 0 {
		out.HostActive = (e.HostMaxWatts - e.HostIdleWatts) * float64(p.CPUMilli) / float64(n.CPUMilli)
	}
	if p.GPUCount > 0 {
		perDevice := float64(p.GPUMilli) / MilliPerGPU
		out.AcceleratorActive = float64(p.GPUCount) * (e.Device.WattsAt(perDevice) - e.Device.WattsAt(0))
	}
	return out
}

// AttributedPower is the draw a pod is charged for on a node: the load of its devices at its share,
// its CPU's load, and its dominant share of the node's idle draw (host and devices).
func AttributedPower(p *Pod, n *Node, e *Economics) float64 {
	idle := e.HostIdleWatts + float64(n.Devices)*e.Device.WattsAt(0)
	w := PodShare(p, n) * idle
	if n.CPUMilli > 0 {
		w += (e.HostMaxWatts - e.HostIdleWatts) * float64(p.CPUMilli) / float64(n.CPUMilli)
	}
	if p.GPUCount > 0 {
		perDevice := float64(p.GPUMilli) / MilliPerGPU
		w += float64(p.GPUCount) * (e.Device.WattsAt(perDevice) - e.Device.WattsAt(0))
	}
	return w
}
