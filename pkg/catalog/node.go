package catalog

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Labels and annotations of kcloud.
const (
	// LabelAcceleratorModel names a node's accelerator model explicitly (any name Device accepts). It
	// wins over every vendor label.
	LabelAcceleratorModel = "kcloud.io/accelerator-model"
	// LabelGreenEnergy set to "true" marks a node as running on green energy.
	LabelGreenEnergy = "kcloud.io/green-energy"
	// AnnotationPricePerHour overrides a node's price, in USD per hour (a non-negative decimal number;
	// 0 means not set).
	AnnotationPricePerHour = "kcloud.io/price-per-hour"
	// AnnotationCarbonIntensity overrides a node's carbon intensity, in gCO2/kWh (a non-negative
	// decimal number; 0 means not set).
	AnnotationCarbonIntensity = "kcloud.io/carbon-intensity"
	// AnnotationAcceleratorMaxWatts and AnnotationAcceleratorIdleWatts give the draw of one of the
	// node's accelerators at full load and at idle, in watts (idle optional: from the mean curve
	// shape). They power a model the catalog does not list, and win over the catalog's figure.
	AnnotationAcceleratorMaxWatts  = "kcloud.io/accelerator-max-watts"
	AnnotationAcceleratorIdleWatts = "kcloud.io/accelerator-idle-watts"
)

// Well-known labels of Kubernetes and of the clouds that FactsFromNode reads.
const (
	LabelInstanceType     = corev1.LabelInstanceTypeStable // node.kubernetes.io/instance-type
	LabelInstanceTypeBeta = corev1.LabelInstanceType       // beta.kubernetes.io/instance-type
	LabelRegion           = corev1.LabelTopologyRegion     // topology.kubernetes.io/region
	LabelRegionBeta       = corev1.LabelFailureDomainBetaRegion

	// LabelCapacityType is Karpenter's capacity label: "spot" or "on-demand" (AWS Karpenter also has
	// "reserved", priced here as on-demand).
	LabelCapacityType = "karpenter.sh/capacity-type"
	// LabelEKSCapacityType is set by EKS managed node groups: "SPOT" or "ON_DEMAND".
	LabelEKSCapacityType = "eks.amazonaws.com/capacityType"
	// LabelGKESpot is "true" on GKE Spot VMs; LabelGKEPreemptible on the older preemptible VMs.
	LabelGKESpot        = "cloud.google.com/gke-spot"
	LabelGKEPreemptible = "cloud.google.com/gke-preemptible"
	// LabelGKEAccelerator is GKE's accelerator label, e.g. "nvidia-tesla-t4", "nvidia-h100-80gb".
	LabelGKEAccelerator = "cloud.google.com/gke-accelerator"
	// LabelGKETPUAccelerator is GKE's TPU label, e.g. "tpu-v5-lite-podslice" (v5e), "tpu-v5p-slice",
	// "tpu-v6e-slice".
	LabelGKETPUAccelerator = "cloud.google.com/gke-tpu-accelerator"
	// Karpenter's AWS labels: instance-gpu-name is e.g. "a100", "t4", "h200", "b200", "l40s";
	// instance-accelerator-name is "inferentia", "inferentia2", "trainium" or "trainium2".
	LabelKarpenterGPUName         = "karpenter.k8s.aws/instance-gpu-name"
	LabelKarpenterAcceleratorName = "karpenter.k8s.aws/instance-accelerator-name"
)

// Product labels set by the vendors' device plugins / feature discovery.
const (
	// LabelNVIDIAGPUProduct is set by NVIDIA GPU feature discovery, e.g. "NVIDIA-A100-SXM4-80GB", "Tesla-T4".
	LabelNVIDIAGPUProduct = "nvidia.com/gpu.product"
	// LabelAMDGPUProductName is set by the AMD GPU node labeller, e.g. "AMD_Instinct_MI300X_OAM".
	LabelAMDGPUProductName = "amd.com/gpu.product-name"
	// LabelGaudiDeviceType is set by Intel Gaudi feature discovery, e.g. "GAUDI2", "GAUDI3".
	LabelGaudiDeviceType = "habana.ai/device.type"
	// LabelRebellionsNPUProduct is set by RBLN NPU feature discovery, e.g. "RBLN-CA12".
	LabelRebellionsNPUProduct = "rebellions.ai/npu.product"
	// LabelFuriosaNPUProduct is set by Furiosa feature discovery, e.g. "rngd".
	LabelFuriosaNPUProduct = "furiosa.ai/npu.product"
)

