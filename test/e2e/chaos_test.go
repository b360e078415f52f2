package e2e

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
)

// TestChaosAccounting: a stream of covered pods, long and short (some shorter than the accounting
// interval), created and deleted at random under a CostPolicy and a PowerPolicy, while two
// leader-electing operator replicas are killed with SIGKILL in turn, kube-apiserver restarts once and
// a node with pods on it is deleted. The truth is the test's own record of each pod's run (the start
// the apiserver showed, the deletion it returned) times the price table's figures for its node; the
// ledgers must match it. `make chaos` runs it for longer (KCLOUD_CHAOS_DURATION).
func TestChaosAccounting(t *testing.T) {
	dur := 150 * time.Second
	if v := os.Getenv("KCLOUD_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("KCLOUD_CHAOS_DURATION: %v", err)
		}
		dur = d
	}
	ctx := context.Background()
	c := crClient(t)
	ns := namespace(t, "e2e-chaos")
	cp := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "e2e-chaos"},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}},
			Budget: &kcloudv1alpha1.CostBudget{Amount: 1e6, Period: kcloudv1alpha1.BudgetPeriodMonth}}}
	pp := &kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "e2e-chaos"},
		Spec: kcloudv1alpha1.PowerPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{ns}},
			EnergyBudget: &kcloudv1alpha1.EnergyBudget{KilowattHours: 1e6, Period: kcloudv1alpha1.BudgetPeriodMonth}}}
	// The deny stream: pods bound straight to a node of their own (admission is the gate under test;
	// kcloud-scheduler also asks a pod to be affordable for an hour, which compressed pods never are)
	// under a deny-mode budget that about three of them spend in 40% of the run.
	denyNS := namespace(t, "e2e-chaos-deny")
	denyNode := spareNode(t, ctx, "e2e-chaos-deny", 1)
	// The rate of a deny pod as admission makes it (a dry run goes through the mutating webhook).
	template, err := suite.Client.CoreV1().Pods(denyNS).Create(ctx, denyPod(denyNS, "template", denyNode.Name), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatal(err)
	}
	denyRate, _ := expectedFigures(t, template, denyNode)
	deny := &kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "e2e-chaos-deny"},
		Spec: kcloudv1alpha1.CostPolicySpec{PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{denyNS}},
			Enforcement: kcloudv1alpha1.EnforcementDeny,
			Budget:      &kcloudv1alpha1.CostBudget{Amount: 3 * denyRate * (dur * 4 / 10).Hours(), Period: kcloudv1alpha1.BudgetPeriodMonth}}}
	for _, o := range []client.Object{cp, pp, deny} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(context.Background(), o) })
	}
	spare := spareNode(t, ctx, "e2e-chaos-spare", 1)
	spareGone := make(chan struct{})

	ops := newReplicas(t)
	defer ops.restoreSuiteOperator()
	leaders := watchLeader(t, ctx)

	// The streams: each pod runs for a random time, then the test deletes it and records its run.
	rec := &record{runs: map[string]*podRun{}}
	denyRec := &record{runs: map[string]*podRun{}}
	streamCtx, stopStream := context.WithTimeout(ctx, dur)
	defer stopStream()
	var wg sync.WaitGroup
	chaosDone := make(chan struct{})
	go func() { // the chaos, beside the stream: kills in turn, the spare node once, the apiserver once
		defer close(chaosDone)
		nodeAt, apiAt := time.Now().Add(dur/3), time.Now().Add(dur*2/3)
		for streamCtx.Err() == nil {
			switch {
			case !nodeAt.IsZero() && time.Now().After(nodeAt):
				nodeAt = time.Time{}
				if err := suite.Client.CoreV1().Nodes().Delete(ctx, spare.Name, metav1.DeleteOptions{}); err != nil {
					t.Errorf("deleting node %s: %v", spare.Name, err)
				}
				close(spareGone) // its pods are deleted at once, as a drain would
				t.Logf("deleted node %s with its pods", spare.Name)
				time.Sleep(8 * time.Second) // no kill before the leader has charged them (docs/designs/accounting.md)
			case !apiAt.IsZero() && time.Now().After(apiAt):
				apiAt = time.Time{}
				ops.restartAPIServer(ctx)
			default:
				ops.kill(ops.kills % 2)
				time.Sleep(killEvery)
			}
		}
	}()
	rng := rand.New(rand.NewPCG(19, 2026))
	for i := 0; streamCtx.Err() == nil; i++ {
		name := fmt.Sprintf("p%04d", i)
		life := time.Duration(500+rng.IntN(2500)) * time.Millisecond // shorter than the 2s interval
		if rng.IntN(3) > 0 {
			life = time.Duration(5+rng.IntN(30)) * time.Second
		}
		p := kcloudPod(ns, name, gpus(1))
		var gone <-chan struct{}
		if i%7 == 3 {
			select {
			case <-spareGone:
			default:
				p.Spec.NodeName, gone = spare.Name, spareGone // some on the node that goes
			}
		}
		wg.Add(1)
		go func() { defer wg.Done(); rec.run(t, ctx, p, life, gone) }()
		if denyRec.alive() < 3 {
			dp, dlife := denyPod(denyNS, name, denyNode.Name), time.Duration(5+rng.IntN(30))*time.Second
			wg.Add(1)
			go func() { defer wg.Done(); denyRec.run(t, ctx, dp, dlife, nil) }()
		}
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		rec.waitBelow(6)
	}
	wg.Wait()
	<-chaosDone
	changes := leaders()

	// Every pod goes once its ledgers have charged it; then the ledgers must equal the record.
	waitPods(t, ns, 3*time.Minute, func(ps []corev1.Pod) bool { return len(ps) == 0 })
	var spend, kwh float64
	var last time.Time
	for _, r := range rec.runs {
		h := r.end.Sub(r.start).Hours()
		spend += r.usdPerHour * h
		kwh += r.watts * h / 1000
		if r.end.After(last) {
			last = r.end
		}
	}
	eventually(t, time.Minute, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(cp), cp); err != nil {
			return err
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(pp), pp); err != nil {
			return err
		}
		if cp.Status.AccountedUntil == nil || cp.Status.AccountedUntil.Time.Before(last) || pp.Status.AccountedUntil == nil || pp.Status.AccountedUntil.Time.Before(last) {
			return errorf("ledgers not yet past the last deletion " + last.Format(time.RFC3339))
		}
		return nil
	})
	spendErr := 100 * math.Abs(cp.Status.CurrentSpend-spend) / spend
	energyErr := 100 * math.Abs(pp.Status.EnergyThisPeriodKWh-kwh) / kwh
	t.Logf("%d pods ran; ledger spend %.6f USD against %.6f recorded; energy %.6f kWh against %.6f", len(rec.runs), cp.Status.CurrentSpend, spend, pp.Status.EnergyThisPeriodKWh, kwh)

	// The deny-mode budget: what it let through past its amount is the spend of the pods whose
	// creation was sent after the recorded runs had spent it; the pods running then go on (deny
	// refuses new pods, it stops none).
	waitPods(t, denyNS, 3*time.Minute, func(ps []corev1.Pod) bool { return len(ps) == 0 })
	over := denyRec.overshoot(deny.Spec.Budget.Amount)
	if !over.reached {
		t.Fatalf("the deny-mode budget of %.6f USD was never spent (%d pods ran, %.6f USD): the test measured nothing", deny.Spec.Budget.Amount, len(denyRec.runs), over.spend)
	}
	bound := (2 * time.Second).Hours() * over.rateAtCrossing // one accounting interval of the covered pods' rate
	eventually(t, time.Minute, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(deny), deny); err != nil {
			return err
		}
		if u := deny.Status.AccountedUntil; u == nil || u.Time.Before(over.lastEnd) {
			return errorf("deny ledger not yet past the last deletion " + over.lastEnd.Format(time.RFC3339))
		}
		return nil
	})
	denyErr := 100 * math.Abs(deny.Status.CurrentSpend-over.spend) / over.spend
	t.Logf("deny-mode budget %.6f USD spent at %s with %.6f USD/h running; %d pods ran (%.6f USD, ledger %.6f, error %.4f%%), %d refused, %d let through after it (%s), %d evicted; the pods running at the crossing spent %.6f USD more",
		deny.Spec.Budget.Amount, over.crossing.Format(time.RFC3339Nano), over.rateAtCrossing, len(denyRec.runs), over.spend, deny.Status.CurrentSpend, denyErr,
		denyRec.denied, len(over.through), strings.Join(over.through, ", "), denyRec.evicted, over.byRunning)
	fmt.Printf("spend_error_pct=%.4f energy_error_pct=%.4f kills=%d leader_changes=%d overshoot_usd=%.6f\n", spendErr, energyErr, ops.kills, changes, over.usd)
	if spendErr > 0.1 || energyErr > 0.1 || denyErr > 0.1 {
		t.Errorf("spend error %.4f%%, energy error %.4f%%, deny-mode spend error %.4f%%: want at most 0.1%%", spendErr, energyErr, denyErr)
	}
	if over.usd > bound {
		t.Errorf("the deny-mode budget let %.6f USD through past its amount: want at most %.6f (2 s of the %.6f USD/h running when it was spent)", over.usd, bound, over.rateAtCrossing)
	}
	if denyRec.denied == 0 {
		t.Errorf("no pod was refused after the deny-mode budget was spent")
	}
	minKills, minChanges := 3, 1
	if dur >= 10*time.Minute {
		minKills, minChanges = 20, 5
	}
	if ops.kills < minKills || changes < minChanges {
		t.Errorf("%d kills and %d leader changes in %s: want at least %d and %d", ops.kills, changes, dur, minKills, minChanges)
	}
}

