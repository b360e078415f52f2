package optimizer

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	fwk "k8s.io/kube-scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
	"kcloud.io/optimizer/pkg/scheduler/internal/schedtest"
	"kcloud.io/optimizer/pkg/scheduler/plugins/gang"
	"kcloud.io/optimizer/pkg/scheduler/plugins/gpushare"
	"kcloud.io/optimizer/pkg/scheduler/plugins/priority"
)

// The differential test: random production-like clusters, each scheduled twice through
// kcloud-scheduler as it ships (schedtest.Scheduler: config/scheduler's profile, kube-scheduler's
// default plugins and the kcloud ones, the real cache and snapshot fed by informers), once with
// the candidate index narrowing PreFilter's nodes (narrowCandidates true) and once filtering every
// node; every pod must land on the same node, or be refused, on both. Ties between the best nodes
// go to the first in the snapshot's node list on both sides, and both snapshots list the nodes in
// one order, so a placement is compared by node name, twins included.
//
// A cluster has pools of the catalog's GPU instance types, spot or on-demand, some tainted for a
// team; within a pool, nodes differ by a price or carbon intensity of their own (kcloud
// annotations), a NoSchedule or PreferNoSchedule taint, an image, a cordon. DaemonSet pods run on
// nearly every node (some on a previous revision), static pods on some; about a quarter of the
// nodes run workload pods (whole GPUs, shares with their device written, CPU pods). Pods belong
// to WorkloadOptimizers with cost or power caps, to CostPolicies and PowerPolicies (caps, carbon,
// spot rules), to ReplicaSets (default topology spread), to gangs. Between cycles running pods
// finish (are deleted), and a refused pod is tried again a few pods later, marked as failed the
// way kube-scheduler marks it; such a retry must be offered every node.
//
// Gangs: a pod that KcloudGang's Permit holds stays assumed on its node, as in kube-scheduler,
// until the pod that completes its gang lets every held one bind. A gang that never completes
// (fewer pods come than its size) is rejected at Permit once its last pod has been tried, as its
// timeout would (the pods' Reserve undone), on both sides at the same point of the sequence.
// Preemption (PostFilter) is not run: pods that may preempt are offered every node anyway.

const (
	diffClusters = 24
	diffPods     = 40
	diffSched    = "kcloud-scheduler"
	diffRegion   = "us-west-2"

	diffTrainingImage = "nvcr.io/nvidia/pytorch:24.05-py3"
	diffServingImage  = "vllm/vllm-openai:v0.6.3"
)

// diffInstances are GPU instance types of the catalog, with the product label NVIDIA's feature
// discovery sets on them.
var diffInstances = []struct{ instanceType, product string }{
	{"g4dn.xlarge", "Tesla-T4"}, {"g4dn.12xlarge", "Tesla-T4"}, {"g5.xlarge", "NVIDIA-A10G"},
	{"g5.12xlarge", "NVIDIA-A10G"}, {"p3.8xlarge", "Tesla-V100-SXM2-16GB"},
	{"p4d.24xlarge", "NVIDIA-A100-SXM4-40GB"}, {"g6e.12xlarge", "NVIDIA-L40S"},
}

// diffPool is a node group: one instance type and capacity type in one zone, its nodes alike but
// for what the cluster does to some of them (a price of their own, a taint, an image, a cordon).
type diffPool struct {
	name, instanceType, product, zone string
	spot, green                       bool
	taint                             *corev1.Taint // on every node of the pool
}

// diffDaemon is a DaemonSet; a rollout in progress leaves some nodes on its previous revision.
type diffDaemon struct {
	name      string
	uid       types.UID
	revisions []string // current first
	cpu, mem  string
	hostPort  int32
}

// diffRoom is what the generator has left on a node for the pods it puts there.
type diffRoom struct {
	cpuMilli, memMi int64
	gpus            int64   // whole devices free
	milli           []int64 // shares used per device
	pods            int64
}

// diffCluster is one random cluster: nodes, the pods on them, the objects the plugins read, and
// the policies.
type diffCluster struct {
	seed     int64
	rng      *rand.Rand
	pools    []diffPool
	nodes    []*corev1.Node
	room     map[string]*diffRoom
	pods     []*corev1.Pod
	objects  []runtime.Object // ReplicaSets
	apps     []*appsv1.ReplicaSet
	policies map[schema.GroupVersionResource][]any
	serial   int
}

