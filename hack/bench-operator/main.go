// Command bench-operator measures kcloud-operator at scale: 5,000 WorkloadOptimizers governing
// 20,000 pods (4 each, linked by the kcloud.io/optimizer label) on the 1,000 kwok GPU nodes of the
// gpu1000 profile. Pods are created already bound to nodes with room (no scheduler involved) and
// run before the operator starts. The benchmark then times the operator's initial sync (until every
// optimizer reports runningReplicas=4), lets it run in steady state with a short re-optimization
// interval so that every optimizer is re-evaluated several times, and reads the operator's own
// metrics: the workloadoptimizer controller's reconcile-time histogram (p99 as a bucket upper
// bound, over the steady-state window and over the whole run) and its memory (resident set and Go
// heap, sampled through the window).
//
// The baseline, measured in the same run against the same cluster, is a bare controller-runtime
// manager caching the same kinds (pods, nodes, WorkloadOptimizers, CostPolicies, PowerPolicies)
// with controller-runtime's defaults and no reconcilers: the same binary in the child mode
// --baseline-cache.
//
// The last line is memory_mib=X reconcile_p99_ms=Y (steady state). Run it with `make bench-operator`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/operator"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/install"
	"kcloud.io/optimizer/pkg/kube"
)

type config struct {
	binDir, operator, profile    string
	optimizers, podsPer, nsCount int
	reoptimize, settle, steady   time.Duration
	sampleEvery                  time.Duration
	workers                      int
	keepLogs, pprofDir           string
	memoryLimit                  string
}

func main() {
	var c config
	// A flag set of our own: controller-runtime registers --kubeconfig on the global one.
	fs := flag.NewFlagSet("bench-operator", flag.ExitOnError)
	baseline := fs.Bool("baseline-cache", false, "child mode: run the bare-cache baseline manager (started by the benchmark itself)")
	kubeconfig := fs.String("kubeconfig", "", "child mode: kubeconfig")
	metricsAddr := fs.String("metrics-bind-address", "", "child mode: metrics address")
	probeAddr := fs.String("health-probe-bind-address", "", "child mode: probe address")
	fs.StringVar(&c.binDir, "bin-dir", "bin/controlplane/current", "control-plane binaries")
	fs.StringVar(&c.operator, "operator", "bin/kcloud-operator", "kcloud-operator binary")
	fs.StringVar(&c.profile, "profile", "gpu1000", "fleet profile")
	fs.IntVar(&c.optimizers, "optimizers", 5000, "WorkloadOptimizers")
	fs.IntVar(&c.podsPer, "pods-per-optimizer", 4, "pods linked to each optimizer")
	fs.IntVar(&c.nsCount, "namespaces", 50, "namespaces the optimizers are spread over")
	fs.DurationVar(&c.reoptimize, "reoptimize-interval", 30*time.Second, "the operator's --reoptimize-interval")
	fs.IntVar(&c.workers, "workers", 4, "the operator's --workers (its default is 4)")
	fs.DurationVar(&c.settle, "settle", 30*time.Second, "wait after the initial sync before the steady-state window")
	fs.DurationVar(&c.steady, "steady", 90*time.Second, "steady-state window")
	fs.DurationVar(&c.sampleEvery, "sample-every", 2*time.Second, "resident-set sampling period in the window (the Go heap is scraped every 15s)")
	fs.StringVar(&c.keepLogs, "keep-logs", "", "if set, copy the operator's and the baseline's logs and final metrics into this directory")
	fs.StringVar(&c.memoryLimit, "operator-memory-limit", "", "if set, the operator runs with GOMEMLIMIT set to this (e.g. 250MiB), as a deployment sets it from the container's memory limit; the cluster and the baseline run without")
	fs.StringVar(&c.pprofDir, "pprof-dir", "", "if set, run the operator with --pprof-bind-address and save a CPU profile of the first 30s of the window and a heap profile at its end here")
	_ = fs.Parse(os.Args[1:])
	ctrl.SetLogger(zap.New())
	if *baseline {
		if err := runBaselineCache(*kubeconfig, *metricsAddr, *probeAddr); err != nil {
			fmt.Fprintln(os.Stderr, "bench-operator --baseline-cache:", err)
			os.Exit(1)
		}
		return
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench-operator:", err)
		os.Exit(1)
	}
}

