package schedtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler"
	schedulerapi "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
)

// Scheduler is kcloud-scheduler as cmd/kcloud-scheduler runs it with
// config/scheduler/kcloud-scheduler-config.yaml: kube-scheduler's default plugins and the kcloud
// ones in that file's profile, its cache fed by informers on a fake clientset, and its snapshot
// taken at the start of every cycle. Schedule drives one scheduling and binding cycle at a time,
// as kube-scheduler's scheduleOne does, with one difference: a tie between the best nodes goes to
// the first of them in the snapshot's node list, where kube-scheduler picks one at random, so
// that two runs can be compared pod by pod.
type Scheduler struct {
	Framework framework.Framework
	Client    *fake.Clientset
	t         testing.TB
	ctx       context.Context
	sched     *scheduler.Scheduler
	snapshot  *cache.Snapshot
	waiting   []*cycle // pods held at Permit, in the order they got there
}

// cycle is a pod that passed Reserve, with its cycle's state.
type cycle struct {
	state fwk.CycleState
	pod   *corev1.Pod // the assumed pod, its node set
}

// Result is what one scheduling cycle decided.
type Result struct {
	Node     string      // "" when the pod was not placed
	Status   *fwk.Status // why not; Wait for a pod held at Permit
	Offered  int         // nodes PreFilter left to filter
	Feasible int
	// Scores are the feasible nodes' total scores, when more than one node was feasible.
	Scores map[string]int64
	// Refused counts the offered nodes that Filter refused, by the plugin that refused them.
	Refused map[string]int
}

// configFile is the scheduler configuration the product ships.
func configFile(t testing.TB) string {
	_, here, _, ok := goruntime.Caller(0)
	if !ok {
		t.Fatal("no caller information to find config/scheduler")
	}
	return filepath.Join(filepath.Dir(here), "..", "..", "..", "..", "config", "scheduler", "kcloud-scheduler-config.yaml")
}