func newDiffCluster(seed int64) *diffCluster {
	c := &diffCluster{seed: seed, rng: rand.New(rand.NewSource(seed)), room: map[string]*diffRoom{}}
	c.makePools()
	c.makeNodes()
	c.runDaemons()
	c.runWorkloads()
	c.makeApps()
	c.makePolicies()
	return c
}

func (c *diffCluster) pick(n int) int { return c.rng.Intn(n) }

func (c *diffCluster) chance(p float64) bool { return c.rng.Float64() < p }

func (c *diffCluster) makePools() {
	zones := []string{diffRegion + "a", diffRegion + "b", diffRegion + "c"}
	for i := range 3 + c.pick(3) {
		in := diffInstances[c.pick(len(diffInstances))]
		p := diffPool{name: fmt.Sprintf("pool-%d", i), instanceType: in.instanceType, product: in.product,
			zone: zones[c.pick(len(zones))], spot: c.chance(0.4), green: c.chance(0.25)}
		if c.chance(0.3) {
			p.taint = &corev1.Taint{Key: "dedicated", Value: []string{"train", "infer"}[c.pick(2)], Effect: corev1.TaintEffectNoSchedule}
		}
		c.pools = append(c.pools, p)
	}
	// Twin pools: two pools of one instance type, capacity type and zone, told apart by their
	// labels only.
	if c.chance(0.5) {
		twin := c.pools[0]
		twin.name = fmt.Sprintf("pool-%d", len(c.pools))
		c.pools = append(c.pools, twin)
	}
}

// diffNode is a node of a pool as a cloud provider, Karpenter and NVIDIA's feature discovery label
// it, with the instance type's CPUs, memory and GPUs from the catalog less what the kubelet keeps.
func diffNode(name string, p *diffPool) *corev1.Node {
	cat := catalog.Default()
	vcpus, gib, _ := cat.InstanceShape(p.instanceType)
	_, gpus, _ := cat.InstanceAccelerator(p.instanceType)
	capType := "on-demand"
	if p.spot {
		capType = "spot"
	}
	labels := map[string]string{corev1.LabelHostname: name, catalog.LabelInstanceType: p.instanceType, catalog.LabelRegion: diffRegion,
		corev1.LabelTopologyZone: p.zone, catalog.LabelCapacityType: capType, catalog.LabelNVIDIAGPUProduct: p.product,
		corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64", "nvidia.com/gpu.count": strconv.Itoa(gpus), "pool": p.name}
	if p.green {
		labels[catalog.LabelGreenEnergy] = "true"
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewMilliQuantity(int64(vcpus*1000), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(int64(gib)<<30, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(110, resource.DecimalSI),
		corev1.ResourceEphemeralStorage: resource.MustParse("200Gi"),
		catalog.ResourceNVIDIAGPU:       *resource.NewQuantity(int64(gpus), resource.DecimalSI),
	}
	alloc := capacity.DeepCopy()
	alloc[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(vcpus*1000)-190, resource.DecimalSI)
	alloc[corev1.ResourceMemory] = *resource.NewQuantity(int64(gib)<<30-(1<<30), resource.BinarySI)
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("node-" + name), Labels: labels, Annotations: map[string]string{}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: alloc,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Images: []corev1.ContainerImage{
				{Names: []string{"nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"}, SizeBytes: 250 << 20},
				{Names: []string{diffTrainingImage}, SizeBytes: 9 << 30},
			}}}
	if p.taint != nil {
		n.Spec.Taints = append(n.Spec.Taints, *p.taint)
	}
	return n
}

// makeNodes makes each pool's nodes; many differ from the pool's other nodes in one way: a price
// or carbon intensity of their own (kcloud annotations), a taint, an image, a cordon.
func (c *diffCluster) makeNodes() {
	for i := range c.pools {
		p := &c.pools[i]
		for j := range 5 + c.pick(8) {
			n := diffNode(fmt.Sprintf("%s-%s-%d", p.name, p.instanceType, j), p)
			c.vary(n)
			c.nodes = append(c.nodes, n)
			alloc := n.Status.Allocatable
			gpus := alloc.Name(catalog.ResourceNVIDIAGPU, resource.DecimalSI).Value()
			c.room[n.Name] = &diffRoom{cpuMilli: alloc.Cpu().MilliValue(), memMi: alloc.Memory().Value() >> 20, gpus: gpus,
				milli: make([]int64, gpus), pods: alloc.Pods().Value()}
		}
	}
	// Nodes join the cluster in no particular order.
	c.rng.Shuffle(len(c.nodes), func(i, j int) { c.nodes[i], c.nodes[j] = c.nodes[j], c.nodes[i] })
	// A rebalancing reservation on a node, for the replacement of a pod of ns0/train.
	if c.chance(0.3) {
		n := c.nodes[c.pick(len(c.nodes))]
		now := time.Now()
		r := kube.Reservation{Key: kube.ReservationAnnotationPrefix + "evicted-" + n.Name, Namespace: "ns0", Optimizer: "train",
			Pod: "train-old", CPUMilli: 4000, MemoryMiB: 16 << 10, GPUCount: 1, Since: now.Add(-time.Minute).UTC().Truncate(time.Second),
			Expires: now.Add(24 * time.Hour).UTC().Truncate(time.Second)}
		n.Annotations[r.Key] = r.Value()
	}
}

// vary makes a node differ from its pool's other nodes, or not.
func (c *diffCluster) vary(n *corev1.Node) {
	switch c.pick(15) {
	case 0, 1:
		// A price of its own (a reservation, a discount), cheaper or dearer than the catalog's.
		_, e, _ := kube.NodeEconomics(catalog.Default(), n)
		n.Annotations[catalog.AnnotationPricePerHour] = fmt.Sprintf("%.3f", e.PricePerHour*(0.6+0.8*c.rng.Float64()))
	case 2:
		n.Annotations[catalog.AnnotationCarbonIntensity] = strconv.Itoa([]int{40, 90, 600, 750}[c.pick(4)])
	case 3, 4:
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "maintenance", Value: "scheduled", Effect: corev1.TaintEffectNoSchedule})
	case 5:
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "gpu-health", Value: "degraded", Effect: corev1.TaintEffectPreferNoSchedule})
	case 6, 7:
		n.Status.Images = append(n.Status.Images, corev1.ContainerImage{Names: []string{diffServingImage}, SizeBytes: 6 << 30})
	case 8:
		// Cordoned; the node lifecycle controller adds the taint moments later.
		n.Spec.Unschedulable = true
		if c.chance(0.5) {
			n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
		}
	}
}

