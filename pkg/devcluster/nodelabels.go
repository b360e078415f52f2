package devcluster

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"kcloud.io/optimizer/pkg/catalog"
)

// Labels that node feature discovery (NFD), the vendors' GPU operators and feature discovery, and the
// clouds put on accelerator nodes. The daemons of daemons.go select nodes by them, as the real ones do.
const (
	// NFD's PCI vendor labels (feature.node.kubernetes.io/pci-<vendor id>.present). The ids are the
	// PCI-SIG vendor ids: NVIDIA 10de, AMD 1002, Habana Labs 1da3, Amazon 1d0f, Rebellions 1eff,
	// FuriosaAI 1ed2.
	LabelPCINVIDIA     = "feature.node.kubernetes.io/pci-10de.present"
	LabelPCIAMD        = "feature.node.kubernetes.io/pci-1002.present"
	LabelPCIHabana     = "feature.node.kubernetes.io/pci-1da3.present"
	LabelPCIAmazon     = "feature.node.kubernetes.io/pci-1d0f.present"
	LabelPCIRebellions = "feature.node.kubernetes.io/pci-1eff.present"
	LabelPCIFuriosa    = "feature.node.kubernetes.io/pci-1ed2.present"

	// LabelNVIDIAGPUPresent is set by the NVIDIA GPU operator on nodes where NFD found an NVIDIA PCI
	// device; its operands (device plugin, GFD, dcgm-exporter) run where it is "true".
	LabelNVIDIAGPUPresent = "nvidia.com/gpu.present"
	// LabelAMDGPU is the NFD rule label of the AMD GPU operator; its operands run where it is "true".
	LabelAMDGPU = "feature.node.kubernetes.io/amd-gpu"

	// LabelEKSNodegroup names an EKS managed node group; the system pool is one.
	LabelEKSNodegroup = "eks.amazonaws.com/nodegroup"
	// LabelKarpenterNodePool names the Karpenter NodePool that launched a node.
	LabelKarpenterNodePool = "karpenter.sh/nodepool"
	// LabelGKENodePool names a GKE node pool.
	LabelGKENodePool = "cloud.google.com/gke-nodepool"

	// TaintCriticalAddonsOnly keeps everything but cluster add-ons off the system pool, as on the EKS
	// and AKS system node pools.
	TaintCriticalAddonsOnly = "CriticalAddonsOnly"
	// SystemNodegroup is the system pool's EKS node group name.
	SystemNodegroup = "system"
)

// nvidiaCard is what NVIDIA GPU feature discovery reports about one GPU model.
type nvidiaCard struct {
	MemoryMiB    int    // nvidia.com/gpu.memory: NVML's total memory of the card, in MiB
	Family       string // nvidia.com/gpu.family: GFD's name of the architecture
	ComputeMajor int    // nvidia.com/gpu.compute.major/minor: the CUDA compute capability
	ComputeMinor int
	GKE          string // cloud.google.com/gke-accelerator on GKE
}

// nvidiaCards are the NVIDIA models of the production-like fleet. Memory is the card's size as
// nvidia-smi shows it (NVML reserves a little on some cards: T4 15360, A10G 23028, L4 23034, H100 80GB
// HBM3 81559); families and compute capabilities from NVIDIA's CUDA GPU list; GKE names from GKE's
// GPU docs.
var nvidiaCards = map[string]nvidiaCard{
	"V100": {MemoryMiB: 16384, Family: "volta", ComputeMajor: 7, ComputeMinor: 0, GKE: "nvidia-tesla-v100"},
	"T4":   {MemoryMiB: 15360, Family: "turing", ComputeMajor: 7, ComputeMinor: 5, GKE: "nvidia-tesla-t4"},
	"A100": {MemoryMiB: 40960, Family: "ampere", ComputeMajor: 8, ComputeMinor: 0, GKE: "nvidia-tesla-a100"},
	"A10G": {MemoryMiB: 23028, Family: "ampere", ComputeMajor: 8, ComputeMinor: 6},
	"L4":   {MemoryMiB: 23034, Family: "ada-lovelace", ComputeMajor: 8, ComputeMinor: 9, GKE: "nvidia-l4"},
	"H100": {MemoryMiB: 81559, Family: "hopper", ComputeMajor: 9, ComputeMinor: 0, GKE: "nvidia-h100-80gb"},
}

