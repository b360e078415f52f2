package e2e

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/kube"
)

// The rebalancing run's settings: short enough for a test, the caps the test checks.
const (
	rebalanceInterval = 6 * time.Second
	capPerNode        = 1
	capPerNamespace   = 2
	capTotal          = 2
	poolLabel         = "e2e.kcloud.io/pool"
)

// restartOperator stops the suite's operator (SIGTERM) and starts it again with extra flags; the
// returned function puts the original back.
func restartOperator(t *testing.T, extra ...string) func() {
	t.Helper()
	ctx := context.Background()
	stop := func(p *devcluster.Process) {
		if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, func() error {
			if devcluster.Alive(p.PID) {
				return errorf("operator still running")
			}
			return nil
		})
	}
	start := func(args []string) {
		st, err := devcluster.ReadState(suite.StateDir)
		if err != nil {
			t.Fatal(err)
		}
		cluster := &devcluster.Cluster{State: *st, Dir: suite.StateDir}
		if err := cluster.StartOperator(ctx, filepath.Join(suite.BinDir, "kcloud-operator"), args...); err != nil {
			t.Fatal(err)
		}
	}
	orig := operatorProcess(t)
	keep := restartArgs(orig)
	stop(orig)
	start(append(append([]string{}, keep...), extra...))
	return func() {
		stop(operatorProcess(t))
		start(keep)
	}
}

// poolNodes makes kwok nodes the way the local cluster makes its fleet (devcluster.FleetNodes),
// renamed and labelled into the rebalancing test's pool.
func poolNodes(t *testing.T, prefix string, g devcluster.NodeGroup) []string {
	t.Helper()
	return nodesInPool(t, "rebalance", "e2e-rb-"+prefix, g)
}

// nodesInPool makes the kwok nodes of a node group, named prefix-0, prefix-1, ... and labelled
// e2e.kcloud.io/pool=pool; they are deleted when the test ends.
func nodesInPool(t *testing.T, pool, prefix string, g devcluster.NodeGroup) []string {
	t.Helper()
	profile := "e2e-" + prefix
	devcluster.Profiles[profile] = devcluster.Profile{Groups: func() ([]devcluster.NodeGroup, error) { return []devcluster.NodeGroup{g}, nil }}
	defer delete(devcluster.Profiles, profile)
	nodes, err := devcluster.FleetNodes(profile, catalog.Default())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := range nodes {
		n := &nodes[i]
		n.Name = fmt.Sprintf("%s-%d", prefix, i)
		n.Labels[corev1.LabelHostname] = n.Name
		n.Labels[poolLabel] = pool
		if _, err := suite.Client.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		names = append(names, n.Name)
		t.Cleanup(func() {
			_ = suite.Client.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
		})
	}
	eventually(t, 2*time.Minute, func() error {
		for _, name := range names {
			n, err := suite.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !devcluster.NodeReady(n) {
				return errorf("node " + name + " not ready")
			}
		}
		return nil
	})
	return names
}

func poolDeployment(ns, name, optimizer string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name, kube.LabelOptimizer: optimizer}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			SchedulerName: "kcloud-scheduler",
			NodeSelector:  map[string]string{poolLabel: "rebalance"},
			Containers: []corev1.Container{{Name: "c", Image: "example.com/serve:1", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("4Gi")},
				Limits:   corev1.ResourceList{catalog.ResourceNVIDIAGPU: resource.MustParse("1")}}}}}}}}
}

// eviction is a pod the watcher saw start terminating.
type eviction struct {
	at        time.Time
	pod, node string
	namespace string
	uid       string
}

// disruptionWatch checks, at every change of the namespace's pods and PDBs, that the serving
// Deployment keeps minAvailable ready pods and that the PDB's status never shows fewer healthy
// pods than desired; it records every pod that starts terminating.
type disruptionWatch struct {
	mu           sync.Mutex
	armed        bool
	minAvailable int
	checks       int
	violations   []string
	evictions    []eviction
	seen         map[string]bool
	// runOf is the run of each reservation the rebalancer wrote on a node, by annotation key:
	// the evictions of one run are grouped by it.
	runOf map[string]time.Time
}