// fits takes room on the node for a pod, when there is: cpu and memory, whole GPUs, or a share
// on the given device.
func (r *diffRoom) fits(cpuMilli, memMi, gpus, milli int64, device int) bool {
	if r.pods < 1 || r.cpuMilli < cpuMilli || r.memMi < memMi || r.gpus < gpus {
		return false
	}
	if milli > 0 && (device >= len(r.milli) || r.milli[device]+milli > 1000) {
		return false
	}
	r.pods--
	r.cpuMilli -= cpuMilli
	r.memMi -= memMi
	r.gpus -= gpus
	if milli > 0 {
		r.milli[device] += milli
	}
	return true
}

// runDaemons puts the DaemonSets' pods on most nodes (a node that joined moments ago may not run
// them all yet) and static pods on some.
func (c *diffCluster) runDaemons() {
	daemons := []diffDaemon{
		{name: "kube-proxy", cpu: "100m", mem: "0"},
		{name: "aws-node", cpu: "25m", mem: "64Mi"},
		{name: "node-exporter", cpu: "100m", mem: "180Mi", hostPort: 9100},
		{name: "nvidia-device-plugin", cpu: "50m", mem: "100Mi"},
		{name: "dcgm-exporter", cpu: "100m", mem: "512Mi"},
	}
	for i := range daemons {
		d := &daemons[i]
		d.uid = types.UID(fmt.Sprintf("ds-%s-%d", d.name, c.seed))
		d.revisions = []string{fmt.Sprintf("%x", c.rng.Uint32()>>4)}
		if c.chance(0.2) {
			d.revisions = append(d.revisions, fmt.Sprintf("%x", c.rng.Uint32()>>4))
		}
	}
	for _, n := range c.nodes {
		for i := range daemons {
			d := &daemons[i]
			if c.chance(0.03) {
				continue
			}
			rev := d.revisions[0]
			if len(d.revisions) > 1 && c.chance(0.35) {
				rev = d.revisions[1]
			}
			c.serial++
			c.place(daemonPod(d, n, rev, strconv.FormatInt(int64(46656+c.serial), 36)))
		}
		if c.chance(0.3) {
			c.place(staticPod(n))
		}
	}
}