// The driver GFD reports on every NVIDIA node: the 550 production branch, which ships CUDA 12.4.
const (
	nvidiaDriverMajor, nvidiaDriverMinor, nvidiaDriverRev = "550", "127", "05"
	cudaRuntimeMajor, cudaRuntimeMinor                    = "12", "4"
)

// amdCard is what the AMD GPU node labeller reports about one GPU model.
type amdCard struct {
	DeviceID string // amd.com/gpu.device-id: the PCI device id
	VRAM     string // amd.com/gpu.vram
	CUs      int    // amd.com/gpu.cu-count
	Family   string // amd.com/gpu.family
}

// amdCards: MI300X is PCI device 74a1 with 192 GB HBM3 and 304 compute units (AMD Instinct MI300X data
// sheet), of the CDNA 3 family the labeller calls "AI".
var amdCards = map[string]amdCard{
	"MI300X": {DeviceID: "74a1", VRAM: "192G", CUs: 304, Family: "AI"},
}

// labelLikeProduction turns a bare node into one that looks like a production cluster's: it drops
// kcloud.io/accelerator-model (FactsFromNode resolves the model from the vendor labels instead) and
// adds the vendors' feature-discovery labels, the cloud's labels, and the system pool's label and taint.
func labelLikeProduction(n *corev1.Node, g NodeGroup, dev catalog.DeviceSpec) error {
	labels := n.Labels
	delete(labels, catalog.LabelAcceleratorModel)
	if err := addVendorLabels(labels, g, dev); err != nil {
		return err
	}
	addCloudLabels(labels, g, dev)
	if g.System {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: TaintCriticalAddonsOnly, Value: "true", Effect: corev1.TaintEffectNoSchedule})
	}
	return nil
}

// addVendorLabels sets what NFD and the vendor's feature discovery would find on the node.
func addVendorLabels(labels map[string]string, g NodeGroup, dev catalog.DeviceSpec) error {
	if g.Model == "" || g.Accelerators == 0 {
		return nil
	}
	count := strconv.Itoa(g.Accelerators)
	switch dev.Resource {
	case catalog.ResourceNVIDIAGPU:
		card, ok := nvidiaCards[dev.Model]
		if !ok {
			return fmt.Errorf("no GPU feature discovery figures for NVIDIA model %s", dev.Model)
		}
		machine := g.InstanceType // GFD reads the DMI product name: the instance type on EC2
		if g.Cloud == CloudGCP {
			machine = "Google-Compute-Engine"
		}
		for k, v := range map[string]string{
			LabelPCINVIDIA:                  "true",
			LabelNVIDIAGPUPresent:           "true",
			catalog.LabelNVIDIAGPUProduct:   dev.ProductLabel,
			"nvidia.com/gpu.count":          count,
			"nvidia.com/gpu.memory":         strconv.Itoa(card.MemoryMiB),
			"nvidia.com/gpu.family":         card.Family,
			"nvidia.com/gpu.compute.major":  strconv.Itoa(card.ComputeMajor),
			"nvidia.com/gpu.compute.minor":  strconv.Itoa(card.ComputeMinor),
			"nvidia.com/gpu.machine":        machine,
			"nvidia.com/cuda.driver.major":  nvidiaDriverMajor,
			"nvidia.com/cuda.driver.minor":  nvidiaDriverMinor,
			"nvidia.com/cuda.driver.rev":    nvidiaDriverRev,
			"nvidia.com/cuda.runtime.major": cudaRuntimeMajor,
			"nvidia.com/cuda.runtime.minor": cudaRuntimeMinor,
			"nvidia.com/mig.capable":        strconv.FormatBool(dev.Model == "A100" || dev.Model == "H100"),
		} {
			labels[k] = v
		}
	case catalog.ResourceAMDGPU:
		card, ok := amdCards[dev.Model]
		if !ok {
			return fmt.Errorf("no AMD node labeller figures for model %s", dev.Model)
		}
		for k, v := range map[string]string{
			LabelPCIAMD:                    "true",
			LabelAMDGPU:                    "true",
			catalog.LabelAMDGPUProductName: dev.ProductLabel,
			"amd.com/gpu.device-id":        card.DeviceID,
			"amd.com/gpu.vram":             card.VRAM,
			"amd.com/gpu.cu-count":         strconv.Itoa(card.CUs),
			"amd.com/gpu.family":           card.Family,
		} {
			labels[k] = v
		}
	case catalog.ResourceGaudi:
		labels[LabelPCIHabana] = "true"
		labels[catalog.LabelGaudiDeviceType] = dev.ProductLabel
	case catalog.ResourceNeuron:
		// Neuron chips have no feature discovery; Karpenter's instance labels (addCloudLabels) name them.
		labels[LabelPCIAmazon] = "true"
	case catalog.ResourceRebellionsATOM:
		labels[LabelPCIRebellions] = "true"
		labels[catalog.LabelRebellionsNPUProduct] = dev.ProductLabel
	case catalog.ResourceFuriosaRNGD:
		labels[LabelPCIFuriosa] = "true"
		labels[catalog.LabelFuriosaNPUProduct] = dev.ProductLabel
	default:
		return fmt.Errorf("no feature discovery labels for resource %s of model %s", dev.Resource, dev.Model)
	}
	return nil
}

