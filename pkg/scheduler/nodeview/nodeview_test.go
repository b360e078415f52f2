package nodeview

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/informers"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/scheduler/internal/schedtest"
)

var (
	t4Node     = schedtest.T4Node
	pod        = schedtest.Pod
	withShare  = schedtest.WithShare
	withDevice = schedtest.WithDevice
	withGPUs   = schedtest.WithGPUs
	nodeInfo   = schedtest.NodeInfo
)

func TestNodeStateCountsSharesWholeAndReserved(t *testing.T) {
	s := New(catalog.Default())
	reserved := pod("r", withShare("300"))
	s.Hold(reserved.UID, "n", 2)
	ni := nodeInfo(t4Node("n", 4, false, false), pod("s", withShare("600"), withDevice("1")), reserved, pod("w", withGPUs(catalog.ResourceNVIDIAGPU, 2)))
	f := s.Facts(ni.Node())
	if f.Err != nil {
		t.Fatal(f.Err)
	}
	n, _ := s.occupancy(ni, f, nil)
	if diff := cmp.Diff([]int64{0, 400, 700, 0}, n.DeviceFree[:n.Devices]); diff != "" {
		t.Errorf("device free (-want +got):\n%s", diff)
	}
	if n.Pods != 3 || n.CPUFree != 48000-6000 {
		t.Errorf("pods %d, cpu free %d", n.Pods, n.CPUFree)
	}
}

// A view is rebuilt when its NodeInfo changes, or, while a share on the node has no device written,
// on every call, so that a share held in flight is seen at once.
func TestViewFollowsGenerationsAndHeldShares(t *testing.T) {
	s := New(catalog.Default())
	ni := nodeInfo(t4Node("n", 2, false, false), pod("a", withShare("500"), withDevice("0")))
	f := s.Facts(ni.Node())
	v := s.View(ni, f)
	if s.View(ni, f) != v {
		t.Error("an unchanged NodeInfo should keep its view")
	}
	share := pod("b", withShare("700"))
	p := model.Pod{CPUMilli: 2000, MemoryMiB: 4096, GPUCount: 1, GPUMilli: 700}
	if got := v.Place(&p, &f.Econ).Alloc.Device; got != 1 {
		t.Errorf("a 700 share on devices with 500 and 1000 free: device %d, want 1", got)
	}
	ni.AddPod(share)
	s.Hold(share.UID, "n", 1)
	v2 := s.View(ni, f)
	if v2 == v || ShareStatus(&p, v2) == nil {
		t.Errorf("with the 700 share held on device 1, another 700 share fits nowhere: %v", v2.Node.DeviceFree[:2])
	}
	s.Release(share.UID)
	if s.View(ni, f) == v2 {
		t.Error("a node with an unannotated share should be viewed anew")
	}
}

func TestFactsCacheKeepsOneEntryPerNode(t *testing.T) {
	c := &Cache{cat: catalog.Default()}
	entries := c.m.len
	node := t4Node("n", 4, false, false)
	f := c.Get(node)
	if c.Get(node) != f {
		t.Error("the same node object should find the same facts")
	}
	// A heartbeat: a new object, the same facts.
	beat := node.DeepCopy()
	beat.ResourceVersion = "2"
	beat.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if c.Get(beat) != f || entries() != 1 {
		t.Errorf("a heartbeat should keep the node's facts under its new object: %d entries", entries())
	}
	for name, change := range map[string]func(*corev1.Node){
		"label":       func(n *corev1.Node) { n.Labels[catalog.LabelCapacityType] = string(catalog.CapacitySpot) },
		"annotation":  func(n *corev1.Node) { n.Annotations = map[string]string{"a": "b"} },
		"taint":       func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}} },
		"allocatable": func(n *corev1.Node) { n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse("3") },
	} {
		base := c.Get(beat)
		updated := beat.DeepCopy()
		change(updated)
		if got := c.Get(updated); got == base || entries() != 1 {
			t.Errorf("%s changed: the node's facts should be worked out again: %d entries", name, entries())
		}
	}
	other := t4Node("m", 4, true, false)
	if c.Get(other).Shape == f.Shape {
		t.Error("an on-demand and a spot node differ in shape")
	}
	// Twins but for a price: the cheaper one must not be pruned as a twin of the other.
	twin, priced := t4Node("p", 4, false, false), t4Node("q", 4, false, false)
	if c.Get(twin).Shape != c.Get(priced).Shape {
		t.Error("two nodes that differ only by name should share a shape")
	}
	priced = priced.DeepCopy()
	priced.Annotations = map[string]string{catalog.AnnotationPricePerHour: "0.01"}
	if c.Get(priced).Shape == c.Get(twin).Shape {
		t.Error("a node with its own price annotation shares a shape with one priced by the catalog")
	}
	// So are twins but for an image (ImageLocality scores it) or a resource no accelerator names.
	imaged := t4Node("r", 4, false, false)
	imaged.Status.Images = []corev1.ContainerImage{{Names: []string{"nvcr.io/nvidia/pytorch:25.01"}, SizeBytes: 9 << 30}}
	storage := t4Node("s", 4, false, false)
	storage.Status.Allocatable = storage.Status.Allocatable.DeepCopy()
	storage.Status.Allocatable[corev1.ResourceEphemeralStorage] = resource.MustParse("100Gi")
	if c.Get(imaged).Shape == c.Get(twin).Shape || c.Get(storage).Shape == c.Get(twin).Shape {
		t.Error("a node with an image, or with ephemeral storage, shares a shape with one without")
	}
	pulled := imaged.DeepCopy()
	pulled.Status.Images = append(pulled.Status.Images, corev1.ContainerImage{Names: []string{"vllm/vllm-openai:v0.9"}, SizeBytes: 8 << 30})
	if c.Get(pulled).Shape == c.Get(imaged).Shape {
		t.Error("a node that pulled an image keeps its old shape")
	}
	for _, n := range []string{"p", "q", "r", "s"} {
		c.Forget(n)
	}
	c.Forget("n")
	c.Forget("m")
	if entries() != 0 {
		t.Errorf("deleted nodes should leave no facts: %d entries", entries())
	}
}

