package simulator

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/traces"
)

// published reads the FGD artifact's mean GPU allocation % at 100% arrival for one workload.
func published(t *testing.T, workload string) map[string]float64 {
	t.Helper()
	f, err := os.Open("testdata/fgd_summary_by_workload_policy.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read only: closing has nothing to report
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := -1
	for i, h := range rows[0] {
		if h == "gpu_alloc_pct_at_arrive100_mean" {
			col = i
		}
	}
	names := map[string]string{"01-Random": "random", "02-DotProd": "dot-product", "03-GpuClustering": "gpu-clustering",
		"04-GpuPacking": "gpu-packing", "05-BestFit": "best-fit", "06-FGD": "fgd"}
	out := map[string]float64{}
	for _, r := range rows[1:] {
		if r[0] == workload {
			v, err := strconv.ParseFloat(r[col], 64)
			if err != nil {
				t.Fatal(err)
			}
			out[names[r[1]]] = v
		}
	}
	if len(out) != 6 {
		t.Fatalf("%s: %d published policies", workload, len(out))
	}
	return out
}

func runDefault(t *testing.T, policies []string, seeds int) map[string]Result {
	t.Helper()
	nodes, err := traces.ReadNodes(traces.OpenbGPUNodes)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := traces.ReadPods(traces.OpenbDefaultPods)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(Config{Nodes: nodes, Pods: pods, Mode: ModeInflate, Policies: policies, Seeds: seeds,
		Economics: CatalogEconomics(catalog.Default()), Weights: model.DefaultWeights})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Result{}
	for _, r := range res {
		out[r.Policy] = r
	}
	return out
}

// TestFidelityToFGDPaper reproduces the published mean GPU allocation at 100% arrival of the six
// policies of the FGD paper on the openb default trace, ten seeds each, within one percentage point;
// and checks the product's policy against FGD and kube-scheduler's default in the same run.
func TestFidelityToFGDPaper(t *testing.T) {
	want := published(t, "openb_pod_list_default")
	got := runDefault(t, []string{"random", "dot-product", "gpu-clustering", "gpu-packing", "best-fit", "fgd", "kcloud", "least-allocated"}, 10)
	for policy, p := range want {
		r := got[policy]
		t.Logf("%-15s published %.2f  ours %.2f ± %.2f  (cost %.0f USD/h, %.0f kW while filling)", policy, p, r.AllocPct100, r.AllocStd100, r.CostMean, r.PowerKWMean)
		if math.Abs(r.AllocPct100-p) > 1.0 {
			t.Errorf("%s: GPU allocation at 100%% arrival %.2f, published %.2f: more than 1 point apart", policy, r.AllocPct100, p)
		}
	}
	k, fgd, la := got["kcloud"], got["fgd"], got["least-allocated"]
	t.Logf("kcloud: alloc %.2f, cost %.0f (fgd %.0f, least-allocated %.0f), power %.0f kW (fgd %.0f, least-allocated %.0f)",
		k.AllocPct100, k.CostMean, fgd.CostMean, la.CostMean, k.PowerKWMean, fgd.PowerKWMean, la.PowerKWMean)
	if k.AllocPct100 < fgd.AllocPct100 {
		t.Errorf("kcloud allocates %.2f%% at 100%% arrival, below FGD's %.2f%%", k.AllocPct100, fgd.AllocPct100)
	}
	if k.CostMean >= fgd.CostMean || k.PowerKWMean >= fgd.PowerKWMean {
		t.Errorf("kcloud should cost and draw less than FGD while filling: cost %.0f vs %.0f, power %.0f vs %.0f", k.CostMean, fgd.CostMean, k.PowerKWMean, fgd.PowerKWMean)
	}
	if k.CostMean > 0.7*la.CostMean {
		t.Errorf("kcloud cost %.0f USD/h is not 30%% below least-allocated's %.0f", k.CostMean, la.CostMean)
	}
}

func TestDeterministicPerSeed(t *testing.T) {
	a := runDefault(t, []string{"fgd", "kcloud"}, 2)
	b := runDefault(t, []string{"fgd", "kcloud"}, 2)
	for p := range a {
		a[p], b[p] = zeroWall(a[p]), zeroWall(b[p])
		if diff := cmp.Diff(a[p], b[p], cmpFloat); diff != "" {
			t.Errorf("%s differs between identical runs (-first +second):\n%s", p, diff)
		}
	}
}

func zeroWall(r Result) Result { r.WallSeconds = 0; return r }

func TestUnknownNames(t *testing.T) {
	_, err := NewPolicy("fastest", model.DefaultWeights)
	if err == nil || !strings.Contains(err.Error(), `unknown policy "fastest"; known policies: random, least-allocated, most-allocated, best-fit, dot-product, gpu-packing, gpu-clustering, fgd, kcloud`) {
		t.Errorf("unknown policy: %v", err)
	}
	_, err = Run(Config{Mode: "rewind", Policies: []string{"fgd"}})
	if err == nil || !strings.Contains(err.Error(), `unknown mode "rewind"; known modes: inflate, replay`) {
		t.Errorf("unknown mode: %v", err)
	}
	_, err = Run(Config{Mode: ModeInflate, Policies: []string{"fgd"}, Nodes: []traces.Node{{Name: "n", GPUs: 1, Model: "X9000"}},
		Economics: CatalogEconomics(catalog.Default())})
	if err == nil || !strings.Contains(err.Error(), "node n") || !strings.Contains(err.Error(), "G2") {
		t.Errorf("unknown model: want an error naming the node and listing known models, got %v", err)
	}
}

// flat economics make replay's integrals easy to check by hand.
func flatEconomics(traces.Node) (model.Economics, error) {
	return model.Economics{PricePerHour: 2, HostIdleWatts: 100, HostMaxWatts: 100, Device: model.PowerCurve{{Utilization: 0, Watts: 0}}, CarbonIntensity: 500}, nil
}

func TestReplayAccounting(t *testing.T) {
	nodes := []traces.Node{{Name: "a", CPUMilli: 4000, MemoryMiB: 1024, GPUs: 1, Model: "T4"}, {Name: "b", CPUMilli: 4000, MemoryMiB: 1024, GPUs: 1, Model: "T4"}}
	h := int64(3600)
	pods := []traces.Pod{
		{Name: "p0", CPUMilli: 1000, NumGPU: 1, GPUMilli: 1000, Created: 0, Deleted: 2 * h},     // runs 0-2h
		{Name: "p1", CPUMilli: 1000, NumGPU: 1, GPUMilli: 1000, Created: 0, Deleted: 1 * h},     // runs 0-1h
		{Name: "p2", CPUMilli: 1000, NumGPU: 1, GPUMilli: 1000, Created: h / 2, Deleted: 3 * h}, // waits until 1h, runs 2.5h: 1h-3.5h
		{Name: "p3", CPUMilli: 1000, NumGPU: 1, GPUMilli: 1000, Created: h / 2, Deleted: h},     // waits, its time passes: never runs
	}
	res, err := Run(Config{Nodes: nodes, Pods: pods, Mode: ModeReplay, Policies: []string{"best-fit"}, Seeds: 1, Economics: flatEconomics})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	// Node-hours: p0 2h + p1 1h + p2 2.5h, one pod per node at a time.
	want := Result{Policy: "best-fit", Mode: ModeReplay, Seeds: 1, Pods: 4, Scheduled: 3, Waited: 2, NeverRan: 1,
		NodeHours: 5.5, CostUSD: 11, EnergyKWh: 0.55, CarbonKg: 0.275}
	got := r
	got.WallSeconds = 0
	got.AllocPct100, got.AllocPct130, got.AllocStd100, got.FragPct100, got.CostMean, got.PowerKWMean = 0, 0, 0, 0, 0, 0
	if diff := cmp.Diff(want, got, cmpFloat); diff != "" {
		t.Errorf("replay (-want +got):\n%s", diff)
	}
}

var cmpFloat = cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 || (math.IsNaN(a) && math.IsNaN(b)) })

