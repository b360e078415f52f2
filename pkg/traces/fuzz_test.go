package traces

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadPods feeds one text to both trace readers, as a pod list (ReadPods: openb or DLRM, told
// apart by the header) and as a node list (ReadNodes). Either reader may refuse it, with a message
// naming the file; what it accepts keeps the invariants the simulator and TypicalPodTypes rely on.
func FuzzReadPods(f *testing.F) {
	// A header and the first rows of each embedded trace.
	for _, name := range []string{"openb_pod_list_default.csv", "openb_node_list_gpu_node.csv", "openb_node_list_all_node.csv", "dlrm_fleet.csv"} {
		b, err := embedded.ReadFile("data/" + name)
		if err != nil {
			f.Fatal(err)
		}
		lines := strings.SplitAfter(string(b), "\n")
		f.Add(strings.Join(lines[:min(4, len(lines))], ""))
	}
	// A share pod, an 8-GPU pod and a CPU-only pod of the default trace, then a row of our own with
	// a model list and no times; a DLRM instance list as TestDLRM reads it; and inputs that
	// TestMalformedInput refuses.
	f.Add("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n" +
		"openb-pod-0001,6000,12288,1,460,,LS,Running,427061,12902960,427061\n" +
		"openb-pod-0017,88000,327680,8,1000,,Burstable,Succeeded,9437497,10769854,9437497\n" +
		"openb-pod-0005,20000,65536,0,0,,LS,Running,2759674,12902960,2759676\n" +
		"spec-pod,4000,15258,2,1000,V100M16|V100M32,BE,Running,,nan,\n")
	f.Add("instance_sn,role,app_name,cpu_request,cpu_limit,gpu_request,gpu_limit,rdma_request,rdma_limit,memory_request,memory_limit,disk_request,disk_limit,max_instance_per_node,creation_time,scheduled_time,deletion_time\n" +
		"i0,HN,a,12,12,1,1,25,25,120.0,120.0,640,800,8,,,\n" +
		"i1,CN,a,64,64,0,0,0,0,320.0,320.0,0,0,1,100.0,100.0,3700.5\n")
	// Figures whose conversion to an integer overflowed into negative ones before the readers
	// refused them.
	f.Add("instance_sn,cpu_request,memory_request,gpu_request,creation_time,deletion_time\ni0,1e300,1,0,,\n")
	f.Add("instance_sn,cpu_request,memory_request,gpu_request,creation_time,deletion_time\ni0,1,1e17,1e19,9.3e18,\n")
	f.Add("name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time,deletion_time\np0,1,1,0,0,0,1e19\n")
	f.Add("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,10,2,500\n")
	f.Add("name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time\np0,1,1,0,0,-5\n")
	f.Add("sn,cpu_milli,memory_mib,gpu,model\nn0,1000,10,2,\n")
	f.Add("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n\"p0,1000,10,0,0\n")

	f.Fuzz(func(t *testing.T, content string) {
		dir := t.TempDir()
		podPath := filepath.Join(dir, "openb_pod_list_default.csv")
		nodePath := filepath.Join(dir, "openb_node_list_gpu_node.csv")
		for _, p := range []string{podPath, nodePath} {
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}

		pods, err := ReadPods(podPath)
		if err != nil {
			checkError(t, err, podPath)
		} else {
			if len(pods) == 0 {
				t.Fatal("ReadPods: no pods and no error")
			}
			for i, p := range pods {
				checkPod(t, i, p)
			}
		}

		nodes, err := ReadNodes(nodePath)
		if err != nil {
			checkError(t, err, nodePath)
		} else {
			if len(nodes) == 0 {
				t.Fatal("ReadNodes: no nodes and no error")
			}
			for i, n := range nodes {
				if n.CPUMilli < 0 || n.MemoryMiB < 0 || n.GPUs < 0 || n.GPUs > 16 {
					t.Fatalf("node %d: %+v: negative resources or more than 16 GPUs", i, n)
				}
				if n.GPUs > 0 && n.Model == "" {
					t.Fatalf("node %d: %+v: GPUs without a model", i, n)
				}
			}
		}
	})
}

// checkError: every refusal says which file it is about, and something more.
func checkError(t *testing.T, err error, path string) {
	t.Helper()
	if msg := err.Error(); !strings.Contains(msg, path) || len(msg) <= len(path)+1 {
		t.Fatalf("error %q does not name the file %s and the problem", msg, path)
	}
}

// checkPod checks what Pod documents: non-negative requests, GPUMilli per device (0 without GPUs,
// 1..1000 for one, exactly 1000 for several), times from the trace start or NoTime.
func checkPod(t *testing.T, i int, p Pod) {
	t.Helper()
	if p.CPUMilli < 0 || p.MemoryMiB < 0 || p.NumGPU < 0 || p.GPUMilli < 0 {
		t.Fatalf("pod %d: %+v: negative resources", i, p)
	}
	switch {
	case p.NumGPU == 0 && p.GPUMilli != 0:
		t.Fatalf("pod %d: %+v: gpu_milli without GPUs", i, p)
	case p.NumGPU == 1 && (p.GPUMilli < 1 || p.GPUMilli > 1000):
		t.Fatalf("pod %d: %+v: one GPU, gpu_milli not in 1..1000", i, p)
	case p.NumGPU > 1 && p.GPUMilli != 1000:
		t.Fatalf("pod %d: %+v: several GPUs, not whole ones", i, p)
	}
	if (p.Created < 0 && p.Created != NoTime) || (p.Deleted < 0 && p.Deleted != NoTime) {
		t.Fatalf("pod %d: %+v: a time before the trace start that is not NoTime", i, p)
	}
}