// Values of the capacity labels.
const (
	EKSCapacitySpot     = "SPOT"
	EKSCapacityOnDemand = "ON_DEMAND"
)

// Extended resource names of the catalog's devices.
const (
	ResourceNVIDIAGPU      = "nvidia.com/gpu"
	ResourceAMDGPU         = "amd.com/gpu"
	ResourceGaudi          = "habana.ai/gaudi"
	ResourceNeuron         = "aws.amazon.com/neuron"
	ResourceRebellionsATOM = "rebellions.ai/ATOM"
	ResourceFuriosaRNGD    = "furiosa.ai/rngd"
	// ResourceGoogleTPU is the resource GKE's TPU device plugin advertises.
	ResourceGoogleTPU = "google.com/tpu"
)

// ProductLabelKeys returns the labels that name a node's accelerator model, in the order
// FactsFromNode reads them.
func ProductLabelKeys() []string {
	return []string{
		LabelAcceleratorModel,
		LabelNVIDIAGPUProduct, LabelAMDGPUProductName, LabelGaudiDeviceType,
		LabelRebellionsNPUProduct, LabelFuriosaNPUProduct,
		LabelGKEAccelerator, LabelGKETPUAccelerator, LabelKarpenterGPUName, LabelKarpenterAcceleratorName,
	}
}

// FactsFromNode reads a Kubernetes node, resolving names with the Default catalog:
//   - instance type, region: node.kubernetes.io/instance-type, topology.kubernetes.io/region (or
//     their beta spellings);
//   - capacity: spot when karpenter.sh/capacity-type=spot, eks.amazonaws.com/capacityType=SPOT,
//     cloud.google.com/gke-spot=true or cloud.google.com/gke-preemptible=true, else on-demand;
//   - accelerator model: kcloud.io/accelerator-model if set (kept as written when it is not a known
//     name, so that pricing fails loudly), else the first of the vendor and cloud labels of
//     ProductLabelKeys that names a known model, else the model of a known instance type, else the
//     first such label's raw value;
//   - accelerator count: status.allocatable (else status.capacity) of the model's extended resource;
//     with no known model, the first catalog resource with a non-zero count (which also gives the model
//     when only one device uses that resource);
//   - CPU and memory: status.allocatable (else status.capacity);
//   - green: kcloud.io/green-energy=true;
//   - overrides: annotations kcloud.io/price-per-hour, kcloud.io/carbon-intensity,
//     kcloud.io/accelerator-max-watts and kcloud.io/accelerator-idle-watts. A malformed value is an
//     error naming the node, the annotation and the value.
func FactsFromNode(node *corev1.Node) (NodeFacts, error) { return Default().FactsFromNode(node) }

