package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/simulator"
)

// The replay of TestPredictiveVersusReactiveAutoscaling. The load is app_111 of the Alibaba DLRM
// inference trace (NSDI'25 "Prism", ../shared/data/traces/alibaba_dlrm_inference_instances.csv, see
// data/SOURCES.md): its GPU instances per 5-minute step as pkg/simulator reads them
// (DLRMWorkloads), a daily morning rise from 1 to 3 instances. One instance is served by 3 replicas
// of our Deployment, so the load is 300 requests/s per instance at a threshold of 100 per replica.
// The time axis is compressed: one recorded 5-minute step is asStep of real time.
const (
	asApp          = "app_111"
	asStep         = 4 * time.Second
	asRecordedStep = 5 * time.Minute
	asPerInstance  = 300.0 // requests/s
	asThreshold    = 100.0 // requests/s per replica
	asHistory      = 576   // two recorded days before the replay: the forecaster's two seasons
	asFirst        = 596   // day 2, 01:40: the replay's first scored step ...
	asLast         = 641   // ... and the step after its last (day 2, 05:25)
	asLeadSeconds  = 5     // minReadySeconds of both Deployments: a new replica serves 5 s (75 recorded minutes / 12) after it is asked for
	asWindow       = 12    // stabilization window, seconds: 3 steps (15 recorded minutes)
)

// asSample is the state of one Deployment at one instant.
type asSample struct {
	at                    time.Time
	replicas, available   int32
	runningPods           int32
	costPerHour           float64 // running pods x catalog cost per replica
	statusCost            float64 // the optimizer's status.currentCost
	statusDesired         int32
	statusForecastMethod  string
	statusLimit, statusRe string
}