// daemonPod is a DaemonSet's pod as its controller makes it: owned by the DaemonSet, pinned to its
// node by a field affinity, tolerating every taint, node-critical.
func daemonPod(d *diffDaemon, n *corev1.Node, revision, suffix string) *corev1.Pod {
	p := pod(d.name+"-"+suffix, func(p *corev1.Pod) {
		p.Namespace = "kube-system"
		p.UID = types.UID(p.Name + "-" + n.Name)
		p.Labels = map[string]string{"app": d.name, appsv1.ControllerRevisionHashLabelKey: revision, "pod-template-generation": "1"}
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: d.name, UID: d.uid, Controller: &yes, BlockOwnerDeletion: &yes}}
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(d.cpu), corev1.ResourceMemory: resource.MustParse(d.mem)}
		if d.hostPort > 0 {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: d.hostPort, HostPort: d.hostPort, Protocol: corev1.ProtocolTCP}}
		}
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{n.Name}}}}}}}}
		p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		p.Spec.PriorityClassName = "system-node-critical"
		p.Spec.Priority = new(int32(2000001000))
		p.Spec.NodeName = n.Name
		p.Status.Phase = corev1.PodRunning
	})
	return p
}

// staticPod is the mirror of a static pod the kubelet runs from its manifest folder.
func staticPod(n *corev1.Node) *corev1.Pod {
	return pod("gpu-health-agent-"+n.Name, func(p *corev1.Pod) {
		p.Namespace = "kube-system"
		p.UID = types.UID("mirror-" + n.Name)
		p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "5f1c0e7e", "kubernetes.io/config.source": "file"}
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID, Controller: &yes}}
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
		p.Spec.Priority = new(int32(2000001000))
		p.Spec.NodeName = n.Name
		p.Status.Phase = corev1.PodRunning
	})
}

// place puts a pod on its node when it fits what the generator left there.
func (c *diffCluster) place(p *corev1.Pod) bool {
	req := kube.PodRequest(p)
	device := -1
	if d := kube.DeviceIndex(p); req.IsShare() && d >= 0 {
		device = d
	}
	milli := int64(0)
	if req.IsShare() {
		milli = req.GPUMilli
	}
	whole := int64(0)
	if !req.IsShare() {
		whole = int64(req.GPUCount)
	}
	if !c.room[p.Spec.NodeName].fits(req.CPUMilli, req.MemoryMiB, whole, milli, device) {
		return false
	}
	c.pods = append(c.pods, p)
	return true
}

// labelWorkload gives a pod a namespace, a team, and sometimes a WorkloadOptimizer.
func (c *diffCluster) labelWorkload(p *corev1.Pod) {
	p.Namespace = fmt.Sprintf("ns%d", c.pick(3))
	p.Labels = map[string]string{"team": []string{"a", "b", "c"}[c.pick(3)]}
	if c.chance(0.4) {
		p.Labels[kube.LabelOptimizer] = []string{"train", "serve"}[c.pick(2)]
	}
}

// runWorkloads puts pods on about a quarter of the nodes: whole GPUs, GPU shares with their device
// written, CPU-only pods.
func (c *diffCluster) runWorkloads() {
	for _, n := range c.nodes {
		if !c.chance(0.25) {
			continue
		}
		for range 1 + c.pick(4) {
			c.serial++
			name := fmt.Sprintf("run-%d", c.serial)
			var p *corev1.Pod
			switch gpus := len(c.room[n.Name].milli); c.pick(3) {
			case 0:
				p = pod(name, withGPUs(catalog.ResourceNVIDIAGPU, int64(1+c.pick(gpus))))
			case 1:
				p = pod(name, withShare(strconv.Itoa(100*(1+c.pick(9)))), withDevice(strconv.Itoa(c.pick(gpus))))
			default:
				p = pod(name)
			}
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(500*(1+c.pick(8))), resource.DecimalSI)
			c.labelWorkload(p)
			p.Spec.NodeName, p.Spec.SchedulerName, p.Status.Phase = n.Name, diffSched, corev1.PodRunning
			c.place(p)
		}
	}
}

// makeApps makes the ReplicaSets some incoming pods belong to: kube-scheduler's default topology
// spread scores their pods by how many run in each zone and on each node.
func (c *diffCluster) makeApps() {
	for i, name := range []string{"web", "infer", "embed"} {
		rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns%d", i), Name: name + "-6d8f5b", UID: types.UID("rs-" + name)},
			Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}}}
		c.apps = append(c.apps, rs)
		c.objects = append(c.objects, rs)
	}
}

