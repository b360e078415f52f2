package devcluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kcloud.io/optimizer/pkg/catalog"
)

// The add-ons of a production GPU cluster that a production-like profile runs: the DaemonSets every
// node runs (kube-proxy, a CNI agent, node-exporter), the accelerator vendors' DaemonSets on their
// nodes (selected by the labels their operators and feature discovery select on), and CoreDNS and
// metrics-server on the system pool. They are real apps/v1 objects: kube-controller-manager creates
// their pods, the default kube-scheduler binds them and kwok reports them Running and Ready (its
// pod-ready stage takes every pod bound to a kwok node), so a node's pods are what they would be on a
// real cluster. kwok runs no containers, so the images only name the projects.
//
// Requests and limits are the projects' own defaults where their chart or manifest sets any (cited at
// each); where it sets none, the comment says so and the figures are small ones chosen here.

// Namespaces of the add-ons, as the real installs use them.
const (
	NamespaceKubeSystem  = "kube-system"
	NamespaceMonitoring  = "monitoring"    // kube-prometheus
	NamespaceGPUOperator = "gpu-operator"  // NVIDIA GPU operator's documented install namespace
	NamespaceAMDGPU      = "kube-amd-gpu"  // AMD GPU operator's documented install namespace
	NamespaceHabana      = "habana-system" // Intel Gaudi base operator's namespace
)

// LabelDaemon is on every add-on pod (and selects them), naming its DaemonSet or Deployment.
const LabelDaemon = "app.kubernetes.io/name"

// Addons are the objects a production-like profile creates, in creation order.
type Addons struct {
	Namespaces  []string
	DaemonSets  []appsv1.DaemonSet
	Deployments []appsv1.Deployment
}

// ClusterAddons returns the add-ons of a production-like profile.
func ClusterAddons() Addons {
	a := Addons{DaemonSets: append(append(everyNodeDaemons(), nvidiaDaemons()...), npuAndOtherGPUDaemons()...), Deployments: systemDeployments()}
	seen := map[string]bool{}
	for _, ds := range a.DaemonSets {
		if !seen[ds.Namespace] {
			seen[ds.Namespace] = true
			a.Namespaces = append(a.Namespaces, ds.Namespace)
		}
	}
	return a
}

// everyNodeDaemons run on every node, the system pool included: they tolerate every taint.
func everyNodeDaemons() []appsv1.DaemonSet {
	everything := []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	return []appsv1.DaemonSet{
		daemonSet(NamespaceKubeSystem, "kube-proxy", corev1.PodSpec{
			HostNetwork: true, PriorityClassName: "system-node-critical", Tolerations: everything,
			NodeSelector: map[string]string{corev1.LabelOSStable: "linux"},
			// The EKS kube-proxy add-on requests 100m CPU and sets no memory or limits (kubeadm's sets none).
			Containers: []corev1.Container{container("kube-proxy", "registry.k8s.io/kube-proxy:v1.37.2", resources("100m", ""), nil)},
		}),
		daemonSet(NamespaceKubeSystem, "cilium", corev1.PodSpec{
			HostNetwork: true, PriorityClassName: "system-node-critical", Tolerations: everything,
			NodeSelector: map[string]string{corev1.LabelOSStable: "linux"},
			// Cilium's Helm chart sets no agent resources (resources: {}); 100m / 128Mi chosen.
			Containers: []corev1.Container{container("cilium-agent", "quay.io/cilium/cilium:v1.18.2", resources("100m", "128Mi"), nil)},
		}),
		daemonSet(NamespaceMonitoring, "node-exporter", corev1.PodSpec{
			HostNetwork: true, HostPID: true, PriorityClassName: "system-cluster-critical", Tolerations: everything,
			NodeSelector: map[string]string{corev1.LabelOSStable: "linux"},
			// kube-prometheus's node-exporter DaemonSet: node-exporter 102m / 180Mi (limits 250m / 180Mi),
			// its kube-rbac-proxy sidecar 10m / 20Mi (limits 20m / 40Mi).
			Containers: []corev1.Container{
				container("node-exporter", "quay.io/prometheus/node-exporter:v1.9.1", resources("102m", "180Mi"), resources("250m", "180Mi")),
				container("kube-rbac-proxy", "quay.io/brancz/kube-rbac-proxy:v0.19.1", resources("10m", "20Mi"), resources("20m", "40Mi")),
			},
		}),
	}
}

