// Package pricesource turns a cost exporter's Prometheus series into per-node hourly prices and
// publishes them in a ConfigMap beside the catalog's, which the catalog layer reads as the "price
// source" tier (below node annotations and the catalog ConfigMap's prices.csv, above the embedded
// tables). OpenCost is the one source so far.
//
// What OpenCost exports, as learned from its metrics reference (opencost.io/docs/integrations/metrics,
// and the Kubecost "user metrics" page it descends from) and from the help texts of the gauges its cost model registers, found
// with the search tool:
//   - node_total_hourly_cost: the whole node's cost per hour;
//   - node_gpu_hourly_cost: cost per hour of ONE GPU of the node ("hourly cost for each gpu on this
//     node"), so a node's GPU part is this times its GPU count; OpenCost's own GPU pricing has been
//     confused about this before (opencost/opencost#2523, #2657), which is why we never multiply a
//     total and only ever multiply the per-GPU gauge;
//   - node_cpu_hourly_cost: cost per hour of one vCPU; node_ram_hourly_cost: of one GiB of memory;
//   - node_gpu_count: the node's GPU count, a gauge of its own; the cost gauges carry no count labels.
//
// Every one of these is labelled instance, node, instance_type, region and provider_id (arch too in
// recent versions). OpenCost's documented scrape job sets honor_labels: true; a Prometheus that does not
// honour labels and whose target has a node label of its own renames OpenCost's to exported_node, which
// is then the priced node.
package pricesource

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
)

// OpenCost's metric names (see the package comment for their meaning).
const (
	MetricNodeTotalHourlyCost = "node_total_hourly_cost"
	MetricNodeGPUHourlyCost   = "node_gpu_hourly_cost"
	MetricNodeCPUHourlyCost   = "node_cpu_hourly_cost"
	MetricNodeRAMHourlyCost   = "node_ram_hourly_cost"
	MetricNodeGPUCount        = "node_gpu_count"
)

// Row sources: which of OpenCost's series priced a node.
const (
	SourceOpenCostTotal      = "opencost:total"
	SourceOpenCostComponents = "opencost:components"
)

// Series are the instant vectors of one poll, one per OpenCost metric; a metric with no series is an
// empty (or nil) vector.
type Series struct {
	Total, GPU, CPU, RAM, GPUCount model.Vector
}

// NodeResources are what a node's allocatable gives for pricing it by components: accelerators
// (every accelerator resource the catalog knows), vCPUs and GiB of memory.
type NodeResources struct {
	GPUs, VCPUs, MemoryGiB float64
}

// NodePrice is one row of node-prices.csv.
type NodePrice struct {
	Node       string
	USDPerHour float64
	Source     string // SourceOpenCostTotal or SourceOpenCostComponents
}

// Skipped is a node that has OpenCost series but could not be priced, with the reason.
type Skipped struct {
	Node   string
	Reason string
}

// Compute prices every node that has OpenCost series: node_total_hourly_cost when present, else
// node_gpu_hourly_cost × GPUs + node_cpu_hourly_cost × vCPUs + node_ram_hourly_cost × GiB, with GPUs
// from node_gpu_count when exported and from the Node's allocatable otherwise, and vCPUs and GiB
// from the Node's allocatable (nodes: by node name; OpenCost exports no vCPU or memory count).
// A node whose components cannot all be priced is skipped rather than underpriced. Prices come back
// sorted by node name.
func Compute(s Series, nodes map[string]NodeResources) ([]NodePrice, []Skipped) {
	total, gpu, cpu, ram, gpuCount := perNode(s.Total), perNode(s.GPU), perNode(s.CPU), perNode(s.RAM), perNode(s.GPUCount)
	names := map[string]bool{}
	for _, m := range []map[string]float64{total, gpu, cpu, ram} {
		for n := range m {
			names[n] = true
		}
	}
	var prices []NodePrice
	var skipped []Skipped
	for _, node := range sortedKeys(names) {
		if t, ok := total[node]; ok {
			prices = append(prices, NodePrice{Node: node, USDPerHour: t, Source: SourceOpenCostTotal})
			continue
		}
		usd, reason := componentPrice(node, gpu, cpu, ram, gpuCount, nodes)
		if reason != "" {
			skipped = append(skipped, Skipped{Node: node, Reason: reason})
			continue
		}
		prices = append(prices, NodePrice{Node: node, USDPerHour: usd, Source: SourceOpenCostComponents})
	}
	return prices, skipped
}

// componentPrice prices a node from its per-unit costs, or says why it cannot.
func componentPrice(node string, gpu, cpu, ram, gpuCount map[string]float64, nodes map[string]NodeResources) (float64, string) {
	res, known := nodes[node]
	if !known {
		return 0, "no node_total_hourly_cost and no Node object to count its vCPUs and memory"
	}
	cpuUSD, hasCPU := cpu[node]
	ramUSD, hasRAM := ram[node]
	if !hasCPU || !hasRAM {
		return 0, "no node_total_hourly_cost, and node_cpu_hourly_cost or node_ram_hourly_cost is missing"
	}
	gpus := res.GPUs
	if n, ok := gpuCount[node]; ok {
		gpus = n
	}
	gpuUSD, hasGPU := gpu[node]
	if gpus > 0 && !hasGPU {
		return 0, fmt.Sprintf("no node_total_hourly_cost, and no node_gpu_hourly_cost for its %g GPUs", gpus)
	}
	return gpuUSD*gpus + cpuUSD*res.VCPUs + ramUSD*res.MemoryGiB, ""
}

// perNode gives each node's value of one metric. Several series of one node (OpenCost replicas, or
// one OpenCost scraped by two jobs) are deduplicated by taking the largest value: an instant query
// stamps every sample with the evaluation time, so "the most recent" is not visible without a second
// query, and when two exporters disagree the higher price keeps cost limits on the safe side.
// Series without a node, and values that are not finite non-negative numbers, are ignored.
func perNode(vec model.Vector) map[string]float64 {
	out := map[string]float64{}
	for _, s := range vec {
		node := string(s.Metric["exported_node"])
		if node == "" {
			node = string(s.Metric["node"])
		}
		v := float64(s.Value)
		if node == "" || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			continue
		}
		if old, ok := out[node]; !ok || v > old {
			out[node] = v
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// CSVHeader is node-prices.csv's first line.
const CSVHeader = "node,usd_per_hour,source"

// CSV renders prices as node-prices.csv: the header, then one row per node in the order given
// (Compute sorts by name). Prices are rounded to a millionth of a dollar per hour, far below any
// price's precision, so that float noise never changes the text and causes a write.
func CSV(prices []NodePrice) string {
	var b strings.Builder
	b.WriteString(CSVHeader + "\n")
	for _, p := range prices {
		usd := strconv.FormatFloat(math.Round(p.USDPerHour*1e6)/1e6, 'f', -1, 64)
		// Node names are DNS subdomains and sources are ours: no field needs CSV quoting.
		fmt.Fprintf(&b, "%s,%s,%s\n", p.Node, usd, p.Source)
	}
	return b.String()
}
