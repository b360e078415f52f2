// Command bench-scheduler measures kcloud-scheduler against the upstream kube-scheduler of the same
// version, like for like, on the production-like fleet (the default profile's nodes, labels and
// DaemonSets, repeated to 1,000 and 5,000 kwok nodes). Four schedulers run side by side, each with
// its own schedulerName, at one CPU priority: upstream with its defaults, upstream scoring every node
// (percentageOfNodesToScore 100), kcloud-scheduler as shipped with the candidate narrowing off, and
// kcloud-scheduler as shipped (config/scheduler). Each gets two rounds of the same pod mix (whole
// GPUs, shares, gangs, CPU only; half of them under WorkloadOptimizers with caps and under an
// enforcing CostPolicy and PowerPolicy), in the order A B C D D C B A. For each it prints pods/s, the
// p50 and p99 of the scheduler's own pod scheduling SLI, the scheduler's CPU seconds per pod, and for
// kcloud each of our extension points' p99 from kcloud_scheduler_plugin_duration_seconds (every call
// of the once-a-cycle points, every call of one cycle in 8 at Filter and Score). Last line:
// throughput_ratio=X plugin_p99_ms=Y ratio_plugins_only=Z nodes=N at the largest size. Run it with
// `make bench-scheduler`.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kcloud.io/optimizer/config"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/install"
)

type options struct {
	binDir, kcloudBin, pprofDir string
	sizes                       []int
	podsPerNode                 float64
	prioritize                  bool
}

func main() {
	var o options
	flag.StringVar(&o.binDir, "bin-dir", "bin/controlplane/current", "control-plane binaries")
	flag.StringVar(&o.kcloudBin, "kcloud-scheduler", "bin/kcloud-scheduler", "kcloud-scheduler binary")
	sizes := flag.String("nodes", "1000,5000", "fleet sizes, comma-separated; the last line reports the last")
	flag.Float64Var(&o.podsPerNode, "pods-per-node", 0.6, "pods per round, per node of the fleet")
	flag.StringVar(&o.pprofDir, "pprof-dir", "", "if set, write a CPU profile of each round's scheduler and each scheduler's final metrics here")
	flag.BoolVar(&o.prioritize, "prioritize", false, "run the control plane, kwok and this load generator at nice 19, below the schedulers (another arrangement, reported beside the default)")
	flag.Parse()
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench-scheduler: --nodes: %q is not a positive number of nodes\n", s)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scheduler:", err)
		os.Exit(1)
	}
}

var start = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, o options) error {
	var last []result
	for _, n := range o.sizes {
		rows, err := benchSize(ctx, o, n)
		if err != nil {
			return fmt.Errorf("%d nodes: %w", n, err)
		}
		printTable(o, n, rows)
		last = rows
	}
	by := map[string]result{}
	for _, r := range last {
		by[r.name] = r
	}
	n := o.sizes[len(o.sizes)-1]
	shipped := by[kcloudShipped]
	fmt.Printf("throughput_ratio=%.2f plugin_p99_ms=%.3f ratio_plugins_only=%.2f nodes=%d\n",
		by[kcloudShipped].podsPerSecond()/by[upstreamDefaults].podsPerSecond(), shipped.worstPoint(),
		by[kcloudNoNarrowing].podsPerSecond()/by[upstreamAllNodes].podsPerSecond(), n)
	return nil
}

// The four schedulers, in round order.
const (
	upstreamDefaults  = "upstream defaults"
	upstreamAllNodes  = "upstream, 100% of nodes scored"
	kcloudNoNarrowing = "kcloud, narrowing off"
	kcloudShipped     = "kcloud as shipped"
)

type scheduler struct {
	name, profile, binary, config string
	kcloud                        bool
	port                          string
	pid                           int
}

// kcloudConfig is config/scheduler's KubeSchedulerConfiguration as shipped, pointed at the cluster,
// under another schedulerName, with narrowCandidates false when narrow is false.
func kcloudConfig(kubeconfig, schedulerName string, narrow bool) (string, error) {
	cfg := string(config.SchedulerConfig)
	for _, r := range []struct{ old, new string }{
		{"clientConnection:", "clientConnection:\n  kubeconfig: " + kubeconfig},
		{"- schedulerName: kcloud-scheduler", "- schedulerName: " + schedulerName},
		{"kind: KcloudOptimizerArgs\n", "kind: KcloudOptimizerArgs\n      narrowCandidates: " + strconv.FormatBool(narrow) + "\n"},
	} {
		if strings.Count(cfg, r.old) != 1 {
			return "", fmt.Errorf("config/scheduler: %q is not there once; the bench cannot adapt the shipped configuration", r.old)
		}
		cfg = strings.Replace(cfg, r.old, r.new, 1)
	}
	return cfg, nil
}