// killEvery is the pause between two kills.
const killEvery = 4 * time.Second

// spareNode adds a kwok node like one of the fleet's untainted nodes with at least minGPUs GPUs,
// for the test's own pods, edited as the test asks.
func spareNode(t *testing.T, ctx context.Context, name string, minGPUs int64, edits ...func(*corev1.Node)) *corev1.Node {
	t.Helper()
	nodes, err := suite.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var like *corev1.Node
	for i := range nodes.Items {
		if q := nodes.Items[i].Status.Allocatable[catalog.ResourceNVIDIAGPU]; q.Value() >= max(1, minGPUs) && len(nodes.Items[i].Spec.Taints) == 0 {
			like = &nodes.Items[i]
			break
		}
	}
	if like == nil {
		t.Fatalf("no untainted node with %d GPUs to copy", max(1, minGPUs))
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, Annotations: map[string]string{}}}
	for k, v := range like.Labels {
		n.Labels[k] = v
	}
	n.Labels[corev1.LabelHostname] = n.Name
	for k, v := range like.Annotations {
		n.Annotations[k] = v
	}
	for _, edit := range edits {
		edit(n)
	}
	created, err := suite.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error { // kwok writes the new node too
		cur, err := suite.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Capacity, cur.Status.Allocatable = like.Status.Capacity, like.Status.Allocatable
		created, err = suite.Client.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = suite.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{}) })
	return created
}

