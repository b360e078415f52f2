// Command bench-scheduler compares kcloud-scheduler with the upstream kube-scheduler of the same
// version on one local cluster: 1,000 kwok GPU nodes (the first 1,000 GPU nodes of the openb cluster)
// and 5,000 pods of mixed GPU requests for each, one after the other. It prints throughput (pods
// bound per second from the first creation to the last binding), p99 scheduling-attempt latency from
// each scheduler's own metrics, and the p99 of each of our plugins per extension point. Last line:
// throughput_ratio=X plugin_p99_ms=Y. Run it with `make bench-scheduler`.
//
// With --prioritize (the default) the control plane, kwok and the load generator run at the lowest
// CPU priority (nice 19) and the schedulers at the normal one, so that the scheduler under test has
// the CPU when it needs it, as on a control-plane node, and the rest of the cluster has every CPU
// the scheduler leaves; --prioritize=false runs everything at one priority.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
)

func main() {
	binDir := flag.String("bin-dir", "bin/controlplane/current", "control-plane binaries")
	kcloudScheduler := flag.String("kcloud-scheduler", "bin/kcloud-scheduler", "kcloud-scheduler binary")
	pods := flag.Int("pods", 5000, "pods per scheduler")
	profile := flag.String("profile", "gpu1000", "fleet profile")
	pprofDir := flag.String("pprof-dir", "", "if set, write a CPU profile of each round's scheduler and each scheduler's final metrics here")
	prioritize := flag.Bool("prioritize", true, "run the control plane, kwok and this load generator at nice 19, below the schedulers")
	flag.Parse()
	if err := run(*binDir, *kcloudScheduler, *profile, *pods, *pprofDir, *prioritize); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scheduler:", err)
		os.Exit(1)
	}
}

type scheduler struct {
	name, profile, binary, port string
	global, extraConfig         string
	pid                         int
}

// cpuSeconds is the CPU time (user and system) a process has used so far, from /proc: on a machine
// shared with the control plane and other work, the scheduler's own CPU per pod is a steadier
// comparison than wall-clock throughput.
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

// Each scheduler runs as shipped: upstream with its defaults, kcloud-scheduler with the settings of
// config/scheduler/kcloud-scheduler-config.yaml (every node scored, its plugin deciding the score).
const schedulerConfig = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection: {leaderElect: false}
clientConnection: {kubeconfig: %s, qps: 1000, burst: 2000}
%s
profiles:
- schedulerName: %s
%s`

const kcloudProfile = `  plugins:
    multiPoint: {enabled: [{name: KcloudGPUShare}, {name: KcloudOptimizer}, {name: KcloudGang}]}
    score:
      disabled: [{name: NodeResourcesFit}, {name: NodeResourcesBalancedAllocation}]
      enabled: [{name: KcloudOptimizer, weight: 10}]