func schedulers(o options, kubeconfig string) ([]*scheduler, error) {
	kube := func(name, profile, global string) *scheduler {
		return &scheduler{name: name, profile: profile, binary: o.binDir + "/kube-scheduler",
			config: devcluster.UpstreamSchedulerConfig(kubeconfig, profile, global)}
	}
	off, err := kcloudConfig(kubeconfig, "bench-kcloud-narrowing-off", false)
	if err != nil {
		return nil, err
	}
	shipped, err := kcloudConfig(kubeconfig, "bench-kcloud", true)
	if err != nil {
		return nil, err
	}
	return []*scheduler{
		kube(upstreamDefaults, "bench-upstream", ""),
		kube(upstreamAllNodes, "bench-upstream-all-nodes", "percentageOfNodesToScore: 100"),
		{name: kcloudNoNarrowing, profile: "bench-kcloud-narrowing-off", binary: o.kcloudBin, config: off, kcloud: true},
		{name: kcloudShipped, profile: "bench-kcloud", binary: o.kcloudBin, config: shipped, kcloud: true},
	}, nil
}

// benchSize brings up the fleet of n nodes with CRDs and policies, starts the four schedulers and
// runs their rounds.
func benchSize(ctx context.Context, o options, n int) ([]result, error) {
	profile := fmt.Sprintf("bench-production-%d", n)
	devcluster.Profiles[profile] = devcluster.Profile{Groups: devcluster.Scaled(devcluster.Profiles["default"].Groups, n), ProductionLike: true}
	c, stop, err := devcluster.UpTemporary(ctx, devcluster.Options{BinDir: o.binDir, Profile: profile, Log: logf,
		Install: install.ApplyCRDs})
	if err != nil {
		return nil, err
	}
	defer stop()
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := createPolicies(ctx, dyn); err != nil {
		return nil, err
	}
	daemons, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return nil, err
	}
	logf("%d nodes, %d pods of DaemonSets and Deployments", n, len(daemons.Items))
	scheds, err := schedulers(o, c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if err := startSchedulers(ctx, c, scheds, o); err != nil {
		return nil, err
	}
	perRound := max(1, int(o.podsPerNode*float64(n)))
	rows, err := rounds(ctx, cs, dyn, scheds, perRound, o.pprofDir)
	if err != nil {
		return nil, err
	}
	for i := range rows {
		rows[i].daemonPods = len(daemons.Items)
	}
	return rows, nil
}

// startSchedulers starts each scheduler with its configuration on a free port and waits until it
// is ready; with prioritize, everything else runs at the lowest CPU priority.
func startSchedulers(ctx context.Context, c *devcluster.Cluster, scheds []*scheduler, o options) error {
	for i, s := range scheds {
		port, err := devcluster.FreePort()
		if err != nil {
			return err
		}
		s.port = strconv.Itoa(port)
		cfg := fmt.Sprintf("%s/bench-scheduler-%d.yaml", c.Dir, i)
		if err := os.WriteFile(cfg, []byte(s.config), 0o600); err != nil {
			return err
		}
		allow := "/metrics,/healthz,/readyz,/livez"
		if o.pprofDir != "" {
			allow += ",/debug/pprof/*"
		}
		if err := c.Start(s.binary, fmt.Sprintf("bench-scheduler-%d", i), "--config="+cfg, "--secure-port="+s.port,
			"--bind-address=127.0.0.1", "--authorization-always-allow-paths="+allow); err != nil {
			return err
		}
		s.pid = c.Processes[len(c.Processes)-1].PID
	}
	for _, s := range scheds {
		if err := waitReady(ctx, s); err != nil {
			return err
		}
	}
	if o.prioritize {
		pids := []int{os.Getpid()}
		for _, p := range c.Processes {
			if !strings.HasPrefix(p.Name, "bench-scheduler-") {
				pids = append(pids, p.PID)
			}
		}
		for _, pid := range pids {
			if err := reniceAll(pid, 19); err != nil {
				return err
			}
		}
		logf("priority: the schedulers at nice 0, the control plane, kwok and the load generator at nice 19")
	}
	return nil
}

// waitReady polls a scheduler's /readyz, which holds until its informers have synced.
func waitReady(ctx context.Context, s *scheduler) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := get(s.port, "/readyz", 5*time.Second)
		if err == nil {
			_ = resp.Body.Close() // only the status matters
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not ready after 3 minutes (last: %v)", s.name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// reniceAll sets the nice value of every thread of a process.
func reniceAll(pid, nice int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && err != unix.ESRCH {
			return fmt.Errorf("renice thread %d of %d: %w", tid, pid, err)
		}
	}
	return nil
}

// cpuSeconds is the CPU time (user and system) a process has used so far, from /proc: on a machine
// shared with the control plane and the other schedulers, the scheduler's own CPU per pod is a
// steadier comparison than wall-clock throughput.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err := strconv.ParseFloat(fields[11], 64)
	if err != nil {
		return 0, err
	}
	stime, err := strconv.ParseFloat(fields[12], 64)
	if err != nil {
		return 0, err
	}
	const userHZ = 100 // clock ticks per second of /proc/<pid>/stat on Linux
	return (utime + stime) / userHZ, nil
}