// replicas are two leader-electing operators in place of the suite's one, behind a proxy on the
// port the webhook configurations name.
type replicas struct {
	t       *testing.T
	cluster *devcluster.Cluster
	bin     string
	suite   []string // the suite operator's arguments, less those StartOperator sets
	pids    [2]int
	ports   [2]int
	proxy   net.Listener
	kills   int
	stopped bool
	proxyMu sync.Mutex
}

func newReplicas(t *testing.T) *replicas {
	t.Helper()
	proc := operatorProcess(t)
	st, err := devcluster.ReadState(suite.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	r := &replicas{t: t, cluster: &devcluster.Cluster{State: *st, Dir: suite.StateDir}, bin: filepath.Join(suite.BinDir, "kcloud-operator")}
	r.suite = restartArgs(proc)
	webhookPort := ""
	for _, a := range r.suite {
		if v, ok := strings.CutPrefix(a, "--webhook-port="); ok {
			webhookPort = v
		}
	}
	if err := syscall.Kill(proc.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if devcluster.Alive(proc.PID) {
			return errorf("operator still alive")
		}
		return nil
	})
	eventually(t, 30*time.Second, func() error { // the dead operator's socket may linger a moment
		var err error
		r.proxy, err = net.Listen("tcp", "127.0.0.1:"+webhookPort)
		return err
	})
	go r.serveProxy()
	for i := range 2 {
		r.start(i)
	}
	return r
}