// nvidiaDaemons are the GPU operator's operands, on the nodes it labels nvidia.com/gpu.present=true.
// The operator's chart sets no resources for them; the figures are chosen.
func nvidiaDaemons() []appsv1.DaemonSet {
	onGPUs := map[string]string{LabelNVIDIAGPUPresent: "true"}
	tolerations := []corev1.Toleration{
		{Key: catalog.ResourceNVIDIAGPU, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: TaintCriticalAddonsOnly, Operator: corev1.TolerationOpExists},
	}
	spec := func(c corev1.Container) corev1.PodSpec {
		return corev1.PodSpec{NodeSelector: onGPUs, Tolerations: tolerations, PriorityClassName: "system-node-critical", Containers: []corev1.Container{c}}
	}
	return []appsv1.DaemonSet{
		daemonSet(NamespaceGPUOperator, "nvidia-device-plugin-daemonset",
			spec(container("nvidia-device-plugin", "nvcr.io/nvidia/k8s-device-plugin:v0.17.4", resources("10m", "32Mi"), nil))),
		daemonSet(NamespaceGPUOperator, "gpu-feature-discovery",
			spec(container("gpu-feature-discovery", "nvcr.io/nvidia/k8s-device-plugin:v0.17.4", resources("10m", "32Mi"), nil))),
		daemonSet(NamespaceGPUOperator, "nvidia-dcgm-exporter",
			spec(container("nvidia-dcgm-exporter", "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04", resources("50m", "128Mi"), nil))),
	}
}

// npuAndOtherGPUDaemons are the AMD, Intel Gaudi, AWS Neuron, Rebellions and FuriosaAI DaemonSets.
// None of their charts or manifests sets requests except neuron-monitor's (below); the others'
// figures are chosen: 10m / 32Mi for a device plugin or labeller, 50m / 128Mi for an exporter.
func npuAndOtherGPUDaemons() []appsv1.DaemonSet {
	tolerate := func(resource string) []corev1.Toleration {
		return []corev1.Toleration{
			{Key: resource, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
			{Key: TaintCriticalAddonsOnly, Operator: corev1.TolerationOpExists},
		}
	}
	plugin, exporter := resources("10m", "32Mi"), resources("50m", "128Mi")
	onNodes := func(selector map[string]string, resource string, c ...corev1.Container) corev1.PodSpec {
		return corev1.PodSpec{NodeSelector: selector, Tolerations: tolerate(resource), PriorityClassName: "system-node-critical", Containers: c}
	}
	// The AMD GPU operator runs its operands where its NFD rule labelled the node.
	amd := map[string]string{LabelAMDGPU: "true"}
	habana := map[string]string{LabelPCIHabana: "true"}
	rebellions := map[string]string{LabelPCIRebellions: "true"}
	furiosa := map[string]string{LabelPCIFuriosa: "true"}
	// AWS's Neuron device plugin manifest selects the Inferentia and Trainium instance types by node
	// affinity; here the types of the catalog's Neuron instances.
	neuronAffinity := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn, Values: NeuronInstanceTypes}},
		}}},
	}}
	neuron := func(c corev1.Container) corev1.PodSpec {
		s := onNodes(nil, catalog.ResourceNeuron, c)
		s.Affinity = neuronAffinity
		return s
	}
	return []appsv1.DaemonSet{
		daemonSet(NamespaceAMDGPU, "amd-gpu-device-plugin", onNodes(amd, catalog.ResourceAMDGPU,
			container("device-plugin", "docker.io/rocm/k8s-device-plugin:1.31.0.7", plugin, nil))),
		daemonSet(NamespaceAMDGPU, "amd-gpu-node-labeller", onNodes(amd, catalog.ResourceAMDGPU,
			container("node-labeller", "docker.io/rocm/k8s-device-plugin:labeller-1.31.0.7", plugin, nil))),
		daemonSet(NamespaceAMDGPU, "amd-device-metrics-exporter", onNodes(amd, catalog.ResourceAMDGPU,
			container("metrics-exporter", "docker.io/rocm/device-metrics-exporter:v1.3.0", exporter, nil))),
		daemonSet(NamespaceHabana, "habanalabs-device-plugin-daemonset", onNodes(habana, catalog.ResourceGaudi,
			container("habana-device-plugin", "vault.habana.ai/docker-k8s-device-plugin/docker-k8s-device-plugin:1.21.0", plugin, nil))),
		daemonSet(NamespaceHabana, "metric-exporter-ds", onNodes(habana, catalog.ResourceGaudi,
			container("metric-exporter", "vault.habana.ai/gaudi-metric-exporter/metric-exporter:1.21.0", exporter, nil))),
		daemonSet(NamespaceKubeSystem, "neuron-device-plugin-daemonset", neuron(
			container("neuron-device-plugin", "public.ecr.aws/neuron/neuron-device-plugin:2.24.23.0", plugin, nil))),
		// The Neuron SDK's neuron-monitor DaemonSet limits it to 500m / 256Mi; requests chosen at half.
		daemonSet(NamespaceKubeSystem, "neuron-monitor", neuron(
			container("neuron-monitor", "public.ecr.aws/neuron/neuron-monitor:1.3.0", resources("250m", "128Mi"), resources("500m", "256Mi")))),
		daemonSet(NamespaceKubeSystem, "rbln-device-plugin", onNodes(rebellions, catalog.ResourceRebellionsATOM,
			container("rbln-device-plugin", "docker.io/rebellions/k8s-device-plugin:v0.3.0", plugin, nil))),
		daemonSet(NamespaceKubeSystem, "furiosa-device-plugin", onNodes(furiosa, catalog.ResourceFuriosaRNGD,
			container("device-plugin", "registry.corp.furiosa.ai/furiosa/furiosa-device-plugin:2025.2.0", plugin, nil))),
	}
}