// makePolicies makes the WorkloadOptimizers and policies: cost and power caps tight enough to
// refuse some nodes and some pods, spot rules, green and spot preferences.
func (c *diffCluster) makePolicies() {
	usd := func(lo, hi float64) *float64 { v := lo + c.rng.Float64()*(hi-lo); return &v }
	var wos, costs, powers []any
	for _, ns := range []string{"ns0", "ns1"} {
		wos = append(wos,
			&kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "train"},
				Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: "training",
					CostConstraints: &kcloudv1alpha1.CostConstraints{MaxCostPerHour: usd(10, 80), PreferSpot: c.chance(0.5)}}},
			&kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "serve"},
				Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: "serving",
					PowerConstraints: &kcloudv1alpha1.PowerConstraints{MaxPowerUsage: usd(1000, 10000), PreferGreen: c.chance(0.5)}}})
	}
	spot := []kcloudv1alpha1.SpotPolicy{"", kcloudv1alpha1.SpotAvoid, kcloudv1alpha1.SpotPrefer, kcloudv1alpha1.SpotRequire}[c.pick(4)]
	costs = append(costs,
		&kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}, Spec: kcloudv1alpha1.CostPolicySpec{
			PolicyTarget:   kcloudv1alpha1.PolicyTarget{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}},
			MaxCostPerHour: usd(20, 150), Enforcement: kcloudv1alpha1.EnforcementDeny}},
		&kcloudv1alpha1.CostPolicy{ObjectMeta: metav1.ObjectMeta{Name: "ns2-spot"}, Spec: kcloudv1alpha1.CostPolicySpec{
			PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{"ns2"}}, SpotPolicy: spot, Enforcement: kcloudv1alpha1.EnforcementWarn}})
	powers = append(powers, &kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "ns1-power"}, Spec: kcloudv1alpha1.PowerPolicySpec{
		PolicyTarget: kcloudv1alpha1.PolicyTarget{Namespaces: []string{"ns1"}}, MaxPowerWatts: usd(3000, 20000), PreferGreen: c.chance(0.3),
		Enforcement: kcloudv1alpha1.EnforcementDeny}})
	if c.chance(0.6) {
		powers = append(powers, &kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{Name: "team-b-carbon"}, Spec: kcloudv1alpha1.PowerPolicySpec{
			PolicyTarget:       kcloudv1alpha1.PolicyTarget{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}},
			MaxCarbonIntensity: usd(100, 550), Enforcement: kcloudv1alpha1.EnforcementDeny}})
	}
	c.policies = map[schema.GroupVersionResource][]any{gvrOptimizers: wos, gvrCostPolicies: costs, gvrPowerPolicies: powers}
}

// diffStep is a pod to schedule, or to schedule again after a failure (retry); expire names the
// gang whose held pods time out after it.
type diffStep struct {
	pod    *corev1.Pod
	retry  bool
	expire string
}

// incoming is the sequence of pods to schedule: CPU pods, whole GPUs, shares; some pinned to a
// pool by a selector or required affinity, some preferring a zone or spot; some tolerating the
// pools' taints; members of ReplicaSets, of WorkloadOptimizers, of gangs (consecutive, some never
// complete); a few that may preempt, or ask for a host port.
func (c *diffCluster) incoming(n int) []diffStep {
	var steps []diffStep
	for len(steps) < n {
		c.serial++
		p := c.newPod(fmt.Sprintf("p%d", c.serial))
		if !c.chance(0.12) {
			steps = append(steps, diffStep{pod: p})
			continue
		}
		// A gang: its pods alike, one after another.
		g := fmt.Sprintf("gang-%d", c.serial)
		size := 2 + c.pick(3)
		come := size
		if c.chance(0.3) {
			come = 1 + c.pick(size-1)
		}
		for k := range come {
			q := p.DeepCopy()
			q.Name, q.UID = fmt.Sprintf("%s-%d", g, k), types.UID(fmt.Sprintf("%s-%d", g, k))
			q.Labels[kube.LabelGang] = g
			q.Annotations[kube.AnnotationGangSize] = strconv.Itoa(size)
			steps = append(steps, diffStep{pod: q})
		}
		steps[len(steps)-1].expire = g
	}
	return steps
}