// TestPredictiveVersusReactiveAutoscaling replays a recorded daily load through a real Prometheus
// to two Deployments on the local cluster, one under a Predictive and one under a Reactive
// WorkloadOptimizer, autoscaled by the operator binary. The load's history (two recorded days) and
// the replay are written into Prometheus's TSDB with promtool at compressed timestamps; the
// autoscaler seeds its history with range queries and reads the load at each step's start. The test
// samples both Deployments' available replicas (a replica counts minReadySeconds after it is Ready)
// and counts SLO-violation minutes: recorded steps whose last sample has fewer available replicas
// than the load needs. Predictive must have the peak's replicas available by the peak step, reactive
// after it; predictive must violate less; the running replicas never cost more than maxCostPerHour.
func TestPredictiveVersusReactiveAutoscaling(t *testing.T) {
	trace := filepath.Join(suite.Root, "..", "shared", "data", "traces", "alibaba_dlrm_inference_instances.csv")
	if _, err := os.Stat(trace); err != nil {
		t.Skipf("the DLRM trace is not beside the checkout (%v): it comes with ../shared/data", err)
	}
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("the prometheus server is not installed (%v): run `make prometheus`", err)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed (%v): run `make prometheus` (Debian's prometheus package has it)", err)
	}
	workloads, err := simulator.DLRMWorkloads(trace, asRecordedStep)
	if err != nil {
		t.Fatal(err)
	}
	var instances []float64
	for _, w := range workloads {
		if w.Name == asApp {
			instances = w.Demand
		}
	}
	if len(instances) < asLast {
		t.Fatalf("%s: %d steps in the trace, want at least %d", asApp, len(instances), asLast)
	}
	load := func(k int) float64 { return instances[k] * asPerInstance }
	need := func(k int) int32 { return int32(math.Ceil(load(k)/asThreshold - 1e-9)) }

	ctx := context.Background()
	c := crClient(t)
	ns := "e2e-autoscale"
	if _, err := suite.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = suite.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})

	// The replicas run on the one p5.48xlarge node: each asks 1 CPU of its 192, so it is charged
	// 1/192 of the node's price.
	nodes, err := suite.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: catalog.LabelInstanceType + "=p5.48xlarge"})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("want the fleet's one p5.48xlarge node: %v, %v", nodes, err)
	}
	node := &nodes.Items[0]
	requests := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	perReplica, _ := expectedFigures(t, &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c",
		Resources: corev1.ResourceRequirements{Requests: requests}}}}}, node)
	maxCost := 10.5 * perReplica // 10 replicas: above the peak's 9, below what a forecast overshoot asks

	// The operator again, reading a Prometheus on a port chosen now, at one evaluation per
	// compressed step and a season of a compressed day; the suite's operator comes back when the
	// test ends.
	port, err := devcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	promURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	t.Cleanup(restartOperator(t, "--prometheus-url="+promURL, fmt.Sprintf("--autoscale-interval=%s", asStep),
		fmt.Sprintf("--autoscale-season=%s", 288*asStep),
		`--autoscale-throughput-query=sum(kcloud_e2e_demand_rps{namespace="{{.Namespace}}",workload="{{.Target}}"})`))

	// Prometheus: the whole series (history and replay) at compressed timestamps, the replay
	// starting 40 seconds from now, written with promtool before the server starts.
	replayStart := time.Now().Add(40 * time.Second).Truncate(asStep)
	t0 := replayStart.Add(-asFirst * asStep)
	at := func(k int) time.Time { return t0.Add(time.Duration(k) * asStep) }
	dir := t.TempDir()
	var om bytes.Buffer
	om.WriteString("# HELP kcloud_e2e_demand_rps Requests per second of a workload, replayed from the DLRM trace.\n# TYPE kcloud_e2e_demand_rps gauge\n")
	for _, workload := range []string{"predictive", "reactive"} {
		for k := 0; k < asLast+5; k++ {
			fmt.Fprintf(&om, "kcloud_e2e_demand_rps{namespace=%q,workload=%q} %g %d\n", ns, workload, load(k), at(k).Unix())
		}
	}
	om.WriteString("# EOF\n")
	if err := os.WriteFile(filepath.Join(dir, "load.om"), om.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", filepath.Join(dir, "load.om"), filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
	startAutoscalePrometheus(t, promBin, dir, port)

	for _, mode := range []kcloudv1alpha1.ScalingMode{kcloudv1alpha1.ScalingPredictive, kcloudv1alpha1.ScalingReactive} {
		name := strings.ToLower(string(mode))
		labels := map[string]string{"app": name}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(need(asFirst - 1)), MinReadySeconds: asLeadSeconds, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				NodeSelector: map[string]string{catalog.LabelInstanceType: "p5.48xlarge"},
				Containers:   []corev1.Container{{Name: "server", Image: "example.com/dlrm-server:1", Resources: corev1.ResourceRequirements{Requests: requests}}}}}}}
		if err := c.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: kcloudv1alpha1.WorkloadOptimizerSpec{
			WorkloadType:    kcloudv1alpha1.WorkloadInference,
			TargetRef:       &kcloudv1alpha1.TargetReference{Kind: "Deployment", Name: name},
			CostConstraints: &kcloudv1alpha1.CostConstraints{MaxCostPerHour: &maxCost},
			AutoScaling: &kcloudv1alpha1.AutoScaling{MinReplicas: 1, MaxReplicas: 20,
				Metrics: []kcloudv1alpha1.ScalingMetric{{Type: kcloudv1alpha1.MetricThroughput, Threshold: asThreshold}},
				AutoScalingBehavior: kcloudv1alpha1.AutoScalingBehavior{Mode: mode,
					StabilizationWindowSeconds: ptr.To[int32](asWindow), LeadSeconds: ptr.To[int32](asLeadSeconds)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if time.Now().After(replayStart) {
		t.Fatalf("setup took until %s, after the replay's start %s", time.Now().Format(time.TimeOnly), replayStart.Format(time.TimeOnly))
	}

	// Sample both Deployments every 500 ms until the replay's last step ends.
	samples := map[string][]asSample{}
	for time.Now().Before(at(asLast)) {
		for _, name := range []string{"predictive", "reactive"} {
			samples[name] = append(samples[name], sampleDeployment(t, ns, name, perReplica))
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Per recorded step, the last sample of each Deployment within it.
	type row struct{ p, r *asSample }
	rows := map[int]row{}
	stepOf := func(ts time.Time) int { return int(ts.Sub(t0) / asStep) }
	for name, ss := range samples {
		for i := range ss {
			k := stepOf(ss[i].at)
			rw := rows[k]
			if name == "predictive" {
				rw.p = &ss[i]
			} else {
				rw.r = &ss[i]
			}
			rows[k] = rw
		}
	}
	peak, peakStep := 0.0, 0
	for k := asFirst; k < asLast; k++ {
		if load(k) > peak {
			peak, peakStep = load(k), k
		}
	}
	type totals struct {
		violationMin, replicaHours, peakCost float64
		firstAtPeakNeed                      int
		changes, samples, capped             int
		last                                 int32
	}
	tot := map[string]*totals{"predictive": {firstAtPeakNeed: -1}, "reactive": {firstAtPeakNeed: -1}}
	var table strings.Builder
	fmt.Fprintf(&table, "%5s %5s %8s %4s | %-19s | %-19s\n", "step", "time", "load", "need", "predictive rep/avail", "reactive rep/avail")
	for k := asFirst; k < asLast; k++ {
		rw := rows[k]
		if rw.p == nil || rw.r == nil {
			t.Errorf("step %d: no sample (the machine is too loaded for 500 ms sampling)", k)
			continue
		}
		cell := func(name string, s *asSample) string {
			tt := tot[name]
			mark := ""
			if s.available < need(k) {
				tt.violationMin += asRecordedStep.Minutes()
				mark = " SLO"
			}
			if tt.firstAtPeakNeed < 0 && s.available >= need(peakStep) {
				tt.firstAtPeakNeed = k
			}
			tt.replicaHours += float64(s.replicas) * asRecordedStep.Hours()
			if tt.samples > 0 && s.replicas != tt.last {
				tt.changes++
			}
			tt.last = s.replicas
			tt.samples++
			return fmt.Sprintf("%2d/%2d%s", s.replicas, s.available, mark)
		}
		clock := time.Duration(k%288) * asRecordedStep
		fmt.Fprintf(&table, "%5d %02d:%02d %8.0f %4d | %-19s | %-19s\n", k, int(clock.Hours()), int(clock.Minutes())%60, load(k), need(k),
			cell("predictive", rw.p), cell("reactive", rw.r))
	}
	for name, ss := range samples {
		for _, s := range ss {
			tot[name].peakCost = max(tot[name].peakCost, s.costPerHour)
			if s.statusLimit == "maxCostPerHour" {
				tot[name].capped++
			}
			if s.costPerHour > maxCost+1e-9 || s.statusCost > maxCost+1e-6 {
				t.Errorf("%s at %s: %d running replicas cost %.4f USD/h (status.currentCost %.4f), over maxCostPerHour %.4f",
					name, s.at.Format(time.TimeOnly), s.runningPods, s.costPerHour, s.statusCost, maxCost)
			}
			if float64(s.replicas)*perReplica > maxCost+1e-9 {
				t.Errorf("%s at %s: %d replicas asked for at %.4f USD/h each, over maxCostPerHour %.4f", name, s.at.Format(time.TimeOnly), s.replicas, perReplica, maxCost)
			}
		}
	}
	fmt.Fprintf(&table, "\nload: %s of the DLRM trace, %g requests/s per GPU instance, threshold %g per replica; 1 recorded step (5 min) = %s; lead %ds; stabilization %ds; peak %g requests/s (%d replicas) first at step %d\n",
		asApp, asPerInstance, asThreshold, asStep, asLeadSeconds, asWindow, peak, need(peakStep), peakStep)
	fmt.Fprintf(&table, "%-10s %17s %24s %15s %9s %14s %12s %12s\n", "policy", "SLO-violation min", "replica-hours (recorded)", "peak cost USD/h", "cap USD/h", "capped samples", "scale events", "peak need at")
	for _, name := range []string{"predictive", "reactive"} {
		tt := tot[name]
		fmt.Fprintf(&table, "%-10s %17.0f %24.2f %15.4f %9.4f %14d %12d %12d\n", name, tt.violationMin, tt.replicaHours, tt.peakCost, maxCost, tt.capped, tt.changes, tt.firstAtPeakNeed)
	}
	fmt.Fprintf(os.Stderr, "replay (replicas asked / available at the end of each recorded step; SLO: fewer available than needed):\n%s", table.String())

	p, r := tot["predictive"], tot["reactive"]
	if p.firstAtPeakNeed < 0 || p.firstAtPeakNeed > peakStep {
		t.Errorf("predictive had the peak's %d replicas available first at step %d, after the peak at step %d", need(peakStep), p.firstAtPeakNeed, peakStep)
	}
	if r.firstAtPeakNeed >= 0 && r.firstAtPeakNeed <= peakStep {
		t.Errorf("reactive had the peak's %d replicas available at step %d, no later than the peak at step %d: it should lag", need(peakStep), r.firstAtPeakNeed, peakStep)
	}
	if p.violationMin >= r.violationMin {
		t.Errorf("SLO-violation minutes: predictive %.0f, reactive %.0f; want predictive fewer", p.violationMin, r.violationMin)
	}
	last := samples["predictive"][len(samples["predictive"])-1]
	if last.statusForecastMethod != "holt-winters" {
		t.Errorf("predictive status.autoScaling.forecast.method = %q, want holt-winters (history seeded from Prometheus)", last.statusForecastMethod)
	}
	for _, name := range []string{"predictive", "reactive"} {
		if got := asEventReasons(t, ns, name); !strings.Contains(got, kcloudv1alpha1.ReasonScaledUp) {
			t.Errorf("%s: events %q, want ScaledUp", name, got)
		}
	}
}

// sampleDeployment reads a Deployment, its running pods and its optimizer's status.
func sampleDeployment(t *testing.T, ns, name string, perReplica float64) asSample {
	t.Helper()
	ctx := context.Background()
	s := asSample{at: time.Now()}
	d, err := suite.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.replicas, s.available = *d.Spec.Replicas, d.Status.AvailableReplicas
	pods, err := suite.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" {
			s.runningPods++ // a pod being deleted still runs, and still costs, until it is gone
		}
	}
	s.costPerHour = float64(s.runningPods) * perReplica
	wo := &kcloudv1alpha1.WorkloadOptimizer{}
	if err := crClient(t).Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, wo); err != nil {
		t.Fatal(err)
	}
	s.statusCost = wo.Status.CurrentCost
	if a := wo.Status.AutoScaling; a != nil {
		s.statusDesired, s.statusLimit, s.statusRe = a.DesiredReplicas, a.Limit, a.Reason
		if a.Forecast != nil {
			s.statusForecastMethod = a.Forecast.Method
		}
	}
	return s
}

// startAutoscalePrometheus runs Prometheus on loopback over the TSDB in dir/data, scraping nothing.
func startAutoscalePrometheus(t *testing.T, bin, dir string, port int) {
	t.Helper()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte("global:\n  scrape_interval: 15s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	var log bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	eventually(t, time.Minute, func() error {
		select {
		case <-done:
			t.Fatalf("prometheus exited: %s", log.String())
		default:
		}
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("prometheus /-/ready: %s", resp.Status)
		}
		return nil
	})
}

// asEventReasons lists the reasons of the events about an object, comma-separated.
func asEventReasons(t *testing.T, ns, name string) string {
	t.Helper()
	list, err := suite.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name && e.InvolvedObject.Kind == "WorkloadOptimizer" {
			out = append(out, e.Reason)
		}
	}
	return strings.Join(out, ",")
}
