package model

import "slices"

// MilliPerGPU is one whole accelerator in milli-GPUs.
const MilliPerGPU = 1000

// MaxDevicesPerNode bounds the devices a node may report; larger nodes are refused by NewNode.
const MaxDevicesPerNode = 16

// Pod is what one pod asks for.
type Pod struct {
	CPUMilli  int64
	MemoryMiB int64
	// GPUCount is the number of devices; with GPUCount == 1, GPUMilli below 1000 asks for a share
	// of one device (GPU sharing as in the Alibaba openb traces).
	GPUCount int
	// GPUMilli is the share per device in milli-GPUs: 1000 for whole devices.
	GPUMilli int64
	// Models the pod may run on (empty: any); compared with Node.Model.
	Models []string
}

// GPURequestMilli is the pod's total accelerator request in milli-GPUs.
func (p Pod) GPURequestMilli() int64 {
	if p.GPUCount == 0 {
		return 0
	}
	if p.GPUCount == 1 {
		return p.GPUMilli
	}
	return int64(p.GPUCount) * MilliPerGPU
}

// IsShare reports whether the pod asks for part of one device.
func (p Pod) IsShare() bool { return p.GPUCount == 1 && p.GPUMilli < MilliPerGPU }

// Node is the allocation state of one node: capacity and what is free, per device.
type Node struct {
	Model        string
	CPUMilli     int64 // allocatable
	MemoryMiB    int64
	CPUFree      int64
	MemoryFree   int64
	Devices      int
	DeviceFree   [MaxDevicesPerNode]int64 // free milli-GPUs of each device
	Pods         int                      // workload pods placed (not its DaemonSets); a node without any is asleep (scaled in)
	AllocatedGPU int64                    // milli-GPUs allocated
}

// NewNode returns an empty node with every device whole.
func NewNode(model string, cpuMilli, memoryMiB int64, devices int) Node {
	if devices > MaxDevicesPerNode {
		devices = MaxDevicesPerNode
	}
	n := Node{Model: model, CPUMilli: cpuMilli, MemoryMiB: memoryMiB, CPUFree: cpuMilli, MemoryFree: memoryMiB, Devices: devices}
	for i := 0; i < devices; i++ {
		n.DeviceFree[i] = MilliPerGPU
	}
	return n
}

// FreeGPU is the node's free accelerator capacity in milli-GPUs.
func (n *Node) FreeGPU() int64 { return int64(n.Devices)*MilliPerGPU - n.AllocatedGPU }

// WholeFreeDevices counts devices with nothing allocated.
func (n *Node) WholeFreeDevices() int {
	c := 0
	for i := 0; i < n.Devices; i++ {
		if n.DeviceFree[i] == MilliPerGPU {
			c++
		}
	}
	return c
}

// ModelAllowed reports whether the pod accepts the node's accelerator model.
func ModelAllowed(p *Pod, n *Node) bool {
	return len(p.Models) == 0 || slices.Contains(p.Models, n.Model)
}

// Fits reports whether the pod fits the node's free CPU, memory and devices (and model constraint).
func Fits(p *Pod, n *Node) bool {
	if p.CPUMilli > n.CPUFree || p.MemoryMiB > n.MemoryFree {
		return false
	}
	if p.GPUCount == 0 {
		return true
	}
	if !ModelAllowed(p, n) {
		return false
	}
	if p.IsShare() {
		for i := 0; i < n.Devices; i++ {
			if n.DeviceFree[i] >= p.GPUMilli {
				return true
			}
		}
		return false
	}
	return n.WholeFreeDevices() >= p.GPUCount
}

// Allocation says which devices a pod takes on a node: Device for a share; for whole-device pods,
// Assign takes the lowest-index free devices and records them in Whole.
type Allocation struct {
	Device int
	Whole  []int
}

// Assign places the pod on the node with the given allocation and returns it with the whole devices
// taken filled in; the caller has checked Fits.
func Assign(p *Pod, n *Node, a Allocation) Allocation {
	n.CPUFree -= p.CPUMilli
	n.MemoryFree -= p.MemoryMiB
	n.Pods++
	if p.GPUCount == 0 {
		return a
	}
	if p.IsShare() {
		n.DeviceFree[a.Device] -= p.GPUMilli
		n.AllocatedGPU += p.GPUMilli
		return a
	}
	a.Whole = a.Whole[:0]
	for i := 0; i < n.Devices && len(a.Whole) < p.GPUCount; i++ {
		if n.DeviceFree[i] == MilliPerGPU {
			n.DeviceFree[i] = 0
			a.Whole = append(a.Whole, i)
		}
	}
	n.AllocatedGPU += int64(p.GPUCount) * MilliPerGPU
	return a
}

// AssignOverhead counts a pod that belongs to the node rather than to a workload (a DaemonSet's pod,
// a static pod): it takes the CPU, memory and any devices it asks for (none of the usual daemons
// ask for devices), as any pod does, and never makes the node active. A workload's share of the
// node (PodShare) stays a share of the node's allocatable: the daemons' part of the price is the
// node's overhead, charged to no workload, as OpenCost leaves it idle. The caller has checked Fits.
func AssignOverhead(p *Pod, n *Node, a Allocation) Allocation {
	a = Assign(p, n, a)
	n.Pods--
	return a
}

// ShareCandidates returns the devices a share pod could take, one per distinct free amount (devices
// with the same free milli-GPUs are interchangeable), in device order.
func ShareCandidates(p *Pod, n *Node, out []int) []int {
	out = out[:0]
	for i := 0; i < n.Devices; i++ {
		if n.DeviceFree[i] < p.GPUMilli {
			continue
		}
		dup := false
		for _, j := range out {
			if n.DeviceFree[j] == n.DeviceFree[i] {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, i)
		}
	}
	return out
}

// BestFitDevice returns the device with the least free capacity that still holds the share, the
// usual GPU-share rule (it keeps whole devices whole); -1 when none fits.
func BestFitDevice(p *Pod, n *Node) int {
	best := -1
	for i := 0; i < n.Devices; i++ {
		f := n.DeviceFree[i]
		if f >= p.GPUMilli && (best < 0 || f < n.DeviceFree[best]) {
			best = i
		}
	}
	return best
}

// Release undoes Assign for a pod placed with allocation a; whole devices are the ones Assign took
// when a.Devices lists them, otherwise the pod's count of fully allocated devices from the last.
func Release(p *Pod, n *Node, a Allocation) {
	n.CPUFree += p.CPUMilli
	n.MemoryFree += p.MemoryMiB
	n.Pods--
	if p.GPUCount == 0 {
		return
	}
	if p.IsShare() {
		n.DeviceFree[a.Device] += p.GPUMilli
		n.AllocatedGPU -= p.GPUMilli
		return
	}
	for _, d := range a.Whole {
		n.DeviceFree[d] = MilliPerGPU
	}
	n.AllocatedGPU -= int64(p.GPUCount) * MilliPerGPU
}