func (c *diffCluster) newPod(name string) *corev1.Pod {
	var p *corev1.Pod
	// The pool the pod is made for: its shape, and often its selector.
	pool := &c.pools[c.pick(len(c.pools))]
	alloc := diffNode("sizing", pool).Status.Allocatable
	gpus := alloc.Name(catalog.ResourceNVIDIAGPU, resource.DecimalSI).Value()
	switch k := c.pick(20); {
	case k < 2:
		p = pod(name, func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = *resource.NewQuantity(int64(1+c.pick(16)), resource.DecimalSI)
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = *resource.NewQuantity(int64(2+c.pick(60))<<30, resource.BinarySI)
		})
	case k < 6:
		p = pod(name, withGPUs(catalog.ResourceNVIDIAGPU, []int64{1, 1, 2}[c.pick(3)]))
	case k < 10:
		p = pod(name, withShare(strconv.Itoa(50*(2+c.pick(17)))))
	case k < 11:
		p = pod(name, withGPUs(catalog.ResourceNVIDIAGPU, 1), func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = *resource.NewQuantity(int64(8+c.pick(24)), resource.DecimalSI)
		})
	case k < 17:
		// Every GPU of a node of the pool's type: it wakes a node, mostly.
		p = pod(name, withGPUs(catalog.ResourceNVIDIAGPU, gpus))
	default:
		// A whole node of the pool's type, less what its daemons take, give or take: it fits on
		// some nodes of the type only (those missing a daemon).
		p = pod(name, withGPUs(catalog.ResourceNVIDIAGPU, gpus), func(p *corev1.Pod) {
			cpu := alloc.Cpu().MilliValue() - 475 + int64(50*c.pick(5))
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = *resource.NewMilliQuantity(cpu, resource.DecimalSI)
		})
	}
	switch c.pick(4) {
	case 0, 1:
		p.Spec.Containers[0].Image = diffTrainingImage
	case 2:
		p.Spec.Containers[0].Image = diffServingImage
	}
	c.labelWorkload(p)
	p.Spec.SchedulerName = diffSched
	c.constrain(p, pool)
	return p
}

// constrain adds the placement rules and traits of a random pod.
func (c *diffCluster) constrain(p *corev1.Pod, pool *diffPool) {
	tolerate := c.chance(0.35)
	switch c.pick(10) {
	case 0, 1, 4, 5:
		// Pinned to the pool: mostly by a team that may use it.
		p.Spec.NodeSelector = map[string]string{"pool": pool.name}
		tolerate = tolerate || pool.taint != nil && c.chance(0.7)
	case 2:
		other := c.pools[c.pick(len(c.pools))]
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: catalog.LabelInstanceType, Operator: corev1.NodeSelectorOpIn, Values: []string{pool.instanceType, other.instanceType}},
				{Key: catalog.LabelCapacityType, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"spot"}}}}}}}}
	case 3:
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
			{Weight: int32(1 + c.pick(100)), Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{pool.zone}}}}}}}}
	}
	if tolerate {
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
	}
	if c.chance(0.1) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "maintenance", Operator: corev1.TolerationOpEqual, Value: "scheduled"})
	}
	if c.chance(0.3) {
		rs := c.apps[c.pick(len(c.apps))]
		yes := true
		p.Namespace = rs.Namespace
		p.Labels["app"] = rs.Spec.Selector.MatchLabels["app"]
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}
	}
	if c.chance(0.06) {
		p.Spec.Priority = new(int32(1000))
	}
	if c.chance(0.04) {
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 9100, HostPort: 9100, Protocol: corev1.ProtocolTCP}}
	}
}

