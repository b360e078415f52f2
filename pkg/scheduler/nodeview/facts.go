package nodeview

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/model"
)

// Facts are a node's catalog facts and economics, cached per node object, and its latest view.
type Facts struct {
	Facts catalog.NodeFacts
	Econ  model.Economics
	Shape int // nodes with the same shapeKey have the same shape
	// Reservations are the rebalancer's reservations written on the node (kube.NodeReservations).
	Reservations []kube.Reservation
	// Err says why the catalog cannot read or price the node; the other fields are then partial.
	Err error
	// generation is the catalog's when the facts were worked out: a new catalog (the user's
	// ConfigMap changed) prices every node again.
	generation uint64
	view       atomic.Pointer[View]
}

// Cache is read by the scheduler's parallel Filter and Score workers, several times for every node
// of every cycle: readMostly keeps those reads free of locks. It is keyed by the node object, which
// the informer replaces whenever the node changes: hashing and comparing a pointer is cheaper than
// a name. An entry holds for one catalog generation.
type Cache struct {
	cat catalog.Provider
	m   readMostly

	mu     sync.Mutex
	byName map[string]*corev1.Node // the object each node's facts were last worked out for
	shapes map[string]int          // shapeKey -> shape number, so that a cycle compares numbers, not keys
}

// Get returns the node's facts, worked out again only when the object changed in what they are
// made of.
func (c *Cache) Get(node *corev1.Node) *Facts {
	cat, gen := c.cat.Current()
	if f := c.m.load(node); f != nil && f.generation == gen {
		return f
	}
	c.mu.Lock()
	old := c.byName[node.Name]
	c.mu.Unlock()
	// Most node updates are heartbeats (status conditions): the facts of the previous object hold.
	var f *Facts
	if old != nil && sameFacts(old, node) {
		if of := c.m.load(old); of != nil && of.generation == gen {
			f = of
		}
	}
	if f == nil {
		f = &Facts{generation: gen}
		f.Facts, f.Econ, f.Err = kube.NodeEconomics(cat, node)
		if kube.HasReservations(node) {
			f.Reservations = kube.NodeReservations(node)
		}
		key := shapeKey(node, &f.Econ)
		c.mu.Lock()
		f.Shape = c.shapeNumber(key)
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byName == nil {
		c.byName = map[string]*corev1.Node{}
	}
	// The node's previous object is dropped, so that the cache holds one entry per node.
	if old, ok := c.byName[node.Name]; ok && old != node {
		c.m.delete(old)
	}
	c.byName[node.Name] = node
	c.m.store(node, f)
	return f
}

// sameFacts reports whether two objects of a node have everything the facts are made of in common:
// labels, annotations (reservations), taints, schedulability, capacity, images (its shape).
func sameFacts(a, b *corev1.Node) bool {
	return a.Name == b.Name && maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations) &&
		a.Spec.Unschedulable == b.Spec.Unschedulable && slices.EqualFunc(a.Spec.Taints, b.Spec.Taints, func(x, y corev1.Taint) bool { return x.MatchTaint(&y) && x.Value == y.Value }) &&
		sameResources(a.Status.Allocatable, b.Status.Allocatable) && sameResources(a.Status.Capacity, b.Status.Capacity) &&
		slices.EqualFunc(a.Status.Images, b.Status.Images, func(x, y corev1.ContainerImage) bool {
			return x.SizeBytes == y.SizeBytes && slices.Equal(x.Names, y.Names)
		})
}

func sameResources(a, b corev1.ResourceList) bool {
	return maps.EqualFunc(a, b, func(x, y resource.Quantity) bool { return x.Cmp(y) == 0 })
}

// Forget drops a deleted node's facts.
func (c *Cache) Forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byName[name]; ok {
		c.m.delete(old)
		delete(c.byName, name)
	}
}

// shapeNumber numbers shape keys; c.mu is held.
func (c *Cache) shapeNumber(key string) int {
	if c.shapes == nil {
		c.shapes = map[string]int{}
	}
	n, ok := c.shapes[key]
	if !ok {
		n = len(c.shapes)
		c.shapes[key] = n
	}
	return n
}

// shapeKey identifies nodes that no scheduling rule tells apart but by name: the same labels,
// taints, allocatable resources, images (ImageLocality scores them) and kcloud annotations, and the
// same economics (a price from the catalog ConfigMap or the price source can differ between nodes
// of the same labels).
func shapeKey(n *corev1.Node, e *model.Economics) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%g/%g/%q/%q/%v/%v/%v|", e.PricePerHour, e.CarbonIntensity, e.Unpriced, e.Unpowered, e.Spot, e.Green, e.Device)
	annotations := make([]string, 0, len(n.Annotations))
	for k := range n.Annotations {
		if strings.HasPrefix(k, "kcloud.io/") {
			annotations = append(annotations, k)
		}
	}
	sort.Strings(annotations)
	for _, k := range annotations {
		fmt.Fprintf(&b, "%s=%s,", k, n.Annotations[k])
	}
	keys := make([]string, 0, len(n.Labels))
	for k := range n.Labels {
		if k != corev1.LabelHostname {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s,", k, n.Labels[k])
	}
	for _, t := range n.Spec.Taints {
		fmt.Fprintf(&b, "|%s=%s:%s", t.Key, t.Value, t.Effect)
	}
	resources := make([]string, 0, len(n.Status.Allocatable))
	for r, q := range n.Status.Allocatable {
		resources = append(resources, string(r)+"="+q.String())
	}
	sort.Strings(resources)
	fmt.Fprintf(&b, "|%s", strings.Join(resources, ","))
	for _, img := range n.Status.Images {
		names := slices.Clone(img.Names)
		sort.Strings(names)
		fmt.Fprintf(&b, "|%s:%d", strings.Join(names, ","), img.SizeBytes)
	}
	b.WriteString("|" + fmt.Sprint(n.Spec.Unschedulable))
	return b.String()
}
