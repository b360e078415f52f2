package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/traces"
)

const namespace = "default"

// upstreamName is the upstream kube-scheduler's profile: kube-scheduler as shipped, every plugin
// at its default, its own name so that it schedules only the pods of its round.
const upstreamName = "fidelity-upstream"

// startUpstream starts the upstream kube-scheduler of the control plane's binaries with a plain
// configuration; the cluster stops it with the rest.
func startUpstream(c *devcluster.Cluster, binDir string) error {
	cfg := filepath.Join(c.Dir, upstreamName+".yaml")
	if err := os.WriteFile(cfg, []byte(devcluster.UpstreamSchedulerConfig(c.Kubeconfig, upstreamName, "")), 0o600); err != nil {
		return err
	}
	return c.Start(filepath.Join(binDir, "kube-scheduler"), upstreamName, "--config="+cfg, "--secure-port=0")
}

// outcome is what a scheduler decided for a pod: its node, or unschedulable.
type outcome struct {
	node          string
	device        int
	unschedulable bool
}

// sequencer creates pods one at a time and waits for each to be decided (bound, with its share's
// device written when the scheduler writes one, or reported unschedulable) before the next, so that
// the scheduler receives them in the simulator's order. It learns the outcome from a pod informer,
// not from polling.
type sequencer struct {
	cs         kubernetes.Interface
	needDevice bool // the scheduler writes a share's device (kcloud-scheduler) before binding
	mu         sync.Mutex
	waiting    map[string]chan outcome
}

func newSequencer(ctx context.Context, cs kubernetes.Interface, needDevice bool) (*sequencer, error) {
	s := &sequencer{cs: cs, needDevice: needDevice, waiting: map[string]chan outcome{}}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace))
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.observe(obj) },
		UpdateFunc: func(_, obj any) { s.observe(obj) },
	}); err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("pod informer did not sync")
	}
	return s, nil
}

func (s *sequencer) observe(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	o, decided := s.decided(pod)
	if !decided {
		return
	}
	s.mu.Lock()
	ch, ok := s.waiting[pod.Name]
	delete(s.waiting, pod.Name)
	s.mu.Unlock()
	if ok {
		ch <- o
	}
}

func (s *sequencer) decided(pod *corev1.Pod) (outcome, bool) {
	if pod.Spec.NodeName != "" {
		dev := kube.DeviceIndex(pod)
		if s.needDevice && kube.IsShare(pod) && dev < 0 {
			return outcome{}, false
		}
		return outcome{node: pod.Spec.NodeName, device: dev}, true
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return outcome{unschedulable: true}, true
		}
	}
	return outcome{}, false
}

// place creates one pod and waits for its outcome. An unschedulable pod is deleted then, so that no
// later retry places it out of the sequence's order; it holds nothing.
func (s *sequencer) place(ctx context.Context, pod *corev1.Pod, timeout time.Duration) (outcome, error) {
	ch := make(chan outcome, 1)
	s.mu.Lock()
	s.waiting[pod.Name] = ch
	s.mu.Unlock()
	if _, err := s.cs.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return outcome{}, fmt.Errorf("creating pod %s: %w", pod.Name, err)
	}
	select {
	case o := <-ch:
		if o.unschedulable {
			if err := deletePod(ctx, s.cs, pod.Name); err != nil {
				return o, err
			}
		}
		return o, nil
	case <-time.After(timeout):
		return outcome{}, fmt.Errorf("pod %s: neither bound nor unschedulable after %s", pod.Name, timeout)
	}
}

// round is one scheduler's placement of the sequence, read back from the cluster.
type round struct {
	placements []placement
	pods       []*corev1.Pod // the cluster's pods at the end of the round
	seconds    float64
}