var start = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, c config) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cl, stop, err := devcluster.UpTemporary(ctx, devcluster.Options{BinDir: c.binDir, Profile: c.profile, Log: logf,
		Install: func(ctx context.Context, cfg *rest.Config) error {
			a, err := install.NewApplier(cfg)
			if err != nil {
				return err
			}
			names, err := a.CRDs(ctx)
			if err == nil {
				logf("installed CRDs: %s", strings.Join(names, ", "))
			}
			return err
		}})
	if err != nil {
		return err
	}
	defer func() {
		logf("tearing the cluster down")
		stop()
		logf("cluster stopped")
	}()

	cfg := rest.CopyConfig(cl.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(pcfg)
	if err != nil {
		return err
	}
	kc, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		return err
	}

	// The workload.
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: devcluster.LabelFleet + "=" + c.profile})
	if err != nil {
		return err
	}
	wl := newWorkload(c)
	if err := wl.place(nodes.Items); err != nil {
		return err
	}
	logf("workload: %d optimizers (%s), %d pods (%s), on %d of %d nodes",
		len(wl.optimizers), wl.optimizerMix(), len(wl.pods), wl.podMix(), wl.nodesUsed(), len(nodes.Items))
	for i := 0; i < c.nsCount; i++ {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i), Labels: map[string]string{"team": team(i)}}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", ns.Name, err)
		}
	}
	for _, p := range policies(c.nsCount) {
		if err := kc.Create(ctx, p); err != nil {
			return fmt.Errorf("creating %T %s: %w", p, p.GetName(), err)
		}
	}
	t0 := time.Now()
	if err := parallel(ctx, len(wl.optimizers), 32, "optimizers", func(i int) error {
		return kc.Create(ctx, wl.optimizers[i])
	}); err != nil {
		return err
	}
	logf("created %d WorkloadOptimizers in %.1fs", len(wl.optimizers), time.Since(t0).Seconds())
	t0 = time.Now()
	if err := parallel(ctx, len(wl.pods), 48, "pods", func(i int) error {
		_, err := cs.CoreV1().Pods(wl.pods[i].Namespace).Create(ctx, wl.pods[i], metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	created := time.Since(t0)
	logf("created %d bound pods in %.1fs; waiting for kwok to run them", len(wl.pods), created.Seconds())
	if err := waitPodsRunning(ctx, cs, len(wl.pods), 20*time.Minute); err != nil {
		return err
	}
	running := time.Since(t0)
	logf("all %d pods Running %.1fs after the first was created", len(wl.pods), running.Seconds())

	// The baseline: a bare cache of the same kinds, started first so that it has synced before
	// the operator's run; it then lives through the same steady state.
	bm, baseProc, err := startBaseline(ctx, cl, exe)
	if err != nil {
		return err
	}
	logf("bare-cache baseline ready (metrics %s)", bm)

	// A client-side watch of the optimizers tells when each reports all its pods running.
	woCache, err := cache.New(cfg, cache.Options{Scheme: operator.Scheme(),
		ByObject: map[client.Object]cache.ByObject{&kcloudv1alpha1.WorkloadOptimizer{}: {}}})
	if err != nil {
		return err
	}
	if _, err := woCache.GetInformer(ctx, &kcloudv1alpha1.WorkloadOptimizer{}); err != nil {
		return err
	}
	cacheCtx, stopCache := context.WithCancel(ctx)
	defer stopCache()
	go func() { _ = woCache.Start(cacheCtx) }()
	if !woCache.WaitForCacheSync(ctx) {
		return errors.New("watching WorkloadOptimizers: cache did not sync")
	}

	args := []string{"--reoptimize-interval=" + c.reoptimize.String(), fmt.Sprintf("--workers=%d", c.workers)}
	pprofURL := ""
	if c.pprofDir != "" {
		port, err := devcluster.FreePort()
		if err != nil {
			return err
		}
		args = append(args, fmt.Sprintf("--pprof-bind-address=127.0.0.1:%d", port))
		pprofURL = fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", port)
		if err := os.MkdirAll(c.pprofDir, 0o755); err != nil {
			return err
		}
	}
	logf("starting kcloud-operator %s", strings.Join(args, " "))
	if c.memoryLimit != "" {
		// Only the operator inherits it: the control plane and the baseline started earlier.
		logf("the operator runs with GOMEMLIMIT=%s", c.memoryLimit)
		if err := os.Setenv("GOMEMLIMIT", c.memoryLimit); err != nil {
			return err
		}
	}
	opStart := time.Now()
	err = cl.StartOperator(ctx, c.operator, args...)
	_ = os.Unsetenv("GOMEMLIMIT")
	if err != nil {
		return err
	}
	opProc := cl.Processes[len(cl.Processes)-1]
	logf("kcloud-operator ready (caches synced) after %.1fs; metrics %s", time.Since(opStart).Seconds(), cl.OperatorMetrics)
	if err := waitSynced(ctx, woCache, len(wl.optimizers), c.podsPer, opProc, 30*time.Minute, opStart); err != nil {
		return err
	}
	initialSync := time.Since(opStart)
	stopCache() // the benchmark's own watch is done: it would only add load from here on
	logf("initial sync: every optimizer reports runningReplicas=%d after %.1fs", c.podsPer, initialSync.Seconds())

	logf("settling for %s, then a steady-state window of %s", c.settle, c.steady)
	if err := sleep(ctx, c.settle); err != nil {
		return err
	}
	before, err := scrape(cl.OperatorMetrics)
	if err != nil {
		return fmt.Errorf("operator metrics: %w", err)
	}
	baseBefore, err := scrape(bm)
	if err != nil {
		return fmt.Errorf("baseline metrics: %w", err)
	}
	windowStart := time.Now()
	var profiled sync.WaitGroup
	if pprofURL != "" {
		profiled.Add(1)
		go func() {
			defer profiled.Done()
			if err := fetch(pprofURL+"profile?seconds=30", filepath.Join(c.pprofDir, "operator.cpu.pprof")); err != nil {
				logf("CPU profile: %v", err)
			}
		}()
	}
	// The resident set is read from /proc every sampleEvery (the same figure as
	// process_resident_memory_bytes, without the cost of a scrape); the Go heap from a scrape of the
	// metrics every scrapeEvery, a usual Prometheus interval: the operator exports series per
	// optimizer, and scraping them every few seconds would itself be a load.
	var opSamples, baseSamples []memSample
	lastScrape := time.Time{}
	for {
		if !devcluster.Alive(opProc.PID) {
			return fmt.Errorf("kcloud-operator exited during the steady state; its log %s", opProc.Log)
		}
		op, base := memSample{rss: rssOf(opProc.PID), heap: math.NaN()}, memSample{rss: rssOf(baseProc.PID), heap: math.NaN()}
		if time.Since(lastScrape) >= scrapeEvery {
			lastScrape = time.Now()
			if s, err := sampleMemory(cl.OperatorMetrics); err == nil {
				op.heap = s.heap
			} else {
				logf("scraping the operator's metrics: %v", err)
			}
			if s, err := sampleMemory(bm); err == nil {
				base.heap = s.heap
			} else {
				logf("scraping the baseline's metrics: %v", err)
			}
			logf("steady state %3.0fs: operator RSS %.1f MiB, heap in use %.1f MiB; bare cache RSS %.1f MiB",
				time.Since(windowStart).Seconds(), op.rss/mib, op.heap/mib, base.rss/mib)
		}
		opSamples, baseSamples = append(opSamples, op), append(baseSamples, base)
		if time.Since(windowStart)+c.sampleEvery >= c.steady {
			break
		}
		if err := sleep(ctx, c.sampleEvery); err != nil {
			return err
		}
	}
	if err := sleep(ctx, time.Until(windowStart.Add(c.steady))); err != nil {
		return err
	}
	after, err := scrape(cl.OperatorMetrics)
	if err != nil {
		return fmt.Errorf("operator metrics: %w", err)
	}
	baseAfter, err := scrape(bm)
	if err != nil {
		return fmt.Errorf("baseline metrics: %w", err)
	}
	window := time.Since(windowStart)
	profiled.Wait()
	if pprofURL != "" {
		if err := fetch(pprofURL+"heap", filepath.Join(c.pprofDir, "operator.heap.pprof")); err != nil {
			logf("heap profile: %v", err)
		}
		logf("profiles saved in %s", c.pprofDir)
	}
	if s, err := sampleMemory(cl.OperatorMetrics); err == nil {
		opSamples = append(opSamples, memSample{rss: rssOf(opProc.PID), heap: s.heap})
	}
	if s, err := sampleMemory(bm); err == nil {
		baseSamples = append(baseSamples, memSample{rss: rssOf(baseProc.PID), heap: s.heap})
	}
	if c.keepLogs != "" {
		keep(c.keepLogs, cl)
	}
	errLines := countErrors(opProc.Log)

	return report(c, reportData{
		optimizers: len(wl.optimizers), pods: len(wl.pods), nodes: len(nodes.Items),
		podsCreated: created, podsRunning: running, initialSync: initialSync, window: window,
		before: before, after: after, baseBefore: baseBefore, baseAfter: baseAfter,
		opSamples: opSamples, baseSamples: baseSamples, errLines: errLines,
		optimizerMix: wl.optimizerMix(), podMix: wl.podMix(),
	})
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// parallel runs f(0..n-1) on workers goroutines, logging progress, and returns the first error.
func parallel(ctx context.Context, n, workers int, what string, f func(int) error) error {
	var next, done atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	step := int64(max(1, n/5))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				var err error
				for attempt := 1; attempt <= 5; attempt++ {
					if err = f(i); err == nil || apierrors.IsAlreadyExists(err) {
						err = nil
						break
					}
					// A loaded API server times out or throttles now and then: try again.
					time.Sleep(time.Duration(attempt) * time.Second)
				}
				if err != nil {
					once.Do(func() { first = fmt.Errorf("creating %s #%d: %w", what, i, err) })
					cancel()
					return
				}
				if d := done.Add(1); d%step == 0 {
					logf("  %d of %d %s created", d, n, what)
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// waitPodsRunning waits until n pods of the benchmark's namespaces are Running. The API server
// filters the pods that are not (from its watch cache), so each poll is small once most run.
func waitPodsRunning(ctx context.Context, cs kubernetes.Interface, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := -1
	for {
		list, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0",
			LabelSelector: kube.LabelOptimizer, FieldSelector: "status.phase!=Running"})
		if err == nil {
			if len(list.Items) == 0 {
				all, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0", LabelSelector: kube.LabelOptimizer,
					FieldSelector: "status.phase=Running"})
				if err == nil && len(all.Items) >= n {
					return nil
				}
			} else if len(list.Items) != last {
				last = len(list.Items)
				logf("  %d pods not Running yet", last)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pods not Running after %s (%d left; last error %v)", timeout, last, err)
		}
		if err := sleep(ctx, 3*time.Second); err != nil {
			return err
		}
	}
}

// waitSynced waits until every optimizer's status says all its pods run.
func waitSynced(ctx context.Context, c cache.Cache, n int, podsPer int, op *devcluster.Process, timeout time.Duration, since time.Time) error {
	deadline := time.Now().Add(timeout)
	lastLog := time.Time{}
	for {
		list := &kcloudv1alpha1.WorkloadOptimizerList{}
		if err := c.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
			return err
		}
		done := 0
		for i := range list.Items {
			if list.Items[i].Status.RunningReplicas == int32(podsPer) {
				done++
			}
		}
		if done >= n {
			return nil
		}
		if time.Since(lastLog) >= 10*time.Second {
			logf("  %d of %d optimizers report runningReplicas=%d (%.0fs since the operator started)", done, n, podsPer, time.Since(since).Seconds())
			lastLog = time.Now()
		}
		if !devcluster.Alive(op.PID) {
			return fmt.Errorf("kcloud-operator exited during the initial sync; its log %s", op.Log)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d optimizers synced after %s", done, n, timeout)
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

// startBaseline runs this binary in --baseline-cache mode as part of the cluster and waits until
// its caches have synced; it returns its metrics URL.
func startBaseline(ctx context.Context, cl *devcluster.Cluster, exe string) (string, *devcluster.Process, error) {
	mport, err := devcluster.FreePort()
	if err != nil {
		return "", nil, err
	}
	pport, err := devcluster.FreePort()
	if err != nil {
		return "", nil, err
	}
	if err := cl.Start(exe, "bare-cache", "--baseline-cache", "--kubeconfig="+cl.Kubeconfig,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", mport), fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", pport)); err != nil {
		return "", nil, err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", pport))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return fmt.Sprintf("http://127.0.0.1:%d/metrics", mport), cl.Processes[len(cl.Processes)-1], nil
			}
		}
		if time.Now().After(deadline) {
			return "", nil, fmt.Errorf("bare-cache baseline not ready after 5 minutes (log %s)", filepath.Join(cl.Dir, "bare-cache.log"))
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return "", nil, err
		}
	}
}

// runBaselineCache is the child mode: a controller-runtime manager with controller-runtime's
// default cache settings, informers for the operator's kinds and nothing else.
func runBaselineCache(kubeconfig, metricsAddr, probeAddr string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: operator.Scheme(), HealthProbeBindAddress: probeAddr,
		Metrics: metricsserver.Options{BindAddress: metricsAddr}})
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	for _, obj := range []client.Object{&corev1.Pod{}, &corev1.Node{}, &kcloudv1alpha1.WorkloadOptimizer{},
		&kcloudv1alpha1.CostPolicy{}, &kcloudv1alpha1.PowerPolicy{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("caches not synced")
		}
		return nil
	}); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// The workload.

