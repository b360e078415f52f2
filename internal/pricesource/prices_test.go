package pricesource

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// sample is one OpenCost series: a node label (plus extra label pairs) and a value.
func sample(node string, v float64, extra ...string) *model.Sample {
	m := model.Metric{"instance": "opencost:9003", "job": "opencost"}
	if node != "" {
		m["node"] = model.LabelValue(node)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[model.LabelName(extra[i])] = model.LabelValue(extra[i+1])
	}
	return &model.Sample{Metric: m, Value: model.SampleValue(v)}
}

func vec(s ...*model.Sample) model.Vector { return model.Vector(s) }

func TestCompute(t *testing.T) {
	cases := []struct {
		name        string
		series      Series
		nodes       map[string]NodeResources
		want        []NodePrice
		wantSkipped []Skipped
	}{
		{
			name:   "total only",
			series: Series{Total: vec(sample("p4d-1", 32.7726))},
			want:   []NodePrice{{Node: "p4d-1", USDPerHour: 32.7726, Source: SourceOpenCostTotal}},
		},
		{
			name: "total wins over components",
			series: Series{Total: vec(sample("g5-1", 10)), GPU: vec(sample("g5-1", 2)), CPU: vec(sample("g5-1", 0.05)),
				RAM: vec(sample("g5-1", 0.01)), GPUCount: vec(sample("g5-1", 1))},
			nodes: map[string]NodeResources{"g5-1": {GPUs: 1, VCPUs: 8, MemoryGiB: 32}},
			want:  []NodePrice{{Node: "g5-1", USDPerHour: 10, Source: SourceOpenCostTotal}},
		},
		{
			name: "components with node_gpu_count, which beats the allocatable count",
			series: Series{GPU: vec(sample("h100-1", 2.5)), CPU: vec(sample("h100-1", 0.04)), RAM: vec(sample("h100-1", 0.005)),
				GPUCount: vec(sample("h100-1", 8))},
			// One GPU unhealthy: allocatable says 7, OpenCost counts 8.
			nodes: map[string]NodeResources{"h100-1": {GPUs: 7, VCPUs: 96, MemoryGiB: 1152}},
			// 2.5 × 8 + 0.04 × 96 + 0.005 × 1152 = 20 + 3.84 + 5.76 = 29.6
			want: []NodePrice{{Node: "h100-1", USDPerHour: 29.6, Source: SourceOpenCostComponents}},
		},
		{
			name:   "components with counts from the Node's allocatable",
			series: Series{GPU: vec(sample("a10-1", 1.2)), CPU: vec(sample("a10-1", 0.03)), RAM: vec(sample("a10-1", 0.004))},
			nodes:  map[string]NodeResources{"a10-1": {GPUs: 4, VCPUs: 48, MemoryGiB: 384}},
			// 1.2 × 4 + 0.03 × 48 + 0.004 × 384 = 4.8 + 1.44 + 1.536 = 7.776
			want: []NodePrice{{Node: "a10-1", USDPerHour: 7.776, Source: SourceOpenCostComponents}},
		},
		{
			name:   "CPU-only node needs no GPU cost series",
			series: Series{CPU: vec(sample("cpu-1", 0.0316)), RAM: vec(sample("cpu-1", 0.0042))},
			nodes:  map[string]NodeResources{"cpu-1": {VCPUs: 8, MemoryGiB: 32}},
			// 0.0316 × 8 + 0.0042 × 32 = 0.2528 + 0.1344 = 0.3872
			want: []NodePrice{{Node: "cpu-1", USDPerHour: 0.3872, Source: SourceOpenCostComponents}},
		},
		{
			name: "two replicas of one node: the larger value of each metric",
			series: Series{
				Total: vec(sample("n1", 3.0, "instance", "opencost-a:9003"), sample("n1", 3.2, "instance", "opencost-b:9003")),
				GPU:   vec(sample("n2", 1.0, "job", "opencost"), sample("n2", 1.1, "job", "opencost-dup")),
				CPU:   vec(sample("n2", 0.02, "job", "opencost"), sample("n2", 0.01, "job", "opencost-dup")),
				RAM:   vec(sample("n2", 0.003, "job", "opencost"), sample("n2", 0.003, "job", "opencost-dup")),
			},
			nodes: map[string]NodeResources{"n2": {GPUs: 2, VCPUs: 16, MemoryGiB: 64}},
			want: []NodePrice{
				{Node: "n1", USDPerHour: 3.2, Source: SourceOpenCostTotal},
				// 1.1 × 2 + 0.02 × 16 + 0.003 × 64 = 2.2 + 0.32 + 0.192 = 2.712
				{Node: "n2", USDPerHour: 2.712, Source: SourceOpenCostComponents},
			},
		},
		{
			name:   "renamed node label: exported_node is OpenCost's",
			series: Series{Total: vec(sample("ip-10-0-0-9", 4.5, "exported_node", "gpu-7"))},
			want:   []NodePrice{{Node: "gpu-7", USDPerHour: 4.5, Source: SourceOpenCostTotal}},
		},
		{
			name: "missing counts and missing components skip the node rather than underprice it",
			series: Series{
				CPU: vec(sample("gone", 0.05), sample("gpu-no-gpu-cost", 0.05), sample("no-ram", 0.05)),
				RAM: vec(sample("gone", 0.01), sample("gpu-no-gpu-cost", 0.01)),
			},
			nodes: map[string]NodeResources{"gpu-no-gpu-cost": {GPUs: 8, VCPUs: 96, MemoryGiB: 1152}, "no-ram": {VCPUs: 4, MemoryGiB: 16}},
			wantSkipped: []Skipped{
				{Node: "gone", Reason: "no node_total_hourly_cost and no Node object to count its vCPUs and memory"},
				{Node: "gpu-no-gpu-cost", Reason: "no node_total_hourly_cost, and no node_gpu_hourly_cost for its 8 GPUs"},
				{Node: "no-ram", Reason: "no node_total_hourly_cost, and node_cpu_hourly_cost or node_ram_hourly_cost is missing"},
			},
		},
		{
			name: "series without a node, NaN and negative values are ignored",
			series: Series{Total: vec(sample("", 99), sample("nan", math.NaN()), sample("neg", -1), sample("inf", math.Inf(1)),
				sample("ok", 0))},
			// A free node (on-premises, fully amortised) is still a price.
			want: []NodePrice{{Node: "ok", USDPerHour: 0, Source: SourceOpenCostTotal}},
		},
		{
			name:   "sorted by node name",
			series: Series{Total: vec(sample("b", 2), sample("c", 3), sample("a", 1))},
			want: []NodePrice{{Node: "a", USDPerHour: 1, Source: SourceOpenCostTotal}, {Node: "b", USDPerHour: 2, Source: SourceOpenCostTotal},
				{Node: "c", USDPerHour: 3, Source: SourceOpenCostTotal}},
		},
		{
			name:   "no series, no rows",
			series: Series{},
			nodes:  map[string]NodeResources{"idle": {VCPUs: 4}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, skipped := Compute(tc.series, tc.nodes)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateApprox(0, 1e-12), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("prices (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantSkipped, skipped, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCSV(t *testing.T) {
	got := CSV([]NodePrice{
		{Node: "a10-1", USDPerHour: 7.776000000000001, Source: SourceOpenCostComponents}, // float noise is rounded away
		{Node: "p4d-1", USDPerHour: 32.7726, Source: SourceOpenCostTotal},
		{Node: "tiny", USDPerHour: 0.0000004, Source: SourceOpenCostTotal}, // below a millionth: 0
	})
	want := "node,usd_per_hour,source\na10-1,7.776,opencost:components\np4d-1,32.7726,opencost:total\ntiny,0,opencost:total\n"
	if got != want {
		t.Errorf("CSV:\n%s\nwant:\n%s", got, want)
	}
	if got := CSV(nil); got != CSVHeader+"\n" {
		t.Errorf("CSV(nil) = %q, want the header alone", got)
	}
}

func TestResourcesOf(t *testing.T) {
	n := &corev1.Node{Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("95500m"),
		corev1.ResourceMemory: resource.MustParse("1152Gi"),
		"nvidia.com/gpu":      resource.MustParse("8"),
		"example.com/widget":  resource.MustParse("3"), // not an accelerator
	}}}
	want := NodeResources{GPUs: 8, VCPUs: 95.5, MemoryGiB: 1152}
	if got := resourcesOf(n); got != want {
		t.Errorf("resourcesOf = %+v, want %+v", got, want)
	}
}