// start runs replica i with the suite's arguments, its own webhook port and leader election.
func (r *replicas) start(i int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	var args []string
	for _, a := range r.suite {
		if !strings.HasPrefix(a, "--webhook-port=") {
			args = append(args, a)
		}
	}
	args = append(args, "--webhook-port="+strconv.Itoa(port), "--leader-elect", "--leader-election-namespace="+devcluster.OperatorNamespace,
		"--leader-elect-lease-duration=3s")
	if err := r.cluster.StartOperator(context.Background(), r.bin, args...); err != nil {
		r.t.Fatal(err)
	}
	for _, p := range r.cluster.Processes {
		if p.Name == "kcloud-operator" {
			r.pids[i] = p.PID
		}
	}
	r.proxyMu.Lock()
	r.ports[i] = port
	r.proxyMu.Unlock()
}

// kill sends SIGKILL to replica i and starts it again.
func (r *replicas) kill(i int) {
	_ = syscall.Kill(r.pids[i], syscall.SIGKILL)
	for devcluster.Alive(r.pids[i]) {
		time.Sleep(50 * time.Millisecond)
	}
	r.kills++
	r.start(i)
}

// serveProxy forwards each webhook connection to the first replica that takes it.
func (r *replicas) serveProxy() {
	for {
		in, err := r.proxy.Accept()
		if err != nil {
			return
		}
		go func() {
			defer func() { _ = in.Close() }()
			r.proxyMu.Lock()
			ports := r.ports
			r.proxyMu.Unlock()
			for _, port := range ports {
				out, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
				if err != nil {
					continue
				}
				defer func() { _ = out.Close() }()
				go func() { _, _ = io.Copy(out, in) }()
				_, _ = io.Copy(in, out)
				return
			}
		}()
	}
}

// restartAPIServer stops kube-apiserver and starts it again with the same arguments.
func (r *replicas) restartAPIServer(ctx context.Context) {
	var api *devcluster.Process
	for _, p := range r.cluster.Processes {
		if p.Name == "kube-apiserver" && devcluster.Alive(p.PID) {
			api = p
		}
	}
	if api == nil {
		r.t.Error("no kube-apiserver in the cluster state")
		return
	}
	_ = syscall.Kill(api.PID, syscall.SIGTERM)
	for devcluster.Alive(api.PID) {
		time.Sleep(100 * time.Millisecond)
	}
	if err := r.cluster.Start(filepath.Join(os.Getenv("KCLOUD_BIN_DIR"), "kube-apiserver"), "kube-apiserver", api.Args...); err != nil {
		r.t.Errorf("restarting kube-apiserver: %v", err)
		return
	}
	eventually(r.t, 2*time.Minute, func() error {
		_, err := suite.Client.Discovery().ServerVersion()
		return err
	})
	r.t.Log("kube-apiserver restarted")
}

// stop kills both replicas and closes the proxy.
func (r *replicas) stop() {
	if r.stopped {
		return
	}
	r.stopped = true
	for _, pid := range r.pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for devcluster.Alive(pid) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	_ = r.proxy.Close()
}