// FactsFromNode reads a Kubernetes node as the package function does, resolving names with c: a
// model that c's ConfigMap added (a devices.csv row) is then known by its name and product label.
func (c *Catalog) FactsFromNode(node *corev1.Node) (NodeFacts, error) {
	if node == nil {
		return NodeFacts{}, fmt.Errorf("reading node facts: nil node")
	}
	labels := node.Labels
	f := NodeFacts{
		Name:         node.Name,
		InstanceType: firstLabel(labels, LabelInstanceType, LabelInstanceTypeBeta),
		Region:       firstLabel(labels, LabelRegion, LabelRegionBeta),
		CapacityType: CapacityOnDemand,
		Green:        strings.EqualFold(strings.TrimSpace(labels[LabelGreenEnergy]), "true"),
	}
	if strings.EqualFold(labels[LabelCapacityType], string(CapacitySpot)) ||
		strings.EqualFold(labels[LabelEKSCapacityType], EKSCapacitySpot) ||
		strings.EqualFold(labels[LabelGKESpot], "true") ||
		strings.EqualFold(labels[LabelGKEPreemptible], "true") {
		f.CapacityType = CapacitySpot
	}

	// Accelerator model.
	known := false
	if v := strings.TrimSpace(labels[LabelAcceleratorModel]); v != "" {
		f.AcceleratorModel = v
		if canon, ok := c.resolve(v); ok {
			f.AcceleratorModel, known = canon, true
		}
	} else {
		raw := ""
		for _, key := range ProductLabelKeys()[1:] {
			v := strings.TrimSpace(labels[key])
			if v == "" {
				continue
			}
			if canon, ok := c.resolve(v); ok {
				f.AcceleratorModel, known = canon, true
				break
			}
			if raw == "" {
				raw = v
			}
		}
		if !known && f.InstanceType != "" {
			if m, _, ok := c.InstanceAccelerator(f.InstanceType); ok {
				f.AcceleratorModel, known = m, true
			}
		}
		if !known {
			f.AcceleratorModel = raw
		}
	}

	// Accelerator count.
	if known {
		res := c.devices[f.AcceleratorModel].Resource
		n, listed := resourceCount(node, res)
		if !listed && f.InstanceType != "" {
			// No device plugin has reported yet: trust the instance table.
			if m, cnt, ok := c.InstanceAccelerator(f.InstanceType); ok && m == f.AcceleratorModel {
				n = int64(cnt)
			}
		}
		f.AcceleratorCount = int(n)
	} else {
		for _, res := range c.Resources() {
			n, _ := resourceCount(node, res)
			if n <= 0 {
				continue
			}
			f.AcceleratorCount = int(n)
			if models := c.resources[res]; len(models) == 1 && f.AcceleratorModel == "" {
				f.AcceleratorModel = models[0]
			}
			break
		}
	}

	// CPU and memory.
	if q, ok := quantity(node, corev1.ResourceCPU); ok {
		f.CPUMilli = q.MilliValue()
	}
	if q, ok := quantity(node, corev1.ResourceMemory); ok {
		f.MemoryMiB = q.Value() / (1 << 20)
	}

	// Overrides.
	var err error
	if f.PriceOverrideUSDPerHour, err = parseAnnotation(node, AnnotationPricePerHour); err != nil {
		return NodeFacts{}, err
	}
	if f.CarbonOverride, err = parseAnnotation(node, AnnotationCarbonIntensity); err != nil {
		return NodeFacts{}, err
	}
	if f.DeviceMaxWatts, err = parseAnnotation(node, AnnotationAcceleratorMaxWatts); err != nil {
		return NodeFacts{}, err
	}
	if f.DeviceIdleWatts, err = parseAnnotation(node, AnnotationAcceleratorIdleWatts); err != nil {
		return NodeFacts{}, err
	}
	if f.DeviceIdleWatts > 0 && f.DeviceIdleWatts >= f.DeviceMaxWatts {
		return NodeFacts{}, fmt.Errorf("node %s: annotation %s: %g W must be below %s (%g W)", node.Name, AnnotationAcceleratorIdleWatts, f.DeviceIdleWatts, AnnotationAcceleratorMaxWatts, f.DeviceMaxWatts)
	}
	return f, nil
}

func firstLabel(labels map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := strings.TrimSpace(labels[k]); v != "" {
			return v
		}
	}
	return ""
}

// quantity returns a resource from status.allocatable, else from status.capacity.
func quantity(node *corev1.Node, name corev1.ResourceName) (resource.Quantity, bool) {
	if q, ok := node.Status.Allocatable[name]; ok {
		return q, true
	}
	if q, ok := node.Status.Capacity[name]; ok {
		return q, true
	}
	return resource.Quantity{}, false
}

// resourceCount sums a catalog resource and the other names of the same device plugin; listed says
// whether the node lists any of them.
func resourceCount(node *corev1.Node, res string) (n int64, listed bool) {
	names := []string{res}
	for alias, r := range resourceAliases {
		if r == res {
			names = append(names, alias)
		}
	}
	for _, name := range names {
		if q, ok := quantity(node, corev1.ResourceName(name)); ok {
			n += q.Value()
			listed = true
		}
	}
	return n, listed
}

func parseAnnotation(node *corev1.Node, key string) (float64, error) {
	raw, ok := node.Annotations[key]
	if !ok {
		return 0, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("node %s: annotation %s: invalid value %q: want a non-negative decimal number", node.Name, key, raw)
	}
	return v, nil
}
