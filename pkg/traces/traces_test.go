package traces

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEmbedded(t *testing.T) {
	pods, err := ReadPods(OpenbDefaultPods)
	if err != nil {
		t.Fatal(err)
	}
	var gpuMilli int64
	share, cpuOnly := 0, 0
	for _, p := range pods {
		switch {
		case p.NumGPU == 0:
			cpuOnly++
		case p.NumGPU == 1 && p.GPUMilli < 1000:
			share++
		}
		gpuMilli += int64(p.NumGPU) * p.GPUMilli
	}
	// Figures from the trace's description in the FGD artifact: 8152 pods, 1088 CPU-only, 3078
	// GPU-sharing, 6087 GPUs requested in total.
	if len(pods) != 8152 || cpuOnly != 1088 || share != 3078 || gpuMilli != 6086800 {
		t.Errorf("default trace: %d pods, %d cpu-only, %d sharing, %d milli-GPU", len(pods), cpuOnly, share, gpuMilli)
	}
	for _, tc := range []struct {
		path         string
		nodes, gpus  int
		firstModel   string
		firstCPUMill int64
	}{
		{OpenbGPUNodes, 1213, 6212, "P100", 64000},
		{OpenbAllNodes, 1523, 6212, "", 0},
		{DLRMFleet, 2640, 3520, "A10", 96000},
	} {
		nodes, err := ReadNodes(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		g := 0
		for _, n := range nodes {
			g += n.GPUs
		}
		if len(nodes) != tc.nodes || g != tc.gpus {
			t.Errorf("%s: %d nodes, %d GPUs; want %d, %d", tc.path, len(nodes), g, tc.nodes, tc.gpus)
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMalformedInput(t *testing.T) {
	tests := []struct {
		name, content string
		read          func(string) error
		want          string
	}{
		{"bad cpu", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,10,0,0\np1,lots,10,0,0\n",
			func(p string) error { _, err := ReadPods(p); return err }, "pods.csv:3: column cpu_milli: want a non-negative integer, got \"lots\""},
		{"share above a whole gpu", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,10,1,1500\n",
			func(p string) error { _, err := ReadPods(p); return err }, "pods.csv:2: column gpu_milli: want 1..1000"},
		{"partial multi-gpu", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,10,2,500\n",
			func(p string) error { _, err := ReadPods(p); return err }, "pods.csv:2: column gpu_milli: a pod with 2 GPUs takes whole GPUs"},
		{"missing column", "name,cpu_milli,num_gpu,gpu_milli\np0,1000,0,0\n",
			func(p string) error { _, err := ReadPods(p); return err }, "pods.csv:1: missing column \"memory_mib\""},
		{"negative time", "name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time\np0,1,1,0,0,-5\n",
			func(p string) error { _, err := ReadPods(p); return err }, "pods.csv:2: column creation_time: want a non-negative number"},
		{"time too large for an int64", "name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time\np0,1,1,0,0,1e19\n",
			func(p string) error { _, err := ReadPods(p); return err }, "pods.csv:2: column creation_time: \"1e19\" is too large"},
		{"dlrm cpu too large for an int64", "instance_sn,cpu_request,memory_request,gpu_request,creation_time,deletion_time\ni0,1e300,1,0,,\n",
			func(p string) error { _, err := ReadPods(p); return err }, "pods.csv:2: column cpu_request: \"1e300\" is too large"},
		{"dlrm gpus too large for an int64", "instance_sn,cpu_request,memory_request,gpu_request,creation_time,deletion_time\ni0,1,1,1e19,,\n",
			func(p string) error { _, err := ReadPods(p); return err }, "pods.csv:2: column gpu_request: \"1e19\" is too large"},
		{"gpu node without model", "sn,cpu_milli,memory_mib,gpu,model\nn0,1000,10,2,\n",
			func(p string) error { _, err := ReadNodes(p); return err }, "pods.csv:2: column model: a node with 2 GPUs needs a model"},
		{"ragged quotes", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n\"p0,1000,10,0,0\n",
			func(p string) error { _, err := ReadPods(p); return err }, "pods.csv:2:"},
		{"empty", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n",
			func(p string) error { _, err := ReadPods(p); return err }, "pods.csv: no pods"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.read(writeFile(t, "pods.csv", tc.content))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDLRM(t *testing.T) {
	p := writeFile(t, "dlrm.csv", "instance_sn,role,app_name,cpu_request,cpu_limit,gpu_request,gpu_limit,rdma_request,rdma_limit,memory_request,memory_limit,disk_request,disk_limit,max_instance_per_node,creation_time,scheduled_time,deletion_time\n"+
		"i0,HN,a,12,12,1,1,25,25,120.0,120.0,640,800,8,,,\n"+
		"i1,CN,a,64,64,0,0,0,0,320.0,320.0,0,0,1,100.0,100.0,3700.5\n")
	pods, err := ReadPods(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Pod{
		{Name: "i0", CPUMilli: 12000, MemoryMiB: 122880, NumGPU: 1, GPUMilli: 1000, Created: NoTime, Deleted: NoTime},
		{Name: "i1", CPUMilli: 64000, MemoryMiB: 327680, Created: 100, Deleted: 3700},
	}
	if diff := cmp.Diff(want, pods); diff != "" {
		t.Errorf("DLRM pods (-want +got):\n%s", diff)
	}
}

func TestScaleFleet(t *testing.T) {
	nodes := []Node{{Name: "a", GPUs: 8, Model: "G2"}, {Name: "b", GPUs: 8, Model: "G2"}, {Name: "c", GPUs: 2, Model: "T4"}, {Name: "d", GPUs: 2, Model: "T4"}}
	if got := ScaleFleet(nodes, 1); len(got) != 4 {
		t.Errorf("x1: %d nodes", len(got))
	}
	half := ScaleFleet(nodes, 0.5)
	if diff := cmp.Diff([]string{"a", "c"}, names(half)); diff != "" {
		t.Errorf("x0.5 (-want +got):\n%s", diff)
	}
	double := ScaleFleet(nodes, 2)
	if diff := cmp.Diff([]string{"a", "b", "a-1", "b-1", "c", "d", "c-1", "d-1"}, names(double)); diff != "" {
		t.Errorf("x2 (-want +got):\n%s", diff)
	}
}

func names(nodes []Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}