// NeuronInstanceTypes are the instance types the Neuron DaemonSets select: the catalog's Inferentia2
// and Trainium instances.
var NeuronInstanceTypes = []string{
	"inf2.xlarge", "inf2.8xlarge", "inf2.24xlarge", "inf2.48xlarge",
	"trn1.2xlarge", "trn1.32xlarge", "trn1n.32xlarge",
}

// systemDeployments run on the system pool: they tolerate its taint and select its node group.
func systemDeployments() []appsv1.Deployment {
	onSystemPool := map[string]string{corev1.LabelOSStable: "linux", LabelEKSNodegroup: SystemNodegroup}
	tolerations := []corev1.Toleration{{Key: TaintCriticalAddonsOnly, Operator: corev1.TolerationOpExists}}
	coredns := deployment(NamespaceKubeSystem, "coredns", 2, corev1.PodSpec{
		NodeSelector: onSystemPool, Tolerations: tolerations, PriorityClassName: "system-cluster-critical",
		// CoreDNS's own Kubernetes manifest (and kubeadm's): requests 100m / 70Mi, memory limit 170Mi.
		Containers: []corev1.Container{container("coredns", "registry.k8s.io/coredns/coredns:v1.12.1", resources("100m", "70Mi"), resources("", "170Mi"))},
	})
	// The two replicas prefer different nodes, as CoreDNS's manifest asks.
	coredns.Spec.Template.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelDaemon: "coredns"}}, TopologyKey: corev1.LabelHostname,
		}}},
	}}
	return []appsv1.Deployment{
		coredns,
		deployment(NamespaceKubeSystem, "metrics-server", 1, corev1.PodSpec{
			NodeSelector: onSystemPool, Tolerations: tolerations, PriorityClassName: "system-cluster-critical",
			// metrics-server's components.yaml: requests 100m / 200Mi, no limits.
			Containers: []corev1.Container{container("metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.8.0", resources("100m", "200Mi"), nil)},
		}),
	}
}