var workloadTypes = []kcloudv1alpha1.WorkloadType{kcloudv1alpha1.WorkloadTraining, kcloudv1alpha1.WorkloadServing,
	kcloudv1alpha1.WorkloadInference, kcloudv1alpha1.WorkloadBatch}

// GPU shares of the share pods, in 1/1000 of a device.
var shares = []int64{100, 125, 150, 200}

type workload struct {
	optimizers []*kcloudv1alpha1.WorkloadOptimizer
	pods       []*corev1.Pod
	whole      []bool // per optimizer: its pods ask for one whole GPU each (else a share)
}

func nsName(i int) string { return fmt.Sprintf("bench-%02d", i) }
func team(i int) string   { return fmt.Sprintf("team-%d", i%5) }

// newWorkload builds the optimizers and their pods (unplaced). Optimizer i is in namespace i mod
// the namespace count; its type cycles over the four kinds; every 3rd has an hourly cost cap,
// every 5th a monthly budget, every 4th (from the 2nd) a power cap; every 12th is a training job
// of whole GPUs, the rest run on GPU shares.
func newWorkload(c config) *workload {
	w := &workload{}
	for i := 0; i < c.optimizers; i++ {
		ns := nsName(i % c.nsCount)
		name := fmt.Sprintf("wo-%04d", i)
		wo := &kcloudv1alpha1.WorkloadOptimizer{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"team": team(i % c.nsCount)}},
			Spec: kcloudv1alpha1.WorkloadOptimizerSpec{
				WorkloadType: workloadTypes[i%len(workloadTypes)],
				Priority:     new(int32(i % 101)),
			},
		}
		if i%3 == 0 {
			wo.Spec.CostConstraints = &kcloudv1alpha1.CostConstraints{MaxCostPerHour: new(40.0)}
		}
		if i%5 == 0 {
			if wo.Spec.CostConstraints == nil {
				wo.Spec.CostConstraints = &kcloudv1alpha1.CostConstraints{}
			}
			wo.Spec.CostConstraints.BudgetLimit = new(20000.0)
			wo.Spec.CostConstraints.BudgetPeriod = kcloudv1alpha1.BudgetPeriod("month")
		}
		if i%4 == 1 {
			wo.Spec.PowerConstraints = &kcloudv1alpha1.PowerConstraints{MaxPowerUsage: new(4000.0), PreferGreen: i%8 == 1}
		}
		whole := i%12 == 0
		w.optimizers = append(w.optimizers, wo)
		w.whole = append(w.whole, whole)
		for k := 0; k < c.podsPer; k++ {
			w.pods = append(w.pods, benchPod(ns, name, i, k, whole))
		}
	}
	return w
}