// runRound has a scheduler place the pods one after another; nodes maps node names to fleet indexes.
func runRound(ctx context.Context, cs kubernetes.Interface, who, scheduler string, pods []traces.Pod, nodes map[string]int) (round, error) {
	ctx, cancel := context.WithCancel(ctx) // the round's informer stops with it
	defer cancel()
	seq, err := newSequencer(ctx, cs, scheduler != upstreamName)
	if err != nil {
		return round{}, err
	}
	r := round{placements: make([]placement, len(pods))}
	start, placed := time.Now(), 0
	for i, p := range pods {
		timeout := 30 * time.Second
		if i == 0 {
			timeout = 3 * time.Minute // the scheduler may still be syncing its caches
		}
		o, err := seq.place(ctx, toPod(p, scheduler), timeout)
		if err != nil {
			return r, fmt.Errorf("%s: %w", who, err)
		}
		r.placements[i] = nowhere
		if !o.unschedulable {
			idx, ok := nodes[o.node]
			if !ok {
				return r, fmt.Errorf("%s: pod %s bound to %s, not a node of the fleet", who, p.Name, o.node)
			}
			r.placements[i] = placement{node: idx, device: o.device}
			placed++
		}
		if (i+1)%1000 == 0 || i+1 == len(pods) {
			el := time.Since(start).Seconds()
			fmt.Fprintf(os.Stderr, "%s: %d of %d pods decided, %d placed, %.0fs (%.1f pods/s)\n", who, i+1, len(pods), placed, el, float64(i+1)/el)
		}
	}
	r.seconds = time.Since(start).Seconds()
	list, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return r, err
	}
	for i := range list.Items {
		r.pods = append(r.pods, &list.Items[i])
	}
	return r, nil
}

func deletePod(ctx context.Context, cs kubernetes.Interface, name string) error {
	err := cs.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting pod %s: %w", name, err)
	}
	return nil
}

// deleteAll deletes the pods from many workers (a DeleteCollection of thousands of pods runs on
// one API server worker and can outlast its request timeout) and waits until none is left.
func deleteAll(ctx context.Context, cs kubernetes.Interface, pods []*corev1.Pod) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(pods); i = int(next.Add(1)) - 1 {
				if err := deletePod(ctx, cs, pods[i].Name); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for {
		list, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil || len(list.Items) == 0 {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func shareOf(p traces.Pod) int64 {
	if p.NumGPU == 1 && p.GPUMilli < model.MilliPerGPU {
		return p.GPUMilli
	}
	return 0
}

// toPod is a trace pod as a Kubernetes pod: a share asks for its milli-GPUs by annotation (the
// Alibaba GPU-share convention KcloudGPUShare reads), whole GPUs by the device plugin's resource.
func toPod(p traces.Pod, scheduler string) *corev1.Pod {
	res := corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(p.CPUMilli, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(p.MemoryMiB<<20, resource.BinarySI)}
	ctr := corev1.Container{Name: "c", Image: "example.com/openb:1", Resources: corev1.ResourceRequirements{Requests: res}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: namespace, Annotations: map[string]string{}},
		Spec: corev1.PodSpec{SchedulerName: scheduler, Containers: []corev1.Container{ctr}}}
	if m := shareOf(p); m > 0 {
		pod.Annotations[kube.AnnotationGPUMilli] = strconv.FormatInt(m, 10)
	} else if p.NumGPU > 0 {
		// Limits as a user writes them, and the requests the API server would default from them
		// (the simulator's placement is priced from pods that never reach it).
		gpus := *resource.NewQuantity(int64(p.NumGPU), resource.DecimalSI)
		ctr := &pod.Spec.Containers[0]
		ctr.Resources.Limits = corev1.ResourceList{catalog.ResourceNVIDIAGPU: gpus}
		ctr.Resources.Requests[catalog.ResourceNVIDIAGPU] = gpus
	}
	return pod
}

// taintWatch records the nodes the node lifecycle controller taints not-ready or unreachable while
// the rounds run (their heartbeats came late on a busy machine): a scheduler then keeps off a node
// the simulator, which knows no heartbeats, may choose.
type taintWatch struct {
	mu    sync.Mutex
	nodes map[string]bool
}

func watchTaints(ctx context.Context, cs kubernetes.Interface) (*taintWatch, error) {
	w := &taintWatch{nodes: map[string]bool{}}
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().Nodes().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) {
			if n, ok := obj.(*corev1.Node); ok && withoutLifecycleTaints(n) != n {
				w.mu.Lock()
				w.nodes[n.Name] = true
				w.mu.Unlock()
			}
		},
	}); err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("node informer did not sync")
	}
	return w, nil
}

func (w *taintWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.nodes)
}