func daemonSet(namespace, name string, spec corev1.PodSpec) appsv1.DaemonSet {
	labels := map[string]string{LabelDaemon: name}
	spec.ServiceAccountName = name
	return appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

func deployment(namespace, name string, replicas int32, spec corev1.PodSpec) appsv1.Deployment {
	labels := map[string]string{LabelDaemon: name}
	spec.ServiceAccountName = name
	return appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

func container(name, image string, requests, limits corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: name, Image: image, Resources: corev1.ResourceRequirements{Requests: requests, Limits: limits}}
}

// resources is a CPU and memory list; an empty figure is left out.
func resources(cpu, memory string) corev1.ResourceList {
	l := corev1.ResourceList{}
	if cpu != "" {
		l[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if memory != "" {
		l[corev1.ResourceMemory] = resource.MustParse(memory)
	}
	return l
}

// createAddons creates the add-ons' namespaces, then each workload with its ServiceAccount (created
// first: the ServiceAccount admission plugin rejects pods whose account does not exist yet, and the
// controllers would only retry with back-off). The workloads are created concurrently: one by one,
// creating them took about 1.7 s on 2 cores, concurrently about 0.2 s.
func createAddons(ctx context.Context, cs kubernetes.Interface, a Addons) error {
	for _, ns := range a.Namespaces {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	account := func(namespace, name string) error {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
		if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating service account %s/%s: %w", namespace, name, err)
		}
		return nil
	}
	var creates []func() error
	for i := range a.DaemonSets {
		ds := &a.DaemonSets[i]
		creates = append(creates, func() error {
			if err := account(ds.Namespace, ds.Spec.Template.Spec.ServiceAccountName); err != nil {
				return err
			}
			if _, err := cs.AppsV1().DaemonSets(ds.Namespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err)
			}
			return nil
		})
	}
	for i := range a.Deployments {
		d := &a.Deployments[i]
		creates = append(creates, func() error {
			if err := account(d.Namespace, d.Spec.Template.Spec.ServiceAccountName); err != nil {
				return err
			}
			if _, err := cs.AppsV1().Deployments(d.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating Deployment %s/%s: %w", d.Namespace, d.Name, err)
			}
			return nil
		})
	}
	errs := make(chan error, len(creates))
	for _, create := range creates {
		go func() { errs <- create() }()
	}
	var all []error
	for range creates {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// AddonsReady is how far the add-ons are.
type AddonsReady struct {
	DaemonPods int      // Ready pods of the DaemonSets
	NotReady   []string // each DaemonSet or Deployment not ready yet, with its counts
}

// addonsReady reads the add-ons' status: a DaemonSet is ready when its controller has seen its
// spec and every pod it wants scheduled is scheduled and Ready; a Deployment when all its replicas
// are updated and available.
func addonsReady(ctx context.Context, cs kubernetes.Interface, a Addons) (AddonsReady, error) {
	var r AddonsReady
	for _, want := range a.DaemonSets {
		ds, err := cs.AppsV1().DaemonSets(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return r, fmt.Errorf("reading DaemonSet %s/%s: %w", want.Namespace, want.Name, err)
		}
		s := ds.Status
		r.DaemonPods += int(s.NumberReady)
		if s.ObservedGeneration < ds.Generation || s.CurrentNumberScheduled != s.DesiredNumberScheduled || s.NumberReady != s.DesiredNumberScheduled {
			r.NotReady = append(r.NotReady, fmt.Sprintf("DaemonSet %s/%s (%d of %d pods scheduled, %d Ready)",
				ds.Namespace, ds.Name, s.CurrentNumberScheduled, s.DesiredNumberScheduled, s.NumberReady))
		}
	}
	for _, want := range a.Deployments {
		d, err := cs.AppsV1().Deployments(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return r, fmt.Errorf("reading Deployment %s/%s: %w", want.Namespace, want.Name, err)
		}
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		s := d.Status
		if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != replicas || s.AvailableReplicas != replicas {
			r.NotReady = append(r.NotReady, fmt.Sprintf("Deployment %s/%s (%d of %d replicas available)", d.Namespace, d.Name, s.AvailableReplicas, replicas))
		}
	}
	sort.Strings(r.NotReady)
	return r, nil
}

// waitAddonsReady waits until every add-on is ready; on timeout the error names each one that is not.
func (c *Cluster) waitAddonsReady(ctx context.Context, cs kubernetes.Interface, a Addons, timeout time.Duration) (AddonsReady, error) {
	deadline := time.Now().Add(timeout)
	for {
		if p := c.exited(); p != nil {
			return AddonsReady{}, fmt.Errorf("%s exited; its log %s ends with:\n%s", p.Name, p.Log, tail(p.Log, 15))
		}
		r, err := addonsReady(ctx, cs, a)
		if err == nil && len(r.NotReady) == 0 {
			return r, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return r, fmt.Errorf("cluster add-ons not ready after %s: %w", timeout, err)
			}
			return r, errors.New("cluster add-ons not ready after " + timeout.String() + ": " + strings.Join(r.NotReady, "; "))
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