func benchPod(ns, wo string, i, k int, whole bool) *corev1.Pod {
	req := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(500+(i+k)%3*500), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(int64(1+(i+k)%3)<<30, resource.BinarySI),
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", wo, k), Namespace: ns,
			Labels: map[string]string{kube.LabelOptimizer: wo, "app": wo, "team": team(i)}, Annotations: map[string]string{}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "example.com/bench:1",
			Resources: corev1.ResourceRequirements{Requests: req, Limits: corev1.ResourceList{}}}},
			TerminationGracePeriodSeconds: new(int64)},
	}
	if whole {
		one := *resource.NewQuantity(1, resource.DecimalSI)
		pod.Spec.Containers[0].Resources.Requests[catalog.ResourceNVIDIAGPU] = one
		pod.Spec.Containers[0].Resources.Limits[catalog.ResourceNVIDIAGPU] = one
	} else {
		pod.Annotations[kube.AnnotationGPUMilli] = fmt.Sprint(shares[(i+k)%len(shares)])
	}
	return pod
}

type nodeRoom struct {
	name     string
	cpu, mem int64   // milli-CPU, bytes
	pods     int64   // pod slots
	devices  []int64 // free milli per device
	used     bool
}

// place binds every pod to a node with room, as a scheduler would: whole-GPU pods first (they need
// free devices), then shares best-fit on a device; the search starts at a different node for each
// pod so the workload is spread over the fleet. Share pods get the device index annotation, as
// kcloud-scheduler writes it.
func (w *workload) place(nodes []corev1.Node) error {
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	room := make([]*nodeRoom, 0, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		a := n.Status.Allocatable
		r := &nodeRoom{name: n.Name, cpu: a.Cpu().MilliValue(), mem: a.Memory().Value(), pods: a.Pods().Value()}
		if q, ok := a[catalog.ResourceNVIDIAGPU]; ok {
			for d := int64(0); d < q.Value(); d++ {
				r.devices = append(r.devices, 1000)
			}
		}
		room = append(room, r)
	}
	if len(room) == 0 {
		return errors.New("no fleet nodes")
	}
	order := make([]int, 0, len(w.pods))
	podsPer := len(w.pods) / len(w.optimizers)
	for pass := 0; pass < 2; pass++ {
		for i := range w.pods {
			if w.whole[i/podsPer] == (pass == 0) {
				order = append(order, i)
			}
		}
	}
	for _, i := range order {
		p := w.pods[i]
		cpu := p.Spec.Containers[0].Resources.Requests.Cpu().MilliValue()
		mem := p.Spec.Containers[0].Resources.Requests.Memory().Value()
		share := kube.ShareMilli(p)
		placed := false
		for s := 0; s < len(room) && !placed; s++ {
			r := room[(i*7919+s)%len(room)]
			if r.cpu < cpu || r.mem < mem || r.pods < 1 {
				continue
			}
			dev := -1
			for d, free := range r.devices {
				switch {
				case share == 0 && free == 1000:
					dev = d
				case share > 0 && free >= share && (dev < 0 || free < r.devices[dev]):
					dev = d
				}
				if share == 0 && dev >= 0 {
					break
				}
			}
			if dev < 0 {
				continue
			}
			if share == 0 {
				r.devices[dev] = 0
			} else {
				r.devices[dev] -= share
				p.Annotations[kube.AnnotationGPUIndex] = fmt.Sprint(dev)
			}
			r.cpu, r.mem, r.pods, r.used = r.cpu-cpu, r.mem-mem, r.pods-1, true
			p.Spec.NodeName = r.name
			placed = true
		}
		if !placed {
			return fmt.Errorf("no node has room for pod %s/%s: the fleet is too small for this workload", p.Namespace, p.Name)
		}
	}
	return nil
}

