package optimizer

import (
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/scheduler/nodeview"
)

// limitUsage is what counts against the shared limits (kube.PodLimit.Shares: optimizer caps,
// enforcing CostPolicy and PowerPolicy caps), kept up to date from pod and node events and from
// Reserve and Unreserve, so that PreFilter reads a limit's usage in constant time instead of
// walking every pod of every node.
//
// Each placed pod (bound, or assumed by this scheduler's Reserve; not finished) is charged its
// attributed cost and power on its node, as model.AttributedCost and AttributedPower work them
// out from the node's catalog facts; a pod on a node not seen yet, or that the catalog cannot
// price, is charged nothing until the node is. Sums are kept per optimizer (its pods share its
// caps) and per policy limit, the latter made by one pass over the placed pods when a policy is
// first asked about or changes, then kept up to date by every pod that comes and goes.
type limitUsage struct {
	mu    sync.Mutex
	nodes *nodeview.Shared

	pods       map[types.UID]*charged
	byNode     map[string]map[types.UID]*charged
	nodeObj    map[string]*corev1.Node
	nodeFacts  map[string]*nodeview.Facts // the facts each node's pods were charged with
	optimizers map[string]*sum            // by namespace/name
	policies   map[string]*pool           // by kube.PodLimit.ID
	priorities map[int32]int              // placed pods by priority, for preemption (mayPreempt)
	catalog    uint64                     // the catalog generation the charges were worked out with
}

// charged is one placed pod and what it is charged.
type charged struct {
	pod         *corev1.Pod
	node        string
	optimizer   string // namespace/name, "" for none
	cost, power float64
}

// sum is what some pods are charged; n counts them, so that a sum whose last pod goes is 0 again,
// with no rounding left over.
type sum struct {
	cost, power float64
	n           int
}

func (s *sum) add(c *charged, sign float64) {
	s.n += int(sign)
	if s.n == 0 {
		s.cost, s.power = 0, 0
		return
	}
	s.cost += sign * c.cost
	s.power += sign * c.power
}

func (s *sum) of(kind model.LimitKind) float64 { return model.LimitRate(kind, s.cost, s.power) }

// pool is the usage of one policy limit: the pods its object's selector covers.
type pool struct {
	spec   policySpec // the policy spec the pool was made for; another one makes it anew
	shares func(*corev1.Pod) bool
	sum
}

// policySpec identifies the spec of a limit's policy: its UID and generation, which the API server
// moves on every spec change and not on status writes (the policies have a status subresource), so
// the operator's accounting, which writes a policy's status every minute, does not make its pools
// anew in a pass over every placed pod (tens of thousands on a large cluster). An object without a
// generation (never stored by an API server) is identified by itself.
type policySpec struct {
	uid        types.UID
	generation int64
	object     any
}

func specOf(l *kube.PodLimit) policySpec {
	var m metav1.Object
	switch {
	case l.PowerPolicy != nil:
		m = l.PowerPolicy
	case l.CostPolicy != nil:
		m = l.CostPolicy
	default:
		return policySpec{}
	}
	if m.GetGeneration() == 0 {
		return policySpec{object: m}
	}
	return policySpec{uid: m.GetUID(), generation: m.GetGeneration()}
}

func newLimitUsage(nodes *nodeview.Shared) *limitUsage {
	u := &limitUsage{nodes: nodes}
	// Pods are charged as the informers deliver them, with the catalog of that moment: only a
	// catalog newer than this one calls for charging them all again (else the first cycle would
	// charge every pod of the cluster twice).
	_, u.catalog = nodes.Catalog()
	u.reset()
	return u
}

func (u *limitUsage) reset() {
	u.pods, u.byNode = map[types.UID]*charged{}, map[string]map[types.UID]*charged{}
	u.nodeObj, u.nodeFacts = map[string]*corev1.Node{}, map[string]*nodeview.Facts{}
	u.optimizers, u.policies, u.priorities = map[string]*sum{}, map[string]*pool{}, map[int32]int{}
}

