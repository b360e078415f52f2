package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// result is one scheduler's two rounds at one fleet size.
type result struct {
	name                 string
	bound, pods          int
	seconds, cpu         float64 // from each round's first creation to its last binding, summed
	sliP50, sliP99       float64 // seconds
	filterP99, scoreP99  float64 // the framework's extension point, every plugin together, seconds
	bindP99              float64 // the framework's Bind (an API write), seconds
	unschedulable, errs  float64
	points               []pointP99
	daemonPods, podsEach int
}

type pointP99 struct {
	plugin, point string
	p99           float64 // seconds
	samples       uint64
}

func (r result) podsPerSecond() float64 { return float64(r.bound) / r.seconds }

// worstPoint is the highest p99 of our extension points in the scheduling cycle, in ms. PreBind is
// left out: it runs in the binding cycle, off the scheduling path, and is an API write (the share's
// device annotation), reported beside the binder's own Bind.
func (r result) worstPoint() float64 {
	w := 0.0
	for _, p := range r.points {
		if p.point != "PreBind" {
			w = math.Max(w, p.p99*1000)
		}
	}
	return w
}

// rounds creates n pods for each scheduler in the order A B C D D C B A, so that none always runs
// first on a fresh cluster or right after another's deletions, and reads each one's metrics after.
func rounds(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, scheds []*scheduler, n int, pprofDir string) ([]result, error) {
	order := append([]*scheduler{}, scheds...)
	for i := len(scheds) - 1; i >= 0; i-- {
		order = append(order, scheds[i])
	}
	acc := map[string]*result{}
	for round, s := range order {
		ns := fmt.Sprintf("bench-%d", round)
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		if err := createOptimizers(ctx, dyn, ns); err != nil {
			return nil, err
		}
		stopProfile := profile(s, round, pprofDir)
		r, err := schedulePods(ctx, cs, s, ns, n)
		stopProfile()
		if err != nil {
			return nil, err
		}
		a := acc[s.name]
		if a == nil {
			a = &result{name: s.name, podsEach: n}
			acc[s.name] = a
		}
		a.bound += r.bound
		a.pods += n
		a.seconds += r.seconds
		a.cpu += r.cpu
		logf("round %d, %s: %d of %d pods bound in %.1fs, %.1f CPU s", round+1, s.name, r.bound, n, r.seconds, r.cpu)
		if err := deletePods(ctx, cs, ns, n); err != nil {
			return nil, err
		}
	}
	var out []result
	for _, s := range scheds {
		r := acc[s.name]
		if err := readMetrics(s, r, pprofDir); err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

// profile takes a CPU profile of the round's first 20 s when pprofDir is set; the returned func waits
// for it.
func profile(s *scheduler, round int, pprofDir string) func() {
	if pprofDir == "" {
		return func() {}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		path := filepath.Join(pprofDir, fmt.Sprintf("round%d-%s.cpu.pprof", round+1, s.profile))
		if err := fetch(s.port, "/debug/pprof/profile?seconds=20", path); err != nil {
			fmt.Fprintf(os.Stderr, "profiling %s: %v\n", s.name, err)
		}
	})
	return wg.Wait
}

type phase struct {
	bound        int
	seconds, cpu float64
}

// schedulePods creates n pods for a scheduler from 32 workers and waits until all are bound, or
// binding stops for 20 s.
func schedulePods(ctx context.Context, cs kubernetes.Interface, s *scheduler, ns string, n int) (phase, error) {
	cpu := func() float64 {
		v, err := cpuSeconds(s.pid)
		if err != nil {
			fmt.Fprintf(os.Stderr, "reading the CPU time of %s: %v\n", s.name, err)
		}
		return v
	}
	start, cpuStart := time.Now(), cpu()
	if err := parallel(n, func(i int) error {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, benchPod(ns, s.profile, i), metav1.CreateOptions{})
		return err
	}); err != nil {
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
		b := 0
		for i := range list.Items {
			if list.Items[i].Spec.NodeName != "" {
				b++
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
	return phase{bound: last, seconds: done.Sub(start).Seconds(), cpu: cpuDone - cpuStart}, nil
}

// deletePods deletes a round's pods one by one from many workers (a DeleteCollection of thousands of
// pods runs on one worker in the API server and outlasts its request timeout on a busy machine),
// then its namespace, and waits until the pods are gone.
func deletePods(ctx context.Context, cs kubernetes.Interface, ns string, n int) error {
	if err := parallel(n, func(i int) error {
		err := cs.CoreV1().Pods(ns).Delete(ctx, podName(i), metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting pod %s/%s: %w", ns, podName(i), err)
		}
		return nil
	}); err != nil {
		return err
	}
	for {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return err
		}
		if len(list.Items) == 0 {
			return cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// parallel runs f(0..n-1) on 32 workers and returns the first error.
func parallel(n int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// ourPlugins are kcloud-scheduler's plugins and the points they run at, as config/scheduler enables
// them.
var ourPlugins = []struct {
	name   string
	points []string
}{
	{"KcloudGPUShare", []string{"PreFilter", "Filter", "Reserve", "PreBind"}},
	{"KcloudOptimizer", []string{"PreFilter", "PreFilterExtensionAddPod", "PreFilterExtensionRemovePod", "Filter", "PreScore", "Score", "ScoreExtensionNormalize", "Reserve"}},
	{"KcloudGang", []string{"Permit"}},
}

// readMetrics fills in a scheduler's latency figures from its /metrics.
func readMetrics(s *scheduler, r *result, pprofDir string) error {
	if pprofDir != "" {
		if err := fetch(s.port, "/metrics", filepath.Join(pprofDir, s.profile+".metrics.txt")); err != nil {
			return err
		}
	}
	fams, err := scrape(s.port)
	if err != nil {
		return fmt.Errorf("%s metrics: %w", s.name, err)
	}
	sli := fams["scheduler_pod_scheduling_sli_duration_seconds"]
	r.sliP50, r.sliP99 = quantile(sli, 0.5, nil), quantile(sli, 0.99, nil)
	ext := func(point string) float64 {
		return quantile(fams["scheduler_framework_extension_point_duration_seconds"], 0.99,
			map[string]string{"profile": s.profile, "extension_point": point, "status": "Success"})
	}
	r.filterP99, r.scoreP99, r.bindP99 = ext("Filter"), ext("Score"), ext("Bind")
	a := attempts(fams["scheduler_schedule_attempts_total"], s.profile)
	r.unschedulable, r.errs = a["unschedulable"], a["error"]
	if !s.kcloud {
		return nil
	}
	fam := fams["kcloud_scheduler_plugin_duration_seconds"]
	for _, pl := range ourPlugins {
		for _, point := range pl.points {
			match := map[string]string{"plugin": pl.name, "extension_point": point}
			if n := samples(fam, match); n > 0 {
				r.points = append(r.points, pointP99{plugin: pl.name, point: point, p99: quantile(fam, 0.99, match), samples: n})
			}
		}
	}
	return nil
}

func printTable(o options, n int, rows []result) {
	fmt.Printf("\n%d nodes: the default fleet's mix repeated, %d pods of DaemonSets and Deployments on them; %d pods per round, two rounds each (A B C D D C B A)\n",
		n, rows[0].daemonPods, rows[0].podsEach)
	if o.prioritize {
		fmt.Printf("schedulers at nice 0; control plane, kwok and the load generator at nice 19, on all %d CPUs\n", runtime.NumCPU())
	} else {
		fmt.Printf("every process at one priority, on all %d CPUs\n", runtime.NumCPU())
	}
	fmt.Printf("%-32s %8s %11s %11s %11s %11s %11s %11s %11s %11s\n", "scheduler", "pods/s", "bound", "CPU ms/pod",
		"SLI p50 ms", "SLI p99 ms", "Filter p99", "Score p99", "Bind p99", "unschedul.")
	for _, r := range rows {
		fmt.Printf("%-32s %8.1f %5d/%-5d %11.2f %11.1f %11.1f %11.2f %11.2f %11.2f %11.0f\n", r.name, r.podsPerSecond(), r.bound, r.pods,
			1000*r.cpu/float64(r.bound), 1000*r.sliP50, 1000*r.sliP99, 1000*r.filterP99, 1000*r.scoreP99, 1000*r.bindP99, r.unschedulable)
	}
	fmt.Println("our extension points (kcloud_scheduler_plugin_duration_seconds; Filter and Score: every call of one cycle in 8), p99 ms (observations); PreBind is in the binding cycle:")
	for _, r := range rows {
		if len(r.points) == 0 {
			continue
		}
		fmt.Printf("  %s:\n", r.name)
		for _, p := range r.points {
			fmt.Printf("    %-16s %-28s %8.3f  (%d)\n", p.plugin, p.point, 1000*p.p99, p.samples)
		}
	}
	by := map[string]result{}
	for _, r := range rows {
		by[r.name] = r
	}
	fmt.Printf("at %d nodes: kcloud as shipped / upstream defaults %.2f; kcloud narrowing off / upstream 100%% scored %.2f; CPU per pod, shipped / upstream defaults %.2f\n",
		n, by[kcloudShipped].podsPerSecond()/by[upstreamDefaults].podsPerSecond(),
		by[kcloudNoNarrowing].podsPerSecond()/by[upstreamAllNodes].podsPerSecond(),
		(by[kcloudShipped].cpu/float64(by[kcloudShipped].bound))/(by[upstreamDefaults].cpu/float64(by[upstreamDefaults].bound)))
}