func (w *workload) nodesUsed() int {
	seen := map[string]bool{}
	for _, p := range w.pods {
		seen[p.Spec.NodeName] = true
	}
	return len(seen)
}

func (w *workload) optimizerMix() string {
	var cost, budget, power int
	for _, wo := range w.optimizers {
		if c := wo.Spec.CostConstraints; c != nil && c.MaxCostPerHour != nil {
			cost++
		}
		if c := wo.Spec.CostConstraints; c != nil && c.BudgetLimit != nil {
			budget++
		}
		if wo.Spec.PowerConstraints != nil {
			power++
		}
	}
	return fmt.Sprintf("4 workload types; %d with maxCostPerHour, %d with budgetLimit, %d with maxPowerUsage", cost, budget, power)
}

func (w *workload) podMix() string {
	whole := 0
	for _, p := range w.pods {
		if kube.ShareMilli(p) == 0 {
			whole++
		}
	}
	return fmt.Sprintf("%d with nvidia.com/gpu: 1, %d with GPU shares of %v milli", whole, len(w.pods)-whole, shares)
}

// policies: one cluster-wide CostPolicy and PowerPolicy, and a CostPolicy and a PowerPolicy on a
// fifth of the namespaces each.
func policies(nsCount int) []client.Object {
	var some []string
	for i := 0; i < nsCount; i += 5 {
		some = append(some, nsName(i))
	}
	return []client.Object{
		&kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "bench-cluster-budget"}, Spec: kcloudv1alpha1.CostPolicySpec{
			MaxCostPerHour: new(100000.0), Budget: &kcloudv1alpha1.CostBudget{Amount: 5e7, Period: "month", AlertThresholds: []int32{80, 100}},
			Enforcement: kcloudv1alpha1.EnforcementWarn}},
		&kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "bench-team-budget"}, Spec: kcloudv1alpha1.CostPolicySpec{
			PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: some},
			Budget:       &kcloudv1alpha1.CostBudget{Amount: 1e6, Period: "month"}, SpotPolicy: "avoid", Enforcement: kcloudv1alpha1.EnforcementWarn}},
		&kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "bench-cluster-power"}, Spec: kcloudv1alpha1.PowerPolicySpec{
			MaxPowerWatts: new(5e6), EnergyBudget: &kcloudv1alpha1.EnergyBudget{KilowattHours: 1e7, Period: "month"}, Enforcement: kcloudv1alpha1.EnforcementWarn}},
		&kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "bench-team-carbon"}, Spec: kcloudv1alpha1.PowerPolicySpec{
			PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: some}, PreferGreen: true, MaxCarbonIntensity: new(600.0),
			Enforcement: kcloudv1alpha1.EnforcementWarn}},
	}
}