// restoreSuiteOperator puts the suite's single operator back for the tests that follow.
func (r *replicas) restoreSuiteOperator() {
	r.stop()
	if err := r.cluster.StartOperator(context.Background(), r.bin, r.suite...); err != nil {
		r.t.Errorf("restarting the suite's operator: %v", err)
	}
}

// watchLeader counts the changes of the operator lease's holder until the returned func is called.
func watchLeader(t *testing.T, ctx context.Context) func() int {
	done := make(chan struct{})
	result := make(chan int, 1)
	go func() {
		holder, changes := "", 0
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				result <- changes
				return
			case <-tick.C:
			}
			var l coordinationv1.Lease
			got, err := suite.Client.CoordinationV1().Leases(devcluster.OperatorNamespace).Get(ctx, "kcloud-operator.kcloud.io", metav1.GetOptions{})
			if err != nil || got.Spec.HolderIdentity == nil || *got.Spec.HolderIdentity == "" {
				continue
			}
			l = *got
			if h := *l.Spec.HolderIdentity; h != holder {
				if holder != "" {
					changes++
				}
				holder = h
			}
		}
	}()
	return func() int { close(done); return <-result }
}

// podRun is one pod's run as the test saw it.
type podRun struct {
	sent       time.Time // when the test sent its creation
	start, end time.Time
	usdPerHour float64
	watts      float64
}

type record struct {
	mu      sync.Mutex
	runs    map[string]*podRun
	running int
	denied  int // creations admission refused
	evicted int // pods deleted before the test deleted them
}

// alive is how many pods of the stream are alive.
func (r *record) alive() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// denyPod is a pod of the deny stream: one GPU, bound to node, gone at once when evicted.
func denyPod(ns, name, node string) *corev1.Pod {
	p := kcloudPod(ns, name, gpus(1))
	p.Spec.NodeName = node
	zero := int64(0)
	p.Spec.TerminationGracePeriodSeconds = &zero
	return p
}

// overshoot is what the recorded runs say of a budget of limit USD.
type overshoot struct {
	reached        bool
	crossing       time.Time // when the runs had spent the limit
	rateAtCrossing float64   // USD/h of the pods running then
	spend          float64   // all the runs
	usd            float64   // spent by the pods whose creation was sent after the crossing
	through        []string  // those pods
	byRunning      float64   // spent after the crossing by the pods running at it
	lastEnd        time.Time
}

// overshoot finds when the runs' spend reached limit: the spend is piecewise linear between the
// runs' starts and ends, so it walks those instants in order.
func (r *record) overshoot(limit float64) overshoot {
	var o overshoot
	var instants []time.Time
	for _, run := range r.runs {
		instants = append(instants, run.start, run.end)
		o.spend += run.usdPerHour * run.end.Sub(run.start).Hours()
		if run.end.After(o.lastEnd) {
			o.lastEnd = run.end
		}
	}
	slices.SortFunc(instants, func(a, b time.Time) int { return a.Compare(b) })
	spent, rate := 0.0, 0.0
	for i, at := range instants {
		rate = 0
		for _, run := range r.runs {
			if !run.start.After(at) && run.end.After(at) {
				rate += run.usdPerHour
			}
		}
		if i+1 == len(instants) || rate == 0 {
			continue
		}
		next := spent + rate*instants[i+1].Sub(at).Hours()
		if next >= limit {
			o.reached = true
			o.crossing = at.Add(time.Duration((limit - spent) / rate * float64(time.Hour)))
			break
		}
		spent = next
	}
	if !o.reached {
		return o
	}
	names := make([]string, 0, len(r.runs))
	for name := range r.runs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		run := r.runs[name]
		switch {
		case run.sent.After(o.crossing):
			o.usd += run.usdPerHour * run.end.Sub(run.start).Hours()
			o.through = append(o.through, name)
		case !run.start.After(o.crossing) && run.end.After(o.crossing):
			o.rateAtCrossing += run.usdPerHour
			o.byRunning += run.usdPerHour * run.end.Sub(o.crossing).Hours()
		}
	}
	return o
}