func TestOutputs(t *testing.T) {
	res := runDefault(t, []string{"random", "kcloud"}, 1)
	results := []Result{res["random"], res["kcloud"]}
	var b bytes.Buffer
	if err := WriteCSV(&b, results); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(CSVHeader, rows[0]); diff != "" || len(rows) != 3 {
		t.Errorf("csv header (-want +got):\n%s\nrows: %d", diff, len(rows))
	}
	if rows[1][10] != "" || rows[1][5] == "" {
		t.Errorf("inflate fills gpu_alloc_pct_100 and leaves node_hours empty: %v", rows[1])
	}
	b.Reset()
	if err := WriteJSON(&b, results); err != nil {
		t.Fatal(err)
	}
	var decoded []map[string]any
	if err := json.Unmarshal(b.Bytes(), &decoded); err != nil || len(decoded) != 2 || decoded[0]["node_hours"] != nil {
		t.Errorf("json: %v %v", err, decoded)
	}
	b.Reset()
	if err := WriteHTMLReport(&b, "t", "s", results); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"<svg", "polyline", "kcloud", "GPU allocation as the workload arrives"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "http://") && !strings.Contains(page, "http://www.w3.org/2000/svg") {
		t.Errorf("report must be self-contained")
	}
}

// BenchmarkSchedulingPass measures one full inflate run of each policy on the openb default trace;
// the ns/op ratio of kcloud to fgd is the product's overhead over the paper's policy.
func BenchmarkSchedulingPass(b *testing.B) {
	nodes, _ := traces.ReadNodes(traces.OpenbGPUNodes)
	pods, _ := traces.ReadPods(traces.OpenbDefaultPods)
	for _, p := range []string{"fgd", "kcloud"} {
		b.Run(p, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := Run(Config{Nodes: nodes, Pods: pods, Mode: ModeInflate, Policies: []string{p}, Seeds: 1, Workers: 1,
					Economics: CatalogEconomics(catalog.Default()), Weights: model.DefaultWeights}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCheapestFillBound shows how much any policy could save on the openb fleet, and checks that no
// policy beats the bound (which would mean the cost accounting is wrong).
func TestCheapestFillBound(t *testing.T) {
	nodes, err := traces.ReadNodes(traces.OpenbGPUNodes)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(nodes, CatalogEconomics(catalog.Default()))
	if err != nil {
		t.Fatal(err)
	}
	bound := CheapestFillCost(c)
	perModel := map[string][2]float64{}
	for i, n := range c.Nodes {
		pm := perModel[n.Model]
		perModel[n.Model] = [2]float64{pm[0] + c.Econ[i].PricePerHour, pm[1] + float64(n.Devices)}
	}
	for m, v := range perModel {
		t.Logf("%-8s %.2f USD per GPU-hour (node price incl. host, over %.0f GPUs)", m, v[0]/v[1], v[1])
	}
	got := runDefault(t, []string{"fgd", "kcloud"}, 2)
	t.Logf("cheapest-fill bound %.0f USD/h; fgd %.0f (bound is %.1f%% below); kcloud %.0f", bound, got["fgd"].CostMean,
		100*(1-bound/got["fgd"].CostMean), got["kcloud"].CostMean)
	for p, r := range got {
		if r.CostMean < bound {
			t.Errorf("%s costs %.0f USD/h, below the lower bound %.0f", p, r.CostMean, bound)
		}
	}
}

// PlaceInOrder records where each pod went: shares pack on one device of one node, a whole GPU
// takes the other node, and a pod no node has room for is placed nowhere.
func TestPlaceInOrderPlacements(t *testing.T) {
	nodes := []traces.Node{{Name: "a", CPUMilli: 8000, MemoryMiB: 8192, GPUs: 1, Model: "T4"}, {Name: "b", CPUMilli: 8000, MemoryMiB: 8192, GPUs: 1, Model: "T4"}}
	pods := []traces.Pod{
		{Name: "s0", CPUMilli: 1000, MemoryMiB: 1024, NumGPU: 1, GPUMilli: 500},
		{Name: "s1", CPUMilli: 1000, MemoryMiB: 1024, NumGPU: 1, GPUMilli: 500},
		{Name: "w0", CPUMilli: 1000, MemoryMiB: 1024, NumGPU: 1, GPUMilli: 1000},
		{Name: "w1", CPUMilli: 1000, MemoryMiB: 1024, NumGPU: 1, GPUMilli: 1000},
	}
	got, err := PlaceInOrder(nodes, flatEconomics, pods, pods, "kcloud", model.DefaultWeights, FirstSeed)
	if err != nil {
		t.Fatal(err)
	}
	share := got.Placements[0].Node
	other := 1 - share
	want := []Placement{{Node: share, Device: 0}, {Node: share, Device: 0}, {Node: other, Device: -1}, {Node: -1, Device: -1}}
	if diff := cmp.Diff(want, got.Placements); diff != "" {
		t.Errorf("placements (-want +got):\n%s", diff)
	}
	if got.Scheduled != 3 || got.AllocatedGPU != 2000 {
		t.Errorf("scheduled %d, allocated %d milli-GPUs; want 3 and 2000", got.Scheduled, got.AllocatedGPU)
	}
}