// Metrics.

const mib = 1 << 20

// scrapeEvery is how often the steady state scrapes the metrics endpoints for the Go heap.
const scrapeEvery = 15 * time.Second

// rssOf reads a process's resident set (VmRSS) in bytes from /proc, NaN when unreadable.
func rssOf(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return math.NaN()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%f kB", &kb); err == nil {
				return kb * 1024
			}
		}
	}
	return math.NaN()
}

type memSample struct{ rss, heap float64 }

func sampleMemory(url string) (memSample, error) {
	fams, err := scrape(url)
	if err != nil {
		return memSample{}, err
	}
	return memSample{rss: value(fams, "process_resident_memory_bytes", nil), heap: value(fams, "go_memstats_heap_inuse_bytes", nil)}, nil
}

func scrape(url string) (map[string]*dto.MetricFamily, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

func matches(m *dto.Metric, match map[string]string) bool {
	for k, v := range match {
		found := false
		for _, l := range m.Label {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// value sums the gauges, counters or untyped series of a family matching the labels.
func value(fams map[string]*dto.MetricFamily, name string, match map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return math.NaN()
	}
	sum := 0.0
	for _, m := range f.Metric {
		if !matches(m, match) {
			continue
		}
		switch {
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum
}

// histogram is cumulative bucket counts by upper bound, summed over matching series.
type histogram struct {
	bounds []float64
	counts []float64
	count  float64
	sum    float64
}

func histogramOf(fams map[string]*dto.MetricFamily, name string, match map[string]string) histogram {
	f := fams[name]
	byBound := map[float64]float64{}
	var h histogram
	if f == nil {
		return h
	}
	for _, m := range f.Metric {
		if m.Histogram == nil || !matches(m, match) {
			continue
		}
		for _, b := range m.Histogram.Bucket {
			byBound[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
		h.count += float64(m.Histogram.GetSampleCount())
		h.sum += m.Histogram.GetSampleSum()
	}
	for b := range byBound {
		h.bounds = append(h.bounds, b)
	}
	sort.Float64s(h.bounds)
	for _, b := range h.bounds {
		h.counts = append(h.counts, byBound[b])
	}
	return h
}

// minus is the histogram of the observations made between an earlier scrape and this one.
func (h histogram) minus(earlier histogram) histogram {
	out := histogram{count: h.count - earlier.count, sum: h.sum - earlier.sum}
	prev := map[float64]float64{}
	for i, b := range earlier.bounds {
		prev[b] = earlier.counts[i]
	}
	for i, b := range h.bounds {
		out.bounds = append(out.bounds, b)
		out.counts = append(out.counts, h.counts[i]-prev[b])
	}
	return out
}

// upperBound is the upper bound of the bucket holding the q-quantile: the quantile is at most this.
// The implicit +Inf bucket (count) counts too.
func (h histogram) upperBound(q float64) float64 {
	if h.count == 0 {
		return math.NaN()
	}
	rank := q * h.count
	for i, b := range h.bounds {
		if h.counts[i] >= rank {
			return b
		}
	}
	return math.Inf(1)
}

// interpolated estimates the q-quantile by linear interpolation inside its bucket, as
// Prometheus's histogram_quantile does.
func (h histogram) interpolated(q float64) float64 {
	if h.count == 0 {
		return math.NaN()
	}
	rank := q * h.count
	prevB, prevC := 0.0, 0.0
	for i, b := range h.bounds {
		if h.counts[i] >= rank {
			if math.IsInf(b, 1) {
				return prevB
			}
			return prevB + (b-prevB)*(rank-prevC)/(h.counts[i]-prevC)
		}
		prevB, prevC = b, h.counts[i]
	}
	return prevB
}

// Reporting.

type reportData struct {
	optimizers, pods, nodes               int
	podsCreated, podsRunning, initialSync time.Duration
	window                                time.Duration
	before, after, baseBefore, baseAfter  map[string]*dto.MetricFamily
	opSamples, baseSamples                []memSample
	errLines                              int
	optimizerMix, podMix                  string
}

func maxOf(s []memSample, f func(memSample) float64) float64 {
	m := math.NaN()
	for _, x := range s {
		if v := f(x); !math.IsNaN(v) && (math.IsNaN(m) || v > m) {
			m = v
		}
	}
	return m
}

func ms(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return fmt.Sprintf("%.1f", v*1000)
}

func report(c config, d reportData) error {
	wo := map[string]string{"controller": "workloadoptimizer"}
	const reconcileTime = "controller_runtime_reconcile_time_seconds"
	whole := histogramOf(d.after, reconcileTime, wo)
	steady := whole.minus(histogramOf(d.before, reconcileTime, wo))
	if steady.count <= 0 {
		return errors.New("no workloadoptimizer reconcile in the steady-state window: the metric is missing or the controller is stuck")
	}
	rss := func(s memSample) float64 { return s.rss }
	heap := func(s memSample) float64 { return s.heap }
	opRSS, baseRSS := maxOf(d.opSamples, rss), maxOf(d.baseSamples, rss)
	opHeap, baseHeap := maxOf(d.opSamples, heap), maxOf(d.baseSamples, heap)
	secs := d.window.Seconds()
	cpu := func(b, a map[string]*dto.MetricFamily) float64 {
		return (value(a, "process_cpu_seconds_total", nil) - value(b, "process_cpu_seconds_total", nil)) / secs
	}
	counter := func(name string, match map[string]string) (float64, float64) {
		w := value(d.after, name, match)
		return w - value(d.before, name, match), w
	}
	errsWin, errsAll := counter("controller_runtime_reconcile_errors_total", wo)
	totWin, totAll := counter("controller_runtime_reconcile_total", wo)

	fmt.Println()
	fmt.Printf("kcloud-operator at scale: %d WorkloadOptimizers, %d pods, %d kwok nodes (profile %s), %d namespaces\n",
		d.optimizers, d.pods, d.nodes, c.profile, c.nsCount)
	fmt.Printf("  optimizers: %s\n", d.optimizerMix)
	fmt.Printf("  pods: %s; bound at creation, no scheduler involved\n", d.podMix)
	fmt.Printf("  policies: 2 CostPolicies and 2 PowerPolicies (one of each cluster-wide, one of each on %d namespaces)\n", (c.nsCount+4)/5)
	fmt.Printf("  operator flags: --reoptimize-interval=%s --workers=%d (accounting interval: the default, 1m)\n", c.reoptimize, c.workers)
	fmt.Printf("  setup: pods created in %.1fs, all Running after %.1fs\n", d.podsCreated.Seconds(), d.podsRunning.Seconds())
	fmt.Printf("  initial_sync_s=%.1f (operator start to every optimizer reporting runningReplicas=%d)\n", d.initialSync.Seconds(), c.podsPer)
	fmt.Printf("  steady state: a %.0fs window starting %s after the initial sync; resident set read from /proc every %s\n",
		secs, c.settle, c.sampleEvery)
	fmt.Printf("  (%d samples), Go heap from a metrics scrape every %s\n", len(d.opSamples), scrapeEvery)
	fmt.Println()
	fmt.Println("workloadoptimizer reconciles (controller_runtime_reconcile_time_seconds)")
	fmt.Printf("  %-44s %14s %14s\n", "", "steady window", "whole run")
	fmt.Printf("  %-44s %14.0f %14.0f\n", "reconciles", totWin, totAll)
	fmt.Printf("  %-44s %14.1f %14s\n", "reconciles per second", totWin/secs, "")
	fmt.Printf("  %-44s %14.1f %14s\n", "  needed to re-evaluate each once per interval", float64(d.optimizers)/c.reoptimize.Seconds(), "")
	fmt.Printf("  %-44s %14.1f %14s\n", "  each optimizer re-evaluated (times, mean)", totWin/float64(d.optimizers), "")
	fmt.Printf("  %-44s %14.0f %14s\n", "queue depth at the end of the window", value(d.after, "workqueue_depth", wo), "")
	fmt.Printf("  %-44s %14.0f %14.0f\n", "reconcile errors", errsWin, errsAll)
	fmt.Printf("  %-44s %14s %14s\n", "mean (ms)", ms(steady.sum/steady.count), ms(whole.sum/whole.count))
	fmt.Printf("  %-44s %14s %14s\n", "p50 bucket upper bound (ms)", ms(steady.upperBound(0.5)), ms(whole.upperBound(0.5)))
	fmt.Printf("  %-44s %14s %14s\n", "p99 bucket upper bound (ms)", ms(steady.upperBound(0.99)), ms(whole.upperBound(0.99)))
	fmt.Printf("  %-44s %14s %14s\n", "p99 interpolated in its bucket (ms)", ms(steady.interpolated(0.99)), ms(whole.interpolated(0.99)))
	for _, ctl := range []string{"costpolicy", "powerpolicy"} {
		h := histogramOf(d.after, reconcileTime, map[string]string{"controller": ctl})
		if h.count > 0 {
			fmt.Printf("  %-44s %14s %14s\n", ctl+" p99 bucket upper bound (ms, for reference)", "", ms(h.upperBound(0.99)))
		}
	}
	fmt.Println()
	fmt.Println("memory in steady state (max of the samples) and CPU over the window")
	fmt.Printf("  %-44s %14s %14s %8s\n", "", "kcloud-operator", "bare cache", "ratio")
	fmt.Printf("  %-44s %14.1f %14.1f %8.2f\n", "resident set, max (MiB)", opRSS/mib, baseRSS/mib, opRSS/baseRSS)
	fmt.Printf("  %-44s %14.1f %14.1f %8.2f\n", "Go heap in use, max (MiB)", opHeap/mib, baseHeap/mib, opHeap/baseHeap)
	fmt.Printf("  %-44s %14.2f %14.2f %8s\n", "CPU (cores, mean)", cpu(d.before, d.after), cpu(d.baseBefore, d.baseAfter), "")
	fmt.Printf("  operator log: %d error lines\n", d.errLines)
	fmt.Println("  (bare cache: controller-runtime's default informers for pods, nodes, WorkloadOptimizers, CostPolicies and")
	fmt.Println("   PowerPolicies, no transforms, no reconcilers; the operator drops managedFields and trims pods in its cache)")
	fmt.Println()
	fmt.Println("reconcile_p99_ms is the upper bound of the histogram bucket holding the 99th percentile of the steady-state")
	fmt.Println("window's reconciles (the p99 is at most this); memory_mib is the operator's largest resident set in the window.")
	fmt.Printf("memory_ratio_vs_bare_cache=%.2f initial_sync_s=%.1f\n", opRSS/baseRSS, d.initialSync.Seconds())
	p99 := steady.upperBound(0.99)
	p99s := "+Inf"
	if !math.IsInf(p99, 1) {
		p99s = fmt.Sprintf("%g", p99*1000)
	}
	fmt.Printf("memory_mib=%.1f reconcile_p99_ms=%s\n", opRSS/mib, p99s)
	return nil
}

// fetch saves a URL's body to a file.
func fetch(url, file string) error {
	hc := &http.Client{Timeout: 2 * time.Minute}
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := f.ReadFrom(resp.Body); err != nil {
		_ = f.Close() // the copy's error is the one to report
		return err
	}
	return f.Close()
}

func countErrors(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	return strings.Count(string(b), `"level":"error"`)
}

// keep copies the operator's and baseline's logs and final metrics into dir.
func keep(dir string, cl *devcluster.Cluster) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		logf("keeping logs: %v", err)
		return
	}
	for _, name := range []string{"kcloud-operator.log", "bare-cache.log"} {
		if b, err := os.ReadFile(filepath.Join(cl.Dir, name)); err == nil {
			_ = os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
	}
	if resp, err := http.Get(cl.OperatorMetrics); err == nil {
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(dir, "kcloud-operator.metrics.txt"))
		if err == nil {
			_, _ = f.ReadFrom(resp.Body)
			_ = f.Close()
		}
	}
}