// diffScheduler is one side of the comparison: kcloud-scheduler over a copy of the cluster, with
// the cluster's policies, narrowing or not.
func (c *diffCluster) diffScheduler(t *testing.T, narrow bool) (*schedtest.Scheduler, *Plugin) {
	t.Helper()
	store := storeOf(t, c.policies)
	var built *Plugin
	plugins := frameworkruntime.Registry{
		Name: func(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
			p, err := New(ctx, obj, h)
			if err == nil {
				built = p.(*Plugin)
				built.policies = store
			}
			return p, err
		},
		gpushare.Name: gpushare.New,
		gang.Name:     gang.New,
		priority.Name: priority.New,
	}
	var objs []runtime.Object
	for _, n := range c.nodes {
		objs = append(objs, n.DeepCopy())
	}
	for _, p := range c.pods {
		objs = append(objs, p.DeepCopy())
	}
	for _, o := range c.objects {
		objs = append(objs, o.DeepCopyObject())
	}
	// The catalog ConfigMaps are not the subject here: the embedded catalog prices every node.
	s := schedtest.NewScheduler(t, plugins, map[string]map[string]any{Name: {"narrowCandidates": narrow, "catalogConfigMap": nil}}, objs...)
	if built == nil || (built.cands != nil) != narrow {
		t.Fatalf("narrowCandidates %v: the plugin was built with candidate index %v", narrow, built != nil && built.cands != nil)
	}
	// The limits' usage comes from the plugin's own informer handlers.
	s.Await("the limit usage to count every pod on every node", func() bool {
		built.usage.mu.Lock()
		defer built.usage.mu.Unlock()
		return len(built.usage.pods) == len(c.pods) && len(built.usage.nodeObj) == len(c.nodes)
	})
	for _, n := range c.nodes {
		if f := built.nodes.Facts(n); f.Err != nil {
			t.Fatalf("the catalog cannot price node %s: %v", n.Name, f.Err)
		}
	}
	return s, built
}

// diffStats counts what the comparison saw, over every cluster.
type diffStats struct {
	clusters, nodes, cycles, narrowed, twins, placed, unschedulable, retried, held, expired, deleted, offered, all int
}

// TestNarrowingNeverChangesPlacement schedules the pods of random production-like clusters through
// kcloud-scheduler twice, narrowing PreFilter's nodes and not, and requires every pod to get the
// same node (or none) on both.
func TestNarrowingNeverChangesPlacement(t *testing.T) {
	var stats diffStats
	for seed := int64(1); seed <= diffClusters; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { compareCluster(t, seed, &stats) })
	}
	t.Logf("%d clusters, %d nodes, %d cycles (%d retries of refused pods), %d running pods deleted between them: %d placed, %d refused, "+
		"%d held at Permit (%d of them timed out); PreFilter narrowed %d cycles, offering %d of %d nodes, and left out feasible empty twins in %d",
		stats.clusters, stats.nodes, stats.cycles, stats.retried, stats.deleted, stats.placed, stats.unschedulable, stats.held, stats.expired,
		stats.narrowed, stats.offered, stats.all, stats.twins)
	if !t.Failed() && stats.narrowed < stats.cycles/3 {
		t.Errorf("PreFilter narrowed only %d of %d cycles: the comparison says little", stats.narrowed, stats.cycles)
	}
}

func compareCluster(t *testing.T, seed int64, stats *diffStats) {
	c := newDiffCluster(seed)
	narrowed, pa := c.diffScheduler(t, true)
	full, pb := c.diffScheduler(t, false)
	steps := c.incoming(diffPods)
	stats.clusters++
	stats.nodes += len(c.nodes)
	// The workload pods running, which may finish as pods come.
	var running []*corev1.Pod
	for _, p := range c.pods {
		if !kube.NodeOverhead(p) {
			running = append(running, p)
		}
	}
	for i := 0; i < len(steps); i++ {
		step := steps[i]
		if len(running) > 0 && c.chance(0.2) {
			k := c.pick(len(running))
			gone := running[k]
			running = append(running[:k], running[k+1:]...)
			narrowed.Delete(gone.Namespace, gone.Name)
			full.Delete(gone.Namespace, gone.Name)
			c.awaitForgotten(narrowed, pa, gone)
			c.awaitForgotten(full, pb, gone)
			stats.deleted++
		}
		var a, b schedtest.Result
		if step.retry {
			a, b = narrowed.Retry(step.pod.Namespace, step.pod.Name), full.Retry(step.pod.Namespace, step.pod.Name)
		} else {
			a, b = narrowed.Schedule(step.pod.DeepCopy()), full.Schedule(step.pod.DeepCopy())
		}
		if i == 0 {
			if an, bn := nodeNames(narrowed), nodeNames(full); strings.Join(an, ",") != strings.Join(bn, ",") {
				t.Fatalf("seed %d: the two snapshots list the nodes in different orders:\n%v\n%v", seed, an, bn)
			}
		}
		what := describePod(step.pod)
		if step.retry {
			what = "retry of " + what
		}
		if a.Node != b.Node || a.Status.Code() != b.Status.Code() {
			t.Fatalf("seed %d, step %d of %d, %s: narrowed: %s; every node: %s", seed, i, len(steps), what, describe(a, b.Node), describe(b, a.Node))
		}
		// A pod that failed before is offered every node, so that its event says why for each.
		if step.retry && a.Offered != len(c.nodes) {
			t.Errorf("seed %d, step %d, %s: PreFilter offered %d of %d nodes", seed, i, what, a.Offered, len(c.nodes))
		}
		stats.count(a, b, len(c.nodes))
		if a.Node != "" && !a.Status.IsWait() {
			running = append(running, step.pod)
		}
		if step.retry {
			stats.retried++
		}
		if a.Node == "" && !a.Status.IsWait() && !step.retry && step.pod.Labels[kube.LabelGang] == "" {
			// kube-scheduler tries an unschedulable pod again once the cluster changes.
			at := min(i+4, len(steps))
			steps = append(steps[:at], append([]diffStep{{pod: step.pod, retry: true}}, steps[at:]...)...)
		}
		if g := step.expire; g != "" {
			inGang := func(p *corev1.Pod) bool { return p.Labels[kube.LabelGang] == g }
			ea, eb := narrowed.Expire(inGang), full.Expire(inGang)
			if strings.Join(ea, ",") != strings.Join(eb, ",") {
				t.Fatalf("seed %d, gang %s: held pods that timed out: narrowed %v, every node %v", seed, g, ea, eb)
			}
			stats.expired += len(ea)
		}
	}
}

