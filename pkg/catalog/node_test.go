package catalog

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name string, labels, annotations map[string]string, allocatable map[string]string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
	if allocatable != nil {
		n.Status.Allocatable = corev1.ResourceList{}
		for k, v := range allocatable {
			n.Status.Allocatable[corev1.ResourceName(k)] = resource.MustParse(v)
		}
	}
	return n
}

func TestFactsFromNode(t *testing.T) {
	tests := []struct {
		name string
		node *corev1.Node
		want NodeFacts
	}{
		{
			name: "EKS managed node group spot node",
			node: node("ip-10-0-1-23.ec2.internal", map[string]string{
				LabelInstanceType:     "p4d.24xlarge",
				LabelRegion:           "us-east-1",
				LabelEKSCapacityType:  EKSCapacitySpot,
				LabelNVIDIAGPUProduct: "NVIDIA-A100-SXM4-40GB",
			}, nil, map[string]string{"cpu": "95690m", "memory": "1140Gi", "nvidia.com/gpu": "8", "pods": "110"}),
			want: NodeFacts{
				Name: "ip-10-0-1-23.ec2.internal", InstanceType: "p4d.24xlarge", CapacityType: CapacitySpot,
				Region: "us-east-1", AcceleratorModel: "A100", AcceleratorCount: 8, CPUMilli: 95690, MemoryMiB: 1140 * 1024,
			},
		},
		{
			name: "GKE spot node, green, with a carbon annotation",
			node: node("gke-pool-l4-1", map[string]string{
				LabelInstanceType:   "g2-standard-24",
				LabelRegion:         "us-central1",
				LabelGKESpot:        "true",
				LabelGKEAccelerator: "nvidia-l4",
				LabelGreenEnergy:    "true",
			}, map[string]string{AnnotationCarbonIntensity: " 120.5 "}, map[string]string{"cpu": "23", "memory": "90Gi", "nvidia.com/gpu": "2"}),
			want: NodeFacts{
				Name: "gke-pool-l4-1", InstanceType: "g2-standard-24", CapacityType: CapacitySpot, Region: "us-central1",
				AcceleratorModel: "L4", AcceleratorCount: 2, CPUMilli: 23000, MemoryMiB: 90 * 1024, Green: true, CarbonOverride: 120.5,
			},
		},
		{
			name: "Karpenter Trainium node: model from the instance type, count from the neuron resource",
			node: node("trn", map[string]string{
				LabelInstanceType: "trn1.32xlarge",
				LabelCapacityType: "on-demand",
			}, map[string]string{AnnotationPricePerHour: "20"}, map[string]string{"cpu": "127", "memory": "500Gi", "aws.amazon.com/neuron": "16"}),
			want: NodeFacts{
				Name: "trn", InstanceType: "trn1.32xlarge", CapacityType: CapacityOnDemand, AcceleratorModel: "Trainium",
				AcceleratorCount: 16, CPUMilli: 127000, MemoryMiB: 500 * 1024, PriceOverrideUSDPerHour: 20,
			},
		},
		{
			name: "Karpenter spot node before its device plugin reports: count from the instance table",
			node: node("new", map[string]string{
				LabelInstanceType: "g5.12xlarge",
				LabelCapacityType: "spot",
			}, nil, map[string]string{"cpu": "47", "memory": "180Gi"}),
			want: NodeFacts{
				Name: "new", InstanceType: "g5.12xlarge", CapacityType: CapacitySpot, AcceleratorModel: "A10G",
				AcceleratorCount: 4, CPUMilli: 47000, MemoryMiB: 180 * 1024,
			},
		},
		{
			name: "kwok openb node with the kcloud model label",
			node: node("openb-node-0200", map[string]string{LabelAcceleratorModel: "G2"}, nil,
				map[string]string{"cpu": "96", "memory": "768Gi", "nvidia.com/gpu": "8"}),
			want: NodeFacts{
				Name: "openb-node-0200", CapacityType: CapacityOnDemand, AcceleratorModel: "G2", AcceleratorCount: 8,
				CPUMilli: 96000, MemoryMiB: 786432,
			},
		},
		{
			name: "kcloud model label wins over the vendor label",
			node: node("n", map[string]string{LabelAcceleratorModel: "V100M32", LabelNVIDIAGPUProduct: "Tesla-V100-SXM2-16GB"}, nil,
				map[string]string{"nvidia.com/gpu": "4"}),
			want: NodeFacts{Name: "n", CapacityType: CapacityOnDemand, AcceleratorModel: "V100M32", AcceleratorCount: 4},
		},
		{
			name: "unknown kcloud model is kept as written",
			node: node("n", map[string]string{LabelAcceleratorModel: "X9"}, nil, map[string]string{"nvidia.com/gpu": "2"}),
			want: NodeFacts{Name: "n", CapacityType: CapacityOnDemand, AcceleratorModel: "X9", AcceleratorCount: 2},
		},
		{
			name: "unknown vendor label value is kept when nothing else names the model",
			node: node("n", map[string]string{LabelNVIDIAGPUProduct: "NVIDIA-R100"}, nil, map[string]string{"nvidia.com/gpu": "8"}),
			want: NodeFacts{Name: "n", CapacityType: CapacityOnDemand, AcceleratorModel: "NVIDIA-R100", AcceleratorCount: 8},
		},
		{
			name: "AMD node without labels: three amd.com/gpu models, so the count but no model",
			node: node("mi", nil, nil, map[string]string{"amd.com/gpu": "8"}),
			want: NodeFacts{Name: "mi", CapacityType: CapacityOnDemand, AcceleratorCount: 8},
		},
		{
			name: "Furiosa node without labels: the only furiosa.ai/rngd device",
			node: node("rngd", nil, nil, map[string]string{"furiosa.ai/rngd": "8"}),
			want: NodeFacts{Name: "rngd", CapacityType: CapacityOnDemand, AcceleratorModel: "RNGD", AcceleratorCount: 8},
		},
		{
			name: "Rebellions node on the generic resource name",
			node: node("rbln", map[string]string{LabelRebellionsNPUProduct: "RBLN-CA12"}, nil, map[string]string{"rebellions.ai/npu": "16"}),
			want: NodeFacts{Name: "rbln", CapacityType: CapacityOnDemand, AcceleratorModel: "ATOM", AcceleratorCount: 16},
		},
		{
			name: "Gaudi node",
			node: node("gaudi", map[string]string{LabelGaudiDeviceType: "GAUDI3"}, nil, map[string]string{"habana.ai/gaudi": "8"}),
			want: NodeFacts{Name: "gaudi", CapacityType: CapacityOnDemand, AcceleratorModel: "Gaudi3", AcceleratorCount: 8},
		},
		{
			name: "CPU-only node with beta labels, capacity instead of allocatable",
			node: func() *corev1.Node {
				n := node("cpu", map[string]string{LabelInstanceTypeBeta: "m5.large", LabelRegionBeta: "eu-west-1", LabelGreenEnergy: "false"}, nil, nil)
				n.Status.Capacity = corev1.ResourceList{"cpu": resource.MustParse("2"), "memory": resource.MustParse("8Gi")}
				return n
			}(),
			want: NodeFacts{Name: "cpu", InstanceType: "m5.large", Region: "eu-west-1", CapacityType: CapacityOnDemand, CPUMilli: 2000, MemoryMiB: 8192},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FactsFromNode(tt.node)
			if err != nil {
				t.Fatalf("FactsFromNode: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FactsFromNode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFactsFromNodeMalformedAnnotation(t *testing.T) {
	tests := []struct {
		name, key, value string
	}{
		{"price not a number", AnnotationPricePerHour, "$3.50"},
		{"price negative", AnnotationPricePerHour, "-1"},
		{"carbon not a number", AnnotationCarbonIntensity, "low"},
		{"carbon infinite", AnnotationCarbonIntensity, "+Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := node("gpu-node-3", map[string]string{LabelAcceleratorModel: "T4"}, map[string]string{tt.key: tt.value}, nil)
			_, err := FactsFromNode(n)
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range []string{"gpu-node-3", tt.key, tt.value} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
	if _, err := FactsFromNode(nil); err == nil {
		t.Error("FactsFromNode(nil): no error")
	}
}

// TestFactsFromNodeFeedPrice checks that facts read from a node price as the node's instance type.
func TestFactsFromNodeFeedPrice(t *testing.T) {
	n := node("eks-spot", map[string]string{LabelInstanceType: "p4d.24xlarge", LabelEKSCapacityType: EKSCapacitySpot}, nil, nil)
	f, err := FactsFromNode(n)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Default().Price(f)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Price{6.289, "instance:aws:p4d.24xlarge:spot"}, p, approx); diff != "" {
		t.Errorf("Price (-want +got):\n%s", diff)
	}
}