// waitBelow waits until fewer than n pods of the stream are alive.
func (r *record) waitBelow(n int) {
	for {
		r.mu.Lock()
		k := r.running
		r.mu.Unlock()
		if k < n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run creates a pod, lets it run for life once it is Running, deletes it and records the run.
func (r *record) run(t *testing.T, ctx context.Context, p *corev1.Pod, life time.Duration, gone <-chan struct{}) {
	r.mu.Lock()
	r.running++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running--
		r.mu.Unlock()
	}()
	pods := suite.Client.CoreV1().Pods(p.Namespace)
	run := podRun{sent: time.Now()}
	if _, err := createRetrying(ctx, p); err != nil {
		if apierrors.IsForbidden(err) { // refused by admission
			r.mu.Lock()
			r.denied++
			r.mu.Unlock()
			return
		}
		t.Errorf("creating %s: %v", p.Name, err)
		return
	}
	var started *corev1.Pod
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		got, err := pods.Get(ctx, p.Name, metav1.GetOptions{})
		if err == nil && got.Status.Phase == corev1.PodRunning && got.Status.StartTime != nil {
			// The node's figures from the price table now: the node may be gone at the end.
			node, err := suite.Client.CoreV1().Nodes().Get(ctx, got.Spec.NodeName, metav1.GetOptions{})
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			started = got
			run.start = got.Status.StartTime.Time
			run.usdPerHour, run.watts = expectedFigures(t, got, node)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	evicted := started != nil && r.live(t, ctx, p, life, gone)
	if evicted {
		r.mu.Lock()
		r.evicted++
		r.mu.Unlock()
	}
	zero := int64(0)
	for {
		err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		if err == nil || apierrors.IsNotFound(err) {
			break
		}
		time.Sleep(time.Second) // the apiserver is restarting
	}
	if started == nil {
		return // never ran: nothing to charge
	}
	// The deletion as the apiserver recorded it (the finalizer holds the pod), or the one the pod
	// GC made first when its node went.
	for {
		got, err := pods.Get(ctx, p.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && evicted {
			// Evicted before anything held it (its admission and the finalizer controller both
			// missed it): the run's end is unknown, and so left out of the record.
			t.Logf("pod %s was evicted and gone before the test read its deletion", p.Name)
			return
		}
		if apierrors.IsNotFound(err) {
			t.Errorf("pod %s was gone before the test read its deletion: its finalizer did not hold it", p.Name)
			return
		}
		if err == nil && got.DeletionTimestamp != nil {
			run.end = got.DeletionTimestamp.Time
			r.mu.Lock()
			r.runs[p.Name] = &run
			r.mu.Unlock()
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// live waits out a pod's life, or until it is gone or deleted by someone else (evicted: then true).
func (r *record) live(t *testing.T, ctx context.Context, p *corev1.Pod, life time.Duration, gone <-chan struct{}) bool {
	end := time.After(life)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-end:
			return false
		case <-gone:
			return false
		case <-tick.C:
		}
		got, err := suite.Client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if (err == nil && got.DeletionTimestamp != nil) || apierrors.IsNotFound(err) {
			t.Logf("pod %s/%s deleted by someone else (%v)", p.Namespace, p.Name, err)
			return true
		}
	}
}

// createRetrying creates a pod, trying again while the apiserver is away; a refusal is returned.
func createRetrying(ctx context.Context, p *corev1.Pod) (*corev1.Pod, error) {
	var err error
	for range 120 { // the restarted apiserver takes up to 2 minutes (restartAPIServer)
		var out *corev1.Pod
		if out, err = suite.Client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err == nil || apierrors.IsAlreadyExists(err) {
			return out, nil
		}
		if apierrors.IsForbidden(err) {
			return nil, err
		}
		time.Sleep(time.Second)
	}
	return nil, err
}