// counts says whether a pod is placed and counts against limits.
func counts(pod *corev1.Pod) bool {
	return pod.Spec.NodeName != "" && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

// setPod records a pod's current object: charged on its node while it counts, dropped when it no
// longer does. An object without a node leaves a pod this scheduler assumed (Reserve) as it is.
func (u *limitUsage) setPod(pod *corev1.Pod) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if pod.Spec.NodeName == "" {
		return
	}
	u.drop(pod.UID)
	if counts(pod) {
		u.place(pod, pod.Spec.NodeName)
	}
}

// assume charges a pod this scheduler reserved a node for, before its binding is seen.
func (u *limitUsage) assume(pod *corev1.Pod, node string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.drop(pod.UID)
	u.place(pod, node)
}

// forget drops a pod: deleted, or unreserved on the node it was assumed on.
func (u *limitUsage) forget(uid types.UID, node string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if c := u.pods[uid]; c != nil && (node == "" || c.node == node) {
		u.drop(uid)
	}
}

// setNode records a node's current object (nil: deleted) and charges its pods again when its
// facts changed.
func (u *limitUsage) setNode(name string, node *corev1.Node) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var f *nodeview.Facts
	if node == nil {
		delete(u.nodeObj, name)
		delete(u.nodeFacts, name)
	} else {
		// Most updates are heartbeats, whose facts are the previous object's (nodeview.Cache).
		u.nodeObj[name], f = node, u.nodes.Facts(node)
		if u.nodeFacts[name] == f {
			return
		}
		u.nodeFacts[name] = f
	}
	for _, c := range u.byNode[name] {
		u.recharge(c)
	}
}

func (u *limitUsage) place(pod *corev1.Pod, node string) {
	c := &charged{pod: pod, node: node}
	if wo := pod.Labels[kube.LabelOptimizer]; wo != "" {
		c.optimizer = pod.Namespace + "/" + wo
	}
	c.cost, c.power = u.charge(pod, node)
	u.pods[pod.UID] = c
	if u.byNode[node] == nil {
		u.byNode[node] = map[types.UID]*charged{}
	}
	u.byNode[node][pod.UID] = c
	u.priorities[priorityOf(pod)]++
	u.account(c, 1)
}

func (u *limitUsage) drop(uid types.UID) {
	c := u.pods[uid]
	if c == nil {
		return
	}
	u.account(c, -1)
	delete(u.pods, uid)
	delete(u.byNode[c.node], uid)
	if len(u.byNode[c.node]) == 0 {
		delete(u.byNode, c.node)
	}
	if p := priorityOf(c.pod); u.priorities[p] <= 1 {
		delete(u.priorities, p)
	} else {
		u.priorities[p]--
	}
}

func (u *limitUsage) recharge(c *charged) {
	u.account(c, -1)
	c.cost, c.power = u.charge(c.pod, c.node)
	u.account(c, 1)
}

// account adds (sign 1) or takes away (-1) a pod's charges from the sums that hold it.
func (u *limitUsage) account(c *charged, sign float64) {
	if c.optimizer != "" {
		s := u.optimizers[c.optimizer]
		if s == nil {
			s = &sum{}
			u.optimizers[c.optimizer] = s
		}
		s.add(c, sign)
		if s.n == 0 {
			delete(u.optimizers, c.optimizer)
		}
	}
	for _, p := range u.policies {
		if p.shares(c.pod) {
			p.add(c, sign)
		}
	}
}

// charge is a pod's attributed cost and power on a node; nothing where the node is unknown or
// cannot be priced.
func (u *limitUsage) charge(pod *corev1.Pod, node string) (cost, power float64) {
	n := u.nodeObj[node]
	if n == nil {
		return 0, 0
	}
	f := u.nodes.Facts(n)
	u.nodeFacts[node] = f
	return chargeOn(pod, n, f)
}