// NewScheduler builds kcloud-scheduler over a fake clientset holding objs, with plugins as the
// out-of-tree registry (cmd/kcloud-scheduler's, or wrappers of them) and args merged into the
// plugin args of the shipped configuration, by plugin name and field (a nil value removes the
// field). Nodes and pods are created once the informers run, nodes one at a time in the order
// given, so that the snapshot lists them in an order that depends on objs only; every other
// object is there from the start. Pods in objs should be bound (pods to schedule go through
// Schedule). It returns once the cache holds every node and bound pod.
func NewScheduler(t testing.TB, plugins frameworkruntime.Registry, args map[string]map[string]any, objs ...runtime.Object) *Scheduler {
	t.Helper()
	data, err := os.ReadFile(configFile(t))
	if err != nil {
		t.Fatal(err)
	}
	obj, _, err := scheme.Codecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		t.Fatalf("decoding the scheduler configuration: %v", err)
	}
	cfg := obj.(*schedulerapi.KubeSchedulerConfiguration)
	if len(cfg.Profiles) != 1 {
		t.Fatalf("the scheduler configuration has %d profiles, want 1", len(cfg.Profiles))
	}
	prof := &cfg.Profiles[0]
	for name, fields := range args {
		mergeArgs(t, prof, name, fields)
	}
	var later []runtime.Object
	var others []runtime.Object
	for _, o := range objs {
		switch o.(type) {
		case *corev1.Node, *corev1.Pod:
			later = append(later, o)
		default:
			others = append(others, o)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// The simple tracker: NewClientset's tracks managed fields, which costs a REST mapper built
	// anew for every write, most of a cycle's time.
	cs := fake.NewSimpleClientset(others...)
	cs.PrependReactor("create", "pods", bindingReactor(cs))
	factory := informers.NewSharedInformerFactory(cs, 0)
	snapshot := cache.NewEmptySnapshot()
	recorders := func(string) events.EventRecorderLogger { return &events.FakeRecorder{} }
	sched, err := scheduler.New(ctx, cs, factory, nil, recorders,
		scheduler.WithProfiles(cfg.Profiles...),
		scheduler.WithPercentageOfNodesToScore(cfg.PercentageOfNodesToScore),
		scheduler.WithParallelism(cfg.Parallelism),
		scheduler.WithFrameworkOutOfTreeRegistry(plugins),
		scheduler.WithNodeInfoSnapshot(snapshot))
	if err != nil {
		t.Fatalf("building the scheduler: %v", err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	s := &Scheduler{Framework: sched.Profiles[prof.SchedulerName], Client: cs, t: t, ctx: ctx, sched: sched, snapshot: snapshot}
	// The fake clientset's watches hold 100 events: pods are added in batches, each seen by the
	// cache before the next, which keeps their order in the NodeInfos too.
	nodes, bound, batch := 0, 0, 0
	podsSeen := func() bool {
		n, _ := sched.Cache.PodCount()
		return n == bound
	}
	for _, o := range later {
		if err := cs.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
		switch o := o.(type) {
		case *corev1.Node:
			nodes++
			s.Await("the cache to hold node "+o.Name, func() bool { return sched.Cache.NodeCount() == nodes })
		case *corev1.Pod:
			if o.Spec.NodeName != "" {
				bound++
			}
			if batch++; batch == 50 {
				s.Await("the cache to hold the bound pods", podsSeen)
				batch = 0
			}
		}
	}
	s.Await("the cache to hold every bound pod", podsSeen)
	return s
}

// mergeArgs merges fields into a plugin's args in the profile (they are JSON, as kube-scheduler
// keeps the args of plugins it does not know).
func mergeArgs(t testing.TB, prof *schedulerapi.KubeSchedulerProfile, plugin string, fields map[string]any) {
	t.Helper()
	at := slices.IndexFunc(prof.PluginConfig, func(pc schedulerapi.PluginConfig) bool { return pc.Name == plugin })
	if at < 0 {
		prof.PluginConfig = append(prof.PluginConfig, schedulerapi.PluginConfig{Name: plugin, Args: &runtime.Unknown{}})
		at = len(prof.PluginConfig) - 1
	}
	u, ok := prof.PluginConfig[at].Args.(*runtime.Unknown)
	if !ok {
		t.Fatalf("plugin %s args are %T, not the JSON of an out-of-tree plugin", plugin, prof.PluginConfig[at].Args)
	}
	m := map[string]any{}
	if len(u.Raw) > 0 {
		if err := json.Unmarshal(u.Raw, &m); err != nil {
			t.Fatalf("plugin %s args: %v", plugin, err)
		}
	}
	for k, v := range fields {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	prof.PluginConfig[at].Args = &runtime.Unknown{Raw: raw, ContentType: runtime.ContentTypeJSON}
}

// bindingReactor does what the API server does with a pod's Binding, which the fake clientset
// would otherwise drop: it sets the pod's node.
func bindingReactor(cs *fake.Clientset) k8stesting.ReactionFunc {
	return func(action k8stesting.Action) (bool, runtime.Object, error) {
		create, ok := action.(k8stesting.CreateAction)
		if !ok || action.GetSubresource() != "binding" {
			return false, nil, nil
		}
		b := create.GetObject().(*corev1.Binding)
		obj, err := cs.Tracker().Get(action.GetResource(), b.Namespace, b.Name)
		if err != nil {
			return true, nil, err
		}
		pod := obj.(*corev1.Pod).DeepCopy()
		if pod.Spec.NodeName != "" {
			return true, nil, fmt.Errorf("pod %s/%s is already bound to %s", pod.Namespace, pod.Name, pod.Spec.NodeName)
		}
		pod.Spec.NodeName = b.Target.Name
		return true, b, cs.Tracker().Update(action.GetResource(), pod, pod.Namespace)
	}
}

// Await polls until done, failing the test after ten seconds.
func (s *Scheduler) Await(what string, done func() bool) {
	s.t.Helper()
	if err := wait.PollUntilContextTimeout(s.ctx, time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return done(), nil
	}); err != nil {
		s.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// Nodes is the snapshot's node list, in its order, as of the latest cycle.
func (s *Scheduler) Nodes() []fwk.NodeInfo {
	list, err := s.snapshot.NodeInfos().List()
	if err != nil {
		s.t.Fatal(err)
	}
	return list
}

// Schedule creates the pod and runs its scheduling cycle: PreFilter; Filter, with nominated pods,
// over the nodes PreFilter offers (all of them when it offers no set); PreScore and Score when
// more than one node is feasible; the highest total score wins, the first in the snapshot's node
// list among equals. The winner is assumed in the cache and goes through Reserve and Permit. A pod
// Permit holds waits (Result.Status is Wait) until a later cycle allows it, or Expire rejects it;
// the others, and every held pod allowed meanwhile, are bound at once (PreBind, Bind, PostBind),
// and Schedule returns when the cache has seen their binding, as its informer reports it.
func (s *Scheduler) Schedule(pod *corev1.Pod) Result {
	s.t.Helper()
	created, err := s.Client.CoreV1().Pods(pod.Namespace).Create(s.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		s.t.Fatalf("creating pod %s: %v", pod.Name, err)
	}
	return s.cycle(created)
}

// Retry schedules again a pod that Schedule could not place, after recording the failure on it as
// kube-scheduler does (condition PodScheduled False, reason Unschedulable).
func (s *Scheduler) Retry(namespace, name string) Result {
	s.t.Helper()
	pod, err := s.Client.CoreV1().Pods(namespace).Get(s.ctx, name, metav1.GetOptions{})
	if err != nil {
		s.t.Fatalf("getting pod %s/%s: %v", namespace, name, err)
	}
	if pod.Spec.NodeName != "" {
		s.t.Fatalf("retrying pod %s/%s, bound to %s", namespace, name, pod.Spec.NodeName)
	}
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: "0 nodes are available", LastTransitionTime: metav1.Now()})
	if pod, err = s.Client.CoreV1().Pods(namespace).UpdateStatus(s.ctx, pod, metav1.UpdateOptions{}); err != nil {
		s.t.Fatalf("recording the failure on pod %s/%s: %v", namespace, name, err)
	}
	return s.cycle(pod)
}

// Delete deletes a bound pod, as its controller would or its completion, and returns once the
// cache no longer holds it.
func (s *Scheduler) Delete(namespace, name string) {
	s.t.Helper()
	pod, err := s.Client.CoreV1().Pods(namespace).Get(s.ctx, name, metav1.GetOptions{})
	if err != nil {
		s.t.Fatalf("getting pod %s/%s: %v", namespace, name, err)
	}
	if err := s.Client.CoreV1().Pods(namespace).Delete(s.ctx, name, metav1.DeleteOptions{}); err != nil {
		s.t.Fatalf("deleting pod %s/%s: %v", namespace, name, err)
	}
	s.Await("the cache to drop pod "+name, func() bool {
		_, err := s.sched.Cache.GetPod(pod)
		return err != nil
	})
}

func (s *Scheduler) cycle(pod *corev1.Pod) Result {
	s.t.Helper()
	r, c := s.scheduleOne(pod)
	if c != nil {
		s.waiting = append(s.waiting, c)
	}
	s.bindAllowed()
	return r
}

func (s *Scheduler) scheduleOne(pod *corev1.Pod) (Result, *cycle) {
	s.t.Helper()
	ctx, fw, logger := s.ctx, s.Framework, klog.FromContext(s.ctx)
	if err := s.sched.Cache.UpdateSnapshot(logger, s.snapshot); err != nil {
		s.t.Fatal(err)
	}
	state := framework.NewCycleState()
	pre, st, _ := fw.RunPreFilterPlugins(ctx, state, pod)
	if st.IsRejected() {
		return Result{Status: st}, nil
	}
	if !st.IsSuccess() {
		s.t.Fatalf("PreFilter of %s: %v", pod.Name, st.AsError())
	}
	var feasible []fwk.NodeInfo
	r := Result{Refused: map[string]int{}}
	for _, ni := range s.Nodes() {
		if !pre.AllNodes() && !pre.NodeNames.Has(ni.Node().Name) {
			continue
		}
		r.Offered++
		st := fw.RunFilterPluginsWithNominatedPods(ctx, state, pod, ni)
		if st.Code() == fwk.Error {
			s.t.Fatalf("Filter of %s on %s: %v", pod.Name, ni.Node().Name, st.AsError())
		}
		if st.IsSuccess() {
			feasible = append(feasible, ni)
		} else {
			r.Refused[st.Plugin()]++
		}
	}
	r.Feasible = len(feasible)
	switch len(feasible) {
	case 0:
		r.Status = fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("0/%d nodes are available: %v", r.Offered, r.Refused))
		return r, nil
	case 1:
		r.Node = feasible[0].Node().Name
	default:
		r.Node, r.Scores = s.score(state, pod, feasible)
	}
	return s.reserveAndPermit(state, pod, r)
}

// score runs PreScore and Score over the feasible nodes and returns the best one (the first in
// list order among equals) and every node's total.
func (s *Scheduler) score(state fwk.CycleState, pod *corev1.Pod, feasible []fwk.NodeInfo) (string, map[string]int64) {
	s.t.Helper()
	if st := s.Framework.RunPreScorePlugins(s.ctx, state, pod, feasible); !st.IsSuccess() {
		s.t.Fatalf("PreScore of %s: %v", pod.Name, st.AsError())
	}
	list, st := s.Framework.RunScorePlugins(s.ctx, state, pod, feasible)
	if !st.IsSuccess() {
		s.t.Fatalf("Score of %s: %v", pod.Name, st.AsError())
	}
	scores := make(map[string]int64, len(list))
	best := 0
	for i := range list {
		scores[list[i].Name] = list[i].TotalScore
		if list[i].TotalScore > list[best].TotalScore {
			best = i
		}
	}
	return list[best].Name, scores
}

// reserveAndPermit assumes the pod on r.Node, then runs Reserve and Permit; a pod Permit holds is
// returned with its cycle.
func (s *Scheduler) reserveAndPermit(state fwk.CycleState, pod *corev1.Pod, r Result) (Result, *cycle) {
	s.t.Helper()
	ctx, fw, logger := s.ctx, s.Framework, klog.FromContext(s.ctx)
	assumed := pod.DeepCopy()
	assumed.Spec.NodeName = r.Node
	if err := s.sched.Cache.AssumePod(logger, assumed); err != nil {
		s.t.Fatal(err)
	}
	c := &cycle{state: state, pod: assumed}
	if st := fw.RunReservePluginsReserve(ctx, state, assumed, r.Node); !st.IsSuccess() {
		s.forget(c)
		if !st.IsRejected() {
			s.t.Fatalf("Reserve of %s on %s: %v", pod.Name, r.Node, st.AsError())
		}
		return Result{Status: st, Offered: r.Offered, Feasible: r.Feasible, Refused: r.Refused}, nil
	}
	waits, st := fw.RunPermitPlugins(ctx, state, assumed, r.Node)
	switch {
	case st.IsWait():
		fw.AddWaitingPod(assumed, waits)
		r.Status = st
		return r, c
	case !st.IsSuccess():
		s.forget(c)
		if !st.IsRejected() {
			s.t.Fatalf("Permit of %s on %s: %v", pod.Name, r.Node, st.AsError())
		}
		return Result{Status: st, Offered: r.Offered, Feasible: r.Feasible, Refused: r.Refused}, nil
	}
	s.bind(c)
	return r, nil
}

// forget undoes Reserve and the cache's assumption, as kube-scheduler does for a pod that fails
// after Reserve.
func (s *Scheduler) forget(c *cycle) {
	s.t.Helper()
	s.Framework.RunReservePluginsUnreserve(s.ctx, c.state, c.pod, c.pod.Spec.NodeName)
	if err := s.sched.Cache.ForgetPod(klog.FromContext(s.ctx), c.pod); err != nil {
		s.t.Fatal(err)
	}
}

// bind runs the binding cycle of a pod Permit let through, and waits for the cache to see the
// pod bound.
func (s *Scheduler) bind(c *cycle) {
	s.t.Helper()
	ctx, fw, node := s.ctx, s.Framework, c.pod.Spec.NodeName
	if st := fw.WaitOnPermit(ctx, c.pod); !st.IsSuccess() {
		s.t.Fatalf("WaitOnPermit of %s: %v", c.pod.Name, st.AsError())
	}
	if st := fw.RunPreBindPlugins(ctx, c.state, c.pod, node); !st.IsSuccess() {
		s.t.Fatalf("PreBind of %s on %s: %v", c.pod.Name, node, st.AsError())
	}
	if st := fw.RunBindPlugins(ctx, c.state, c.pod, node); !st.IsSuccess() {
		s.t.Fatalf("Bind of %s on %s: %v", c.pod.Name, node, st.AsError())
	}
	s.Await("the cache to see "+c.pod.Name+" bound", func() bool {
		assumed, err := s.sched.Cache.IsAssumedPod(c.pod)
		return err == nil && !assumed
	})
	fw.RunPostBindPlugins(ctx, c.state, c.pod, node)
}

// bindAllowed binds the held pods that Permit plugins have all allowed since.
func (s *Scheduler) bindAllowed() {
	s.t.Helper()
	s.waiting = slices.DeleteFunc(s.waiting, func(c *cycle) bool {
		wp := s.Framework.GetWaitingPod(c.pod.UID)
		if wp == nil || len(wp.GetPendingPlugins()) > 0 {
			return false
		}
		s.bind(c)
		return true
	})
}

// Expire rejects the held pods that match, as their Permit timeout would, and undoes their
// Reserve; it returns their names.
func (s *Scheduler) Expire(match func(*corev1.Pod) bool) []string {
	s.t.Helper()
	var names []string
	s.waiting = slices.DeleteFunc(s.waiting, func(c *cycle) bool {
		if !match(c.pod) {
			return false
		}
		if wp := s.Framework.GetWaitingPod(c.pod.UID); wp != nil {
			wp.Reject("", "timed out waiting at Permit")
		}
		if st := s.Framework.WaitOnPermit(s.ctx, c.pod); !st.IsRejected() {
			s.t.Fatalf("a held pod %s, rejected: %v", c.pod.Name, st)
		}
		s.forget(c)
		names = append(names, c.pod.Name)
		return true
	})
	return names
}