func (w *disruptionWatch) start(t *testing.T, ns, app string) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := informers.NewSharedInformerFactoryWithOptions(suite.Client, 0, informers.WithNamespace(ns))
	pods := f.Core().V1().Pods().Informer()
	pdbs := f.Policy().V1().PodDisruptionBudgets().Informer()
	w.seen = map[string]bool{}
	checkPods := func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		available := 0
		for _, o := range pods.GetStore().List() {
			p := o.(*corev1.Pod)
			if p.DeletionTimestamp != nil && !w.seen[p.Name] {
				w.seen[p.Name] = true
				w.evictions = append(w.evictions, eviction{at: time.Now(), pod: p.Name, node: p.Spec.NodeName, namespace: p.Namespace, uid: string(p.UID)})
			}
			if p.Labels["app"] == app && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(p) {
				available++
			}
		}
		if !w.armed {
			return
		}
		w.checks++
		if available < w.minAvailable {
			w.violations = append(w.violations, fmt.Sprintf("%s: %d ready pods of %s, the PDB wants %d", time.Now().Format(time.RFC3339Nano), available, app, w.minAvailable))
		}
	}
	checkPDB := func(o any) {
		pdb, ok := o.(*policyv1.PodDisruptionBudget)
		if !ok {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.armed || pdb.Status.ObservedGeneration != pdb.Generation {
			return
		}
		w.checks++
		if pdb.Status.CurrentHealthy < pdb.Status.DesiredHealthy {
			w.violations = append(w.violations, fmt.Sprintf("%s: PDB %s currentHealthy %d < desiredHealthy %d", time.Now().Format(time.RFC3339Nano),
				pdb.Name, pdb.Status.CurrentHealthy, pdb.Status.DesiredHealthy))
		}
	}
	nodes := informers.NewSharedInformerFactory(suite.Client, 0).Core().V1().Nodes().Informer()
	w.runOf = map[string]time.Time{}
	recordRuns := func(o any) {
		n, ok := o.(*corev1.Node)
		if !ok {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, r := range kube.NodeReservations(n) {
			w.runOf[r.Key] = r.Run
		}
	}
	_, _ = nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: recordRuns, UpdateFunc: func(_, o any) { recordRuns(o) }})
	go nodes.Run(ctx.Done())
	cache.WaitForCacheSync(ctx.Done(), nodes.HasSynced)
	_, _ = pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { checkPods() }, UpdateFunc: func(any, any) { checkPods() }, DeleteFunc: func(any) { checkPods() }})
	_, _ = pdbs.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: checkPDB, UpdateFunc: func(_, o any) { checkPDB(o) }})
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// runs groups evictions by the rebalancing run that made them: the run recorded in the
// reservation written on the destination just before each eviction.
func (w *disruptionWatch) runs(t *testing.T) [][]eviction {
	t.Helper()
	by := map[time.Time][]eviction{}
	for _, e := range w.evictions {
		run, ok := w.runOf[kube.ReservationAnnotationPrefix+e.uid]
		if !ok {
			t.Errorf("pod %s was deleted without a reservation from the rebalancer", e.pod)
			continue
		}
		by[run] = append(by[run], e)
	}
	var starts []time.Time
	for r := range by {
		starts = append(starts, r)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	var out [][]eviction
	for _, r := range starts {
		out = append(out, by[r])
	}
	return out
}

var savesRE = regexp.MustCompile(`moved pod (\S+) from node (\S+) to node (\S+): saves ([0-9.]+) USD/h, ([0-9.]+) W`)

// TestRebalanceToCheaperNodes is issue #8's rebalancing must-show. A serving Deployment (3 replicas,
// a PDB allowing one unavailable) and a training Deployment run on four A100 nodes; four spot T4
// nodes join. The rebalancer (every 6 s, at most 1 eviction per node, 2 per namespace, 2 in all per
// run) moves the serving pods there through the Eviction API; the workload's cost/h drops by the
// sum the rebalancer predicted in its events, to the cent; a watcher finds the PDB respected at
// every pod and PDB change; each run's evictions keep the caps; the training pod never moves.
func TestRebalanceToCheaperNodes(t *testing.T) {
	ctx := context.Background()
	c := crClient(t)
	restore := restartOperator(t, "--rebalance-interval="+rebalanceInterval.String(), "--rebalance-min-saving-usd-per-hour=0.5",
		"--rebalance-restart-time=2m", fmt.Sprintf("--rebalance-max-evictions-per-node=%d", capPerNode),
		fmt.Sprintf("--rebalance-max-evictions-per-namespace=%d", capPerNamespace), fmt.Sprintf("--rebalance-max-evictions-total=%d", capTotal),
		"--rebalance-reservation-ttl=1m")
	t.Cleanup(restore)

	ns := namespace(t, "e2e-rebalance")
	dear := poolNodes(t, "a100", devcluster.NodeGroup{InstanceType: "a2-highgpu-1g", Model: "A100", Accelerators: 1,
		Region: "us-central1", Zone: "us-central1-a", Count: 4})
	for _, wo := range []*kcloudv1alpha1.WorkloadOptimizer{
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadServing}},
		{ObjectMeta: metav1.ObjectMeta{Name: "trainer", Namespace: ns}, Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadTraining}},
	} {
		if err := c.Create(ctx, wo); err != nil {
			t.Fatal(err)
		}
	}
	maxUnavailable := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: policyv1.PodDisruptionBudgetSpec{
		MaxUnavailable: &maxUnavailable, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	if _, err := suite.Client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // kcloud-scheduler's informer sees the optimizers
	for _, d := range []*appsv1.Deployment{poolDeployment(ns, "trainer", "trainer", 1), poolDeployment(ns, "web", "web", 3)} {
		if _, err := suite.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ready := func(app string, want int, nodes []string) func([]corev1.Pod) bool {
		return func(ps []corev1.Pod) bool {
			n := 0
			for i := range ps {
				p := &ps[i]
				if p.Labels["app"] == app && p.DeletionTimestamp == nil && podReady(p) && containsString(nodes, p.Spec.NodeName) {
					n++
				}
			}
			return n == want
		}
	}
	waitPods(t, ns, 2*time.Minute, ready("trainer", 1, dear))
	pods := waitPods(t, ns, 2*time.Minute, ready("web", 3, dear))
	if !ready("web", 3, dear)(pods) {
		t.Fatalf("the serving pods did not all run on the A100 pool: %+v", pods)
	}
	var trainer corev1.Pod
	for _, p := range pods {
		if p.Labels["app"] == "trainer" {
			trainer = p
		}
	}
	if trainer.Name == "" {
		t.Fatal("no training pod")
	}

	// The workload's cost before: three A100 nodes' worth.
	a100 := nodePrice(t, dear[0])
	before := woStatus(t, c, ns, "web", func(s kcloudv1alpha1.WorkloadOptimizerStatus) bool {
		return s.RunningReplicas == 3 && math.Abs(s.CurrentCost-3*a100) < 0.005
	})
	t.Logf("before: web costs %.4f USD/h (3 x %.4f), draws %.1f W on %v", before.CurrentCost, a100, before.CurrentPower, before.AssignedNodes)

	w := &disruptionWatch{minAvailable: 2}
	w.start(t, ns, "web")
	w.mu.Lock()
	w.armed = true
	w.mu.Unlock()

	cheap := poolNodes(t, "t4", devcluster.NodeGroup{InstanceType: "g4dn.xlarge", Model: "T4", Accelerators: 1,
		Region: "us-west-2", Zone: "us-west-2b", Spot: true, Count: 4})
	// The namespace goes before the nodes (cleanups run in reverse).
	t.Cleanup(func() {
		_ = suite.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			if _, err := suite.Client.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
	t4 := nodePrice(t, cheap[0])
	t.Logf("joined: %v at %.4f USD/h each (A100 nodes: %.4f)", cheap, t4, a100)

	pods = waitPods(t, ns, 3*time.Minute, ready("web", 3, cheap))
	if !ready("web", 3, cheap)(pods) {
		t.Fatalf("the serving pods did not all move to the T4 nodes: %+v", podPlaces(pods))
	}
	after := woStatus(t, c, ns, "web", func(s kcloudv1alpha1.WorkloadOptimizerStatus) bool {
		return s.RunningReplicas == 3 && math.Abs(s.CurrentCost-3*t4) < 0.005
	})
	t.Logf("after: web costs %.4f USD/h, draws %.1f W on %v", after.CurrentCost, after.CurrentPower, after.AssignedNodes)

	// The predicted saving: the Rebalanced events on the optimizer, one per eviction.
	var predicted, predictedW float64
	moved := map[string]bool{}
	evs, err := suite.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=" + kcloudv1alpha1.ReasonRebalanced + ",involvedObject.name=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		m := savesRE.FindStringSubmatch(e.Message)
		if m == nil || e.InvolvedObject.Kind != "WorkloadOptimizer" {
			continue
		}
		usd, _ := strconv.ParseFloat(m[4], 64)
		watts, _ := strconv.ParseFloat(m[5], 64)
		predicted += usd
		predictedW += watts
		moved[m[1]] = true
		t.Logf("event: %s", e.Message)
	}
	drop := before.CurrentCost - after.CurrentCost
	t.Logf("cost/h drop %.4f USD/h, predicted %.4f (%d evictions); power drop %.1f W, predicted %.1f W",
		drop, predicted, len(moved), before.CurrentPower-after.CurrentPower, predictedW)
	if len(moved) != 3 {
		t.Errorf("%d Rebalanced events on the optimizer, want 3 (one per serving pod)", len(moved))
	}
	if math.Abs(drop-predicted) >= 0.005 {
		t.Errorf("the workload's cost/h dropped by %.4f USD/h, the rebalancer predicted %.4f (to the cent)", drop, predicted)
	}

	// Disruption budget and caps.
	time.Sleep(2 * rebalanceInterval) // later runs must not evict anything more
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("disruption watch: %d checks, %d violations", w.checks, len(w.violations))
	for _, v := range w.violations {
		t.Error("PDB violated: " + v)
	}
	if w.checks < 10 {
		t.Errorf("the watcher checked only %d times", w.checks)
	}
	for i, run := range w.runs(t) {
		perNode, perNS := map[string]int{}, map[string]int{}
		var names []string
		for _, e := range run {
			perNode[e.node]++
			perNS[e.namespace]++
			names = append(names, e.pod+"@"+e.node)
		}
		t.Logf("run %d (started %s): %d eviction(s) %v", i+1, w.runOf[kube.ReservationAnnotationPrefix+run[0].uid].Format("15:04:05.000"), len(run), names)
		if len(run) > capTotal {
			t.Errorf("run %d: %d evictions, cap %d in total", i+1, len(run), capTotal)
		}
		for n, k := range perNode {
			if k > capPerNode {
				t.Errorf("run %d: %d evictions from node %s, cap %d", i+1, k, n, capPerNode)
			}
		}
		for n, k := range perNS {
			if k > capPerNamespace {
				t.Errorf("run %d: %d evictions in namespace %s, cap %d", i+1, k, n, capPerNamespace)
			}
		}
	}
	if len(w.evictions) != 3 {
		t.Errorf("%d pods evicted, want 3 (the serving pods, once each): %+v", len(w.evictions), w.evictions)
	}
	// The training pod never moved.
	cur, err := suite.Client.CoreV1().Pods(ns).Get(ctx, trainer.Name, metav1.GetOptions{})
	if err != nil || cur.UID != trainer.UID || cur.DeletionTimestamp != nil || cur.Spec.NodeName != trainer.Spec.NodeName || w.seen[trainer.Name] {
		t.Errorf("the training pod %s moved or went: %v", trainer.Name, err)
	}
	// Reservations end once the replacements run.
	eventually(t, 3*rebalanceInterval, func() error {
		for _, name := range cheap {
			n, err := suite.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if kube.HasReservations(n) {
				return errorf("node " + name + " still carries a reservation")
			}
		}
		return nil
	})
}

// woStatus waits until an optimizer's status satisfies ok and returns it.
func woStatus(t *testing.T, c client.Client, ns, name string, ok func(kcloudv1alpha1.WorkloadOptimizerStatus) bool) kcloudv1alpha1.WorkloadOptimizerStatus {
	t.Helper()
	wo := &kcloudv1alpha1.WorkloadOptimizer{}
	eventually(t, 2*time.Minute, func() error {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, wo); err != nil {
			return err
		}
		if !ok(wo.Status) {
			return fmt.Errorf("status: %d running, %.4f USD/h on %v", wo.Status.RunningReplicas, wo.Status.CurrentCost, wo.Status.AssignedNodes)
		}
		return nil
	})
	return wo.Status
}

func podPlaces(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, fmt.Sprintf("%s@%s(%s,deleting=%v)", p.Name, p.Spec.NodeName, p.Status.Phase, p.DeletionTimestamp != nil))
	}
	return out
}