// chargeOn is a pod's attributed cost and power on a node with the given facts; nothing on a node
// the catalog cannot price.
func chargeOn(pod *corev1.Pod, n *corev1.Node, f *nodeview.Facts) (cost, power float64) {
	if f.Err != nil {
		return 0, 0
	}
	p := kube.PodRequest(pod)
	alloc := n.Status.Allocatable
	capacity := model.NewNode(f.Facts.AcceleratorModel, alloc.Cpu().MilliValue(), alloc.Memory().Value()>>20, f.Facts.AcceleratorCount)
	return model.AttributedCost(&p, &capacity, &f.Econ), model.AttributedPower(&p, &capacity, &f.Econ)
}

// of returns what counts against a shared limit, but the pod self.
func (u *limitUsage) of(l *kube.PodLimit, self types.UID) float64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.syncCatalog()
	var s sum
	switch {
	case l.Optimizer != nil:
		if o := u.optimizers[l.Optimizer.Namespace+"/"+l.Optimizer.Name]; o != nil {
			s = *o
		}
	default:
		s = u.pool(l).sum
	}
	if c := u.pods[self]; c != nil && l.Shares(c.pod) {
		s.add(c, -1)
	}
	return s.of(l.Kind)
}

// pool returns the policy limit's pool, made by a pass over the placed pods when the limit is new
// or its policy's spec changed.
func (u *limitUsage) pool(l *kube.PodLimit) *pool {
	spec := specOf(l)
	if p := u.policies[l.ID]; p != nil && p.spec == spec {
		return p
	}
	p := &pool{spec: spec, shares: l.Shares}
	for _, c := range u.pods {
		if p.shares(c.pod) {
			p.add(c, 1)
		}
	}
	u.policies[l.ID] = p
	return p
}

// syncCatalog charges every pod again when the catalog changed (the user's prices).
func (u *limitUsage) syncCatalog() {
	if _, gen := u.nodes.Catalog(); gen != u.catalog {
		u.catalog = gen
		for _, c := range u.pods {
			u.recharge(c)
		}
	}
}

// dropPolicies forgets the pools when a policy is deleted, so that none is kept (and brought up to
// date by every pod event) for a policy that is gone; the next cycle makes those it needs. A
// policy's update keeps its pool unless its spec changed (pool).
func (u *limitUsage) dropPolicies() {
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.policies)
}

// mayPreempt says whether a pod could preempt a placed pod: some pod of lower priority is placed
// and the pod's policy lets it preempt.
func (u *limitUsage) mayPreempt(pod *corev1.Pod) bool {
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy == corev1.PreemptNever {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	mine := priorityOf(pod)
	for p := range u.priorities {
		if p < mine {
			return true
		}
	}
	return false
}

func priorityOf(pod *corev1.Pod) int32 {
	if pod.Spec.Priority != nil {
		return *pod.Spec.Priority
	}
	return 0
}

// watch keeps the usage in step with the cluster's pods and nodes.
func (u *limitUsage) watch(pods, nodes cache.SharedIndexInformer) error {
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { u.podEvent(obj, false) },
		UpdateFunc: func(_, obj any) { u.podEvent(obj, false) },
		DeleteFunc: func(obj any) { u.podEvent(obj, true) },
	}); err != nil {
		return fmt.Errorf("watching pods for limit usage: %w", err)
	}
	if _, err := nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { u.nodeEvent(obj, false) },
		UpdateFunc: func(_, obj any) { u.nodeEvent(obj, false) },
		DeleteFunc: func(obj any) { u.nodeEvent(obj, true) },
	}); err != nil {
		return fmt.Errorf("watching nodes for limit usage: %w", err)
	}
	return nil
}

func (u *limitUsage) podEvent(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	switch {
	case !ok:
	case deleted:
		u.forget(pod.UID, "")
	default:
		u.setPod(pod)
	}
}

func (u *limitUsage) nodeEvent(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	node, ok := obj.(*corev1.Node)
	switch {
	case !ok:
	case deleted:
		u.setNode(node.Name, nil)
	default:
		u.setNode(node.Name, node)
	}
}