`

func run(binDir, kcloudBin, profile string, n int, pprofDir string, prioritize bool) error {
	ctx := context.Background()
	c, stop, err := devcluster.UpTemporary(ctx, devcluster.Options{BinDir: binDir, Profile: profile})
	if err != nil {
		return err
	}
	defer stop()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	scheds := []*scheduler{
		{name: "kube-scheduler", profile: "bench-upstream", binary: filepath.Join(binDir, "kube-scheduler")},
		{name: "kcloud-scheduler", profile: "kcloud-scheduler", binary: kcloudBin, global: "percentageOfNodesToScore: 100", extraConfig: kcloudProfile},
	}
	if err := startSchedulers(c, scheds, pprofDir, prioritize); err != nil {
		return err
	}
	time.Sleep(3 * time.Second)
	results, err := rounds(ctx, cs, scheds, n, pprofDir)
	if err != nil {
		return err
	}
	fmt.Printf("fleet %s, %d pods per round, two rounds per scheduler (60%% 1 GPU, 10%% 2 GPUs, 5%% 4 GPUs, 25%% CPU only)\n", profile, n)
	if prioritize {
		fmt.Printf("schedulers at nice 0; control plane, kwok and the load generator at nice 19, on all %d CPUs\n", runtime.NumCPU())
	} else {
		fmt.Printf("schedulers, control plane, kwok and the load generator share all %d CPUs\n", runtime.NumCPU())
	}
	fmt.Printf("%-18s %10s %12s %14s %18s %18s %18s\n", "scheduler", "pods/s", "bound", "CPU ms/pod", "p99 attempt (ms)", "p99 Filter (ms)", "p99 Score (ms)")
	var maxPlugin float64
	var pluginLines, attemptLines []string
	for _, s := range scheds {
		if pprofDir != "" {
			if err := fetch(s.port, "/metrics", filepath.Join(pprofDir, s.name+".metrics.txt")); err != nil {
				return err
			}
			if err := fetch(s.port, "/debug/pprof/allocs", filepath.Join(pprofDir, s.name+".allocs.pprof")); err != nil {
				return err
			}
		}
		fams, err := scrape(s.port)
		if err != nil {
			return fmt.Errorf("%s metrics: %w", s.name, err)
		}
		p99 := quantile(fams["scheduler_scheduling_attempt_duration_seconds"], 0.99, map[string]string{"profile": s.profile, "result": "scheduled"})
		r := results[s.name]
		ext := func(point string) float64 {
			return 1000 * quantile(fams["scheduler_framework_extension_point_duration_seconds"], 0.99, map[string]string{"profile": s.profile, "extension_point": point, "status": "Success"})
		}
		fmt.Printf("%-18s %10.1f %12d %14.2f %18.2f %18.2f %18.2f\n", s.name, float64(r.bound)/r.seconds, r.bound, 1000*r.cpu/float64(r.bound),
			p99*1000, ext("Filter"), ext("Score"))
		a := attempts(fams["scheduler_schedule_attempts_total"], s.profile)
		attemptLines = append(attemptLines, fmt.Sprintf("  %-18s scheduled %.0f, unschedulable %.0f, error %.0f", s.name, a["scheduled"], a["unschedulable"], a["error"]))
		if s.name == "kcloud-scheduler" {
			lines, worst := ourPluginLines(fams["scheduler_plugin_execution_duration_seconds"])
			pluginLines = append(pluginLines, lines...)
			maxPlugin = math.Max(maxPlugin, worst)
		}
	}
	fmt.Println("scheduling attempts (scheduler_schedule_attempts_total):")
	for _, l := range attemptLines {
		fmt.Println(l)
	}
	fmt.Println("our plugins per extension point (scheduler_plugin_execution_duration_seconds, sampled by the scheduler):")
	for _, l := range pluginLines {
		fmt.Println(l)
	}
	up, kc := results["kube-scheduler"], results["kcloud-scheduler"]
	fmt.Printf("scheduler CPU per pod, kcloud / upstream: %.2f\n", (kc.cpu/float64(kc.bound))/(up.cpu/float64(up.bound)))
	ratio := (float64(kc.bound) / kc.seconds) / (float64(up.bound) / up.seconds)
	fmt.Printf("throughput_ratio=%.2f plugin_p99_ms=%.3f\n", ratio, maxPlugin)
	return nil
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

func freePort() (int, error) {
	return devcluster.FreePort()
}

type phase struct {
	bound   int
	seconds float64
	cpu     float64 // the scheduler's CPU seconds from the first creation to the last binding
}

// schedulePods creates n pods for a scheduler in their own namespace, waits until all are bound (or
// binding stops for 20 s), then deletes them.
func schedulePods(ctx context.Context, cs kubernetes.Interface, schedulerName, ns string, n int, cpu func() float64) (phase, error) {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return phase{}, err
	}
	start, cpuStart := time.Now(), cpu()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, benchPod(ns, schedulerName, i), metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return phase{}, err
	}
	last, lastChange := 0, time.Now()
	var done time.Time
	var cpuDone float64
	for {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return phase{}, err
		}
		b, latest := 0, start
		for i := range list.Items {
			p := &list.Items[i]
			if p.Spec.NodeName == "" {
				continue
			}
			b++
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.LastTransitionTime.After(latest) {
					latest = c.LastTransitionTime.Time
				}
			}
		}
		if b != last {
			last, lastChange, done, cpuDone = b, time.Now(), time.Now(), cpu()
		}
		if b == n || time.Since(lastChange) > 20*time.Second {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := phase{bound: last, seconds: done.Sub(start).Seconds(), cpu: cpuDone - cpuStart}
	// Pods are deleted one by one from many workers: a DeleteCollection of 5,000 pods runs on one
	// worker in the API server and outlasts its request timeout on a busy machine.
	if err := deletePods(ctx, cs, ns, n); err != nil {
		return r, err
	}
	for {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil || len(list.Items) == 0 {
			return r, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func deletePods(ctx context.Context, cs kubernetes.Interface, ns string, n int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				name := podName(i)
				err := cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
				if err != nil && !apierrors.IsNotFound(err) {
					errs <- fmt.Errorf("deleting pod %s/%s: %w", ns, name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func podName(i int) string { return fmt.Sprintf("p-%05d", i) }

// benchPod is pod i of the mix: 60% one GPU, 10% two, 5% four, 25% CPU only.
func benchPod(ns, schedulerName string, i int) *corev1.Pod {
	gpus := int64(0)
	switch r := i % 20; {
	case r < 12:
		gpus = 1
	case r < 14:
		gpus = 2
	case r < 15:
		gpus = 4
	}
	res := corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(int64(1000+i%4*1000), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(int64(4+i%3*4)<<30, resource.BinarySI)}
	c := corev1.Container{Name: "c", Image: "example.com/bench:1", Resources: corev1.ResourceRequirements{Requests: res}}
	if gpus > 0 {
		c.Resources.Limits = corev1.ResourceList{catalog.ResourceNVIDIAGPU: *resource.NewQuantity(gpus, resource.DecimalSI)}
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: podName(i), Namespace: ns},
		Spec: corev1.PodSpec{SchedulerName: schedulerName, Containers: []corev1.Container{c}}}
}

// fetch saves one of a scheduler's endpoints (metrics, pprof) to a file.
func fetch(port, path, file string) error {
	resp, err := get(port, path, time.Minute)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close() // the copy's error is the one to report
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return f.Close()
}

func get(port, path string, timeout time.Duration) (*http.Response, error) {
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec G402 -- loopback, self-signed
	return client.Get("https://127.0.0.1:" + port + path)
}

func scrape(port string) (map[string]*dto.MetricFamily, error) {
	resp, err := get(port, "/metrics", 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// startSchedulers starts each scheduler with its configuration on a free port, and with prioritize
// puts everything else at the lowest CPU priority.
func startSchedulers(c *devcluster.Cluster, scheds []*scheduler, pprofDir string, prioritize bool) error {
	for _, s := range scheds {
		port, err := freePort()
		if err != nil {
			return err
		}
		s.port = strconv.Itoa(port)
		cfg := filepath.Join(c.Dir, s.name+"-bench.yaml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(schedulerConfig, c.Kubeconfig, s.global, s.profile, s.extraConfig)), 0o600); err != nil {
			return err
		}
		allow := "/metrics,/healthz,/readyz,/livez"
		if pprofDir != "" {
			allow += ",/debug/pprof/*"
		}
		if err := c.Start(s.binary, s.name+"-bench", "--config="+cfg, "--secure-port="+s.port, "--bind-address=127.0.0.1",
			"--authorization-always-allow-paths="+allow); err != nil {
			return err
		}
		s.pid = c.Processes[len(c.Processes)-1].PID
	}
	if prioritize {
		// Everything but the schedulers yields the CPU to them: the control plane, kwok and this
		// load generator at the lowest priority (nice 19), on every thread; threads they start
		// later inherit it.
		pids := []int{os.Getpid()}
		for _, p := range c.Processes {
			if !strings.HasSuffix(p.Name, "-bench") {
				pids = append(pids, p.PID)
			}
		}
		for _, pid := range pids {
			if err := reniceAll(pid, 19); err != nil {
				return err
			}
		}
		fmt.Fprintln(os.Stderr, "priority: the schedulers at nice 0, the control plane, kwok and the load generator at nice 19")
	}
	return nil
}

// rounds creates n pods for each scheduler in turn and waits until they are bound.
func rounds(ctx context.Context, cs kubernetes.Interface, scheds []*scheduler, n int, pprofDir string) (map[string]phase, error) {
	// Rounds in the order A B B A, so that neither scheduler always runs on a cluster still busy
	// with the other's deletions.
	results := map[string]phase{}
	for round, s := range []*scheduler{scheds[0], scheds[1], scheds[1], scheds[0]} {
		var profiled sync.WaitGroup
		if pprofDir != "" {
			profiled.Add(1)
			go func() {
				defer profiled.Done()
				// The first 20 s of a round: the whole of it is about 30-80 s.
				path := filepath.Join(pprofDir, fmt.Sprintf("round%d-%s.cpu.pprof", round+1, s.name))
				if err := fetch(s.port, "/debug/pprof/profile?seconds=20", path); err != nil {
					fmt.Fprintf(os.Stderr, "profiling %s: %v\n", s.name, err)
				}
			}()
		}
		r, err := schedulePods(ctx, cs, s.profile, fmt.Sprintf("bench-%d", round), n, func() float64 {
			v, err := cpuSeconds(s.pid)
			if err != nil {
				fmt.Fprintf(os.Stderr, "reading the CPU time of %s: %v\n", s.name, err)
			}
			return v
		})
		profiled.Wait()
		if err != nil {
			return nil, err
		}
		acc := results[s.name]
		acc.bound += r.bound
		acc.seconds += r.seconds
		acc.cpu += r.cpu
		results[s.name] = acc
		fmt.Fprintf(os.Stderr, "round %d, %s: %d of %d pods bound in %.1fs, %.1f CPU s\n", round+1, s.name, r.bound, n, r.seconds, r.cpu)
	}
	return results, nil
}

// ourPlugins are kcloud-scheduler's plugins, as config/scheduler enables them.
var ourPlugins = []string{"KcloudGPUShare", "KcloudOptimizer", "KcloudGang"}

// ourPluginLines reports each of our plugins' p99 at each extension point it ran at, beside the
// slowest kube-scheduler plugin there, and the highest of our p99s (ms).
func ourPluginLines(fam *dto.MetricFamily) (lines []string, worst float64) {
	for _, pl := range ourPlugins {
		for _, ep := range []string{"PreFilter", "Filter", "PreScore", "Score", "ScoreExtensionNormalize", "Reserve", "Permit", "PreBind"} {
			match := map[string]string{"plugin": pl, "extension_point": ep}
			v := quantile(fam, 0.99, match)
			if math.IsNaN(v) {
				continue
			}
			line := fmt.Sprintf("  %s %-10s p99 %.3f ms  (%d samples)", pl, ep, v*1000, samples(fam, match))
			if name, p := slowestOther(fam, ep); name != "" {
				line += fmt.Sprintf("; slowest kube-scheduler plugin here: %s p99 %.3f ms", name, p*1000)
			}
			lines = append(lines, line)
			worst = math.Max(worst, v*1000)
		}
	}
	return lines, worst
}

// slowestOther is the kube-scheduler plugin with the highest p99 at an extension point in the same
// process (with at least 50 samples): what the machine alone does to a plugin's tail there.
func slowestOther(fam *dto.MetricFamily, point string) (string, float64) {
	plugins := map[string]bool{}
	for _, m := range fam.GetMetric() {
		for _, l := range m.Label {
			if l.GetName() == "plugin" && !slices.Contains(ourPlugins, l.GetValue()) && matches(m, map[string]string{"extension_point": point}) {
				plugins[l.GetValue()] = true
			}
		}
	}
	name, worst := "", 0.0
	for p := range plugins {
		match := map[string]string{"plugin": p, "extension_point": point}
		if samples(fam, match) < 50 {
			continue
		}
		if v := quantile(fam, 0.99, match); v > worst || name == "" {
			name, worst = p, v
		}
	}
	return name, worst
}

// samples counts the observations of the histogram series matching the labels. The scheduler
// records plugin durations for one cycle in ten, through a buffer of 1,000 observations flushed
// every second that drops what does not fit (a sampled cycle records one Filter observation per
// plugin and node), so a point late in the cycle has fewer samples than there were cycles.
func samples(fam *dto.MetricFamily, match map[string]string) uint64 {
	var n uint64
	for _, m := range fam.GetMetric() {
		if m.Histogram != nil && matches(m, match) {
			n += m.Histogram.GetSampleCount()
		}
	}
	return n
}

// attempts sums scheduler_schedule_attempts_total of one profile by result.
func attempts(fam *dto.MetricFamily, profile string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range fam.GetMetric() {
		if m.Counter == nil || !matches(m, map[string]string{"profile": profile}) {
			continue
		}
		for _, l := range m.Label {
			if l.GetName() == "result" {
				out[l.GetValue()] += m.Counter.GetValue()
			}
		}
	}
	return out
}

func matches(m *dto.Metric, match map[string]string) bool {
	labels := map[string]string{}
	for _, l := range m.Label {
		labels[l.GetName()] = l.GetValue()
	}
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// quantile estimates a quantile of the histogram series matching the labels, summed, by linear
// interpolation inside the bucket.
func quantile(fam *dto.MetricFamily, q float64, match map[string]string) float64 {
	if fam == nil {
		return math.NaN()
	}
	counts := map[float64]float64{}
	total := 0.0
	for _, m := range fam.Metric {
		if !matches(m, match) || m.Histogram == nil {
			continue
		}
		for _, b := range m.Histogram.Bucket {
			counts[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
		total += float64(m.Histogram.GetSampleCount())
	}
	if total == 0 {
		return math.NaN()
	}
	bounds := make([]float64, 0, len(counts))
	for b := range counts {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, b := range bounds {
		if counts[b] >= rank {
			if math.IsInf(b, 1) {
				return prevBound
			}
			return prevBound + (b-prevBound)*(rank-prevCount)/(counts[b]-prevCount)
		}
		prevBound, prevCount = b, counts[b]
	}
	return prevBound
}