// fakeHandle is a framework handle without informers.
type fakeHandle struct{ fwk.Handle }

func (*fakeHandle) SharedInformerFactory() informers.SharedInformerFactory { return nil }

// Plugins built for one framework handle share one view; another handle has its own.
func TestForSharesOneViewPerHandle(t *testing.T) {
	a, b := &fakeHandle{}, &fakeHandle{}
	sa, err := For(a, catalog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := For(a, catalog.Default()); again != sa {
		t.Error("a second plugin of the profile should get the same view")
	}
	if sb, _ := For(b, catalog.Default()); sb == sa {
		t.Error("another profile should get a view of its own")
	}
}

// The placements a view keeps are those the model works out for each shape, whatever the order of
// the shapes asked for and however many more there are than it keeps.
func TestKeptPlacementsAreTheModels(t *testing.T) {
	s := New(catalog.Default())
	ni := nodeInfo(t4Node("n", 4, false, false), pod("a", withShare("500"), withDevice("0")), pod("w", withGPUs(catalog.ResourceNVIDIAGPU, 1)))
	f := s.Facts(ni.Node())
	v := s.View(ni, f)
	var shapes []model.Pod
	for i := range 3 * placementsKept {
		// Shapes that differ in one field only, next to each other.
		shapes = append(shapes, model.Pod{CPUMilli: 1000, MemoryMiB: 1024, GPUCount: 1, GPUMilli: int64(100 * (1 + i%9))},
			model.Pod{CPUMilli: int64(1000 * (1 + i%5)), MemoryMiB: 1024, GPUCount: 1, GPUMilli: 300})
		if i%3 == 0 {
			shapes = append(shapes, model.Pod{CPUMilli: 500, MemoryMiB: 512}) // a CPU pod between the shares
		}
	}
	for round := range 3 {
		for k := range shapes {
			p := &shapes[(k*(round+1))%len(shapes)]
			a, d := model.PlaceShare(p, &v.Node, s.Types(), model.Fragmentation(&v.Node, s.Types()))
			want := Placement{Alloc: a}
			if !p.IsShare() || a.Device >= 0 {
				want.Candidate = model.NewCandidate(p, &v.Node, a, d, &f.Econ)
			}
			if diff := cmp.Diff(want, v.Place(p, &f.Econ)); diff != "" {
				t.Fatalf("round %d, shape %+v (-model +view):\n%s", round, *p, diff)
			}
		}
	}
}

// A view rebuilt from the previous one counts what a view built from nothing counts: requests are
// taken again only for the same pod objects, so a pod resized in place (a new object, the same
// UID) is read anew.
func TestViewRebuildRereadsChangedPods(t *testing.T) {
	s := New(catalog.Default())
	a, b := pod("a", withGPUs(catalog.ResourceNVIDIAGPU, 1)), pod("b")
	ni := nodeInfo(t4Node("n", 4, false, false), a, b, pod("s", withShare("300"), withDevice("2")))
	f := s.Facts(ni.Node())
	before := s.View(ni, f)
	resized := b.DeepCopy()
	resized.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("7")
	if err := ni.RemovePod(klog.Background(), b); err != nil {
		t.Fatal(err)
	}
	ni.AddPod(resized)
	after := s.View(ni, f)
	if after == before {
		t.Fatal("the view was not rebuilt for a new generation")
	}
	fresh, _ := s.occupancy(ni, f, nil)
	if diff := cmp.Diff(fresh, after.Node); diff != "" {
		t.Errorf("rebuilt view (-from nothing +from the previous view):\n%s", diff)
	}
	if got, want := before.Node.CPUFree-after.Node.CPUFree, int64(7000-2000); got != want {
		t.Errorf("the resize took %d milli-CPU more, want %d (2 -> 7 CPUs)", got, want)
	}
}

// BenchmarkOccupancy times a node's occupancy after one of its eight pods became a new object (a
// bind, a status update), taking the other pods' requests from the previous view ("reuse") and
// reading every pod's ("fresh", the baseline), whose ratio it prints.
func BenchmarkOccupancy(b *testing.B) {
	var reused float64
	for _, mode := range []string{"reuse", "fresh"} {
		b.Run(mode, func(b *testing.B) {
			s := New(catalog.Default())
			var pods []*corev1.Pod
			for i := range 7 {
				pods = append(pods, pod(fmt.Sprintf("daemon-%d", i)))
			}
			pods = append(pods, pod("w", withGPUs(catalog.ResourceNVIDIAGPU, 1)))
			ni := nodeInfo(t4Node("n", 4, false, false), pods...)
			f := s.Facts(ni.Node())
			prev := s.View(ni, f)
			w := pods[len(pods)-1]
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				next := w.DeepCopy()
				_ = ni.RemovePod(klog.Background(), w)
				ni.AddPod(next)
				w = next
				b.StartTimer()
				if mode == "reuse" {
					s.occupancy(ni, f, prev)
				} else {
					s.occupancy(ni, f, nil)
				}
			}
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if mode == "reuse" {
				reused = perOp
			} else if reused > 0 {
				b.ReportMetric(perOp/reused, "fresh/reuse")
			}
		})
	}
}