// awaitForgotten waits for the plugin's limit usage to drop a deleted pod, as its informer
// reports the deletion.
func (c *diffCluster) awaitForgotten(s *schedtest.Scheduler, pl *Plugin, gone *corev1.Pod) {
	s.Await("the limit usage to drop pod "+gone.Name, func() bool {
		pl.usage.mu.Lock()
		defer pl.usage.mu.Unlock()
		return pl.usage.pods[gone.UID] == nil
	})
}

// count adds a cycle's outcome on both sides.
func (st *diffStats) count(a, b schedtest.Result, nodes int) {
	st.cycles++
	st.offered += a.Offered
	st.all += nodes
	if a.Offered < b.Offered {
		st.narrowed++
	}
	if a.Feasible < b.Feasible {
		st.twins++
	}
	switch {
	case a.Status.IsWait():
		st.held++
	case a.Node != "":
		st.placed++
	default:
		st.unschedulable++
	}
}

func nodeNames(s *schedtest.Scheduler) []string {
	var out []string
	for _, ni := range s.Nodes() {
		out = append(out, ni.Node().Name)
	}
	return out
}

// describe is a cycle's outcome, with the best scores and the other side's node's score.
func describe(r schedtest.Result, other string) string {
	if r.Node == "" {
		return fmt.Sprintf("refused (%v), %d offered, %d feasible", r.Status, r.Offered, r.Feasible)
	}
	type ns struct {
		name  string
		score int64
	}
	var top []ns
	for n, s := range r.Scores {
		top = append(top, ns{n, s})
	}
	sort.Slice(top, func(i, j int) bool {
		return top[i].score > top[j].score || top[i].score == top[j].score && top[i].name < top[j].name
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%v), %d offered, %d feasible", r.Node, r.Status.Code(), r.Offered, r.Feasible)
	for i, s := range top {
		if i < 4 || s.name == other {
			fmt.Fprintf(&b, "; %s=%d", s.name, s.score)
		}
	}
	if _, ok := r.Scores[other]; !ok && other != "" && len(r.Scores) > 0 {
		fmt.Fprintf(&b, "; %s not feasible here", other)
	}
	return b.String()
}

func describePod(p *corev1.Pod) string {
	req := kube.PodRequest(p)
	parts := []string{p.Namespace + "/" + p.Name, fmt.Sprintf("cpu %dm, %d GPU(s), %d milli", req.CPUMilli, req.GPUCount, req.GPUMilli)}
	if len(p.Spec.NodeSelector) > 0 {
		parts = append(parts, fmt.Sprintf("selector %v", p.Spec.NodeSelector))
	}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		parts = append(parts, "node affinity")
	}
	if len(p.Spec.Tolerations) > 0 {
		parts = append(parts, fmt.Sprintf("%d toleration(s)", len(p.Spec.Tolerations)))
	}
	parts = append(parts, fmt.Sprintf("labels %v", p.Labels))
	return strings.Join(parts, ", ")
}