// addCloudLabels sets what the cloud's node provisioner sets: Karpenter's labels on EC2 (and an EKS
// managed node group's on the system pool), GKE's on GCE. On-premises nodes keep only the topology
// labels their admins set. karpenter.sh/capacity-type stays on GKE nodes too: the tests and the
// product description's spot examples read it.
func addCloudLabels(labels map[string]string, g NodeGroup, dev catalog.DeviceSpec) {
	model := strings.ToLower(dev.Model)
	switch {
	case g.Cloud == CloudAWS && g.System:
		delete(labels, catalog.LabelCapacityType)
		labels[LabelEKSNodegroup] = SystemNodegroup
		labels[catalog.LabelEKSCapacityType] = catalog.EKSCapacityOnDemand
		if g.Spot {
			labels[catalog.LabelEKSCapacityType] = catalog.EKSCapacitySpot
		}
	case g.Cloud == CloudAWS:
		labels[LabelKarpenterNodePool] = model + "-" + labels[catalog.LabelCapacityType]
		labels["karpenter.k8s.aws/instance-family"] = strings.SplitN(g.InstanceType, ".", 2)[0]
		switch dev.Resource {
		case catalog.ResourceNVIDIAGPU:
			labels[catalog.LabelKarpenterGPUName] = model
			labels["karpenter.k8s.aws/instance-gpu-count"] = strconv.Itoa(g.Accelerators)
			labels["karpenter.k8s.aws/instance-gpu-manufacturer"] = "nvidia"
		case catalog.ResourceNeuron:
			labels[catalog.LabelKarpenterAcceleratorName] = dev.ProductLabel
			labels["karpenter.k8s.aws/instance-accelerator-count"] = strconv.Itoa(g.Accelerators)
			labels["karpenter.k8s.aws/instance-accelerator-manufacturer"] = "aws"
		}
	case g.Cloud == CloudGCP:
		labels[LabelGKENodePool] = g.InstanceType + "-" + labels[catalog.LabelCapacityType]
		labels["cloud.google.com/machine-family"] = strings.SplitN(g.InstanceType, "-", 2)[0]
		if card, ok := nvidiaCards[dev.Model]; ok && card.GKE != "" {
			labels[catalog.LabelGKEAccelerator] = card.GKE
		}
		if g.Spot {
			labels[catalog.LabelGKESpot] = "true"
		}
	default:
		// Karpenter does not run on-premises.
		delete(labels, catalog.LabelCapacityType)
	}
}
