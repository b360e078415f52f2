// Package webhook runs the admission webhooks behind a real kube-apiserver (envtest): the apiserver
// calls them over TLS through the generated webhook configurations, with the operator running
// in-process. It is part of `make test` and `make test-integration`.
package webhook

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/operator"
	"kcloud.io/optimizer/pkg/catalog"
)

var (
	env      *envtest.Environment
	cfg      *rest.Config
	k8s      client.Client
	warnings = &warningRecorder{}
	stopOp   context.CancelFunc
	opDone   chan error
)

type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	w.msgs = append(w.msgs, text)
	w.mu.Unlock()
}

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

func repoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run these tests with `make test` or `make test-integration`")
		os.Exit(1)
	}
	ctrllog.SetLogger(logr.Discard())
	env = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(repoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{filepath.Join(repoRoot(), "config", "webhook")}},
	}
	var err error
	if cfg, err = env.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		_ = env.Stop()
		os.Exit(1)
	}
	wcfg := rest.CopyConfig(cfg)
	wcfg.WarningHandlerWithContext = warnings
	if k8s, err = client.New(wcfg, client.Options{Scheme: operator.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = env.Stop()
		os.Exit(1)
	}
	if err := startOperator(); err != nil {
		fmt.Fprintln(os.Stderr, "starting the operator:", err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	stopOperator()
	_ = env.Stop()
	os.Exit(code)
}

func startOperator() error {
	w := env.WebhookInstallOptions
	mgr, err := operator.New(cfg, operator.Options{MetricsAddr: "0", ProbeAddr: "0", SkipNameValidation: true,
		WebhookHost: w.LocalServingHost, WebhookPort: w.LocalServingPort, WebhookCertDir: w.LocalServingCertDir,
		AccountingInterval: 200 * time.Millisecond, ReoptimizeInterval: time.Second})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopOp, opDone = cancel, make(chan error, 1)
	go func() { opDone <- mgr.Start(ctx) }()
	// Ready when a webhook answers through the apiserver.
	deadline := time.Now().Add(time.Minute)
	for {
		err := k8s.Create(context.Background(), &kcloudv1alpha1.PowerPolicy{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"},
			Spec: kcloudv1alpha1.PowerPolicySpec{PreferGreen: true}}, client.DryRunAll)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("webhooks not answering: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func stopOperator() {
	if stopOp != nil {
		stopOp()
		// After cancel the manager returns nil; anything else is worth seeing in the test output.
		if err := <-opDone; err != nil {
			fmt.Fprintln(os.Stderr, "kcloud-operator stopped with:", err)
		}
		stopOp = nil
	}
}

func namespace(t *testing.T, name string) {
	t.Helper()
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// node creates a Ready, untainted node with an accelerator resource, priced by the catalog.
func node(t *testing.T, name string, labels map[string]string, res corev1.ResourceName, count int64) {
	t.Helper()
	ctx := context.Background()
	rl := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("512Gi"),
		corev1.ResourcePods: resource.MustParse("110"), res: *resource.NewQuantity(count, resource.DecimalSI)}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := k8s.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	n.Status = corev1.NodeStatus{Capacity: rl, Allocatable: rl, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}
	if err := k8s.Status().Update(ctx, n); err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = nil // the apiserver taints new nodes not-ready; no node controller runs here
	if err := k8s.Update(ctx, n); err != nil {
		t.Fatal(err)
	}
}

var fleetOnce sync.Once

// fleet: two NVIDIA A100 nodes, two Rebellions ATOM nodes and one Furiosa RNGD node.
func fleet(t *testing.T) {
	fleetOnce.Do(func() {
		a100 := map[string]string{catalog.LabelInstanceType: "p4d.24xlarge", catalog.LabelRegion: "us-east-1", catalog.LabelNVIDIAGPUProduct: "NVIDIA-A100-SXM4-40GB"}
		node(t, "a100-0", a100, catalog.ResourceNVIDIAGPU, 8)
		node(t, "a100-1", a100, catalog.ResourceNVIDIAGPU, 8)
		atom := map[string]string{catalog.LabelRegion: "ap-northeast-2", catalog.LabelRebellionsNPUProduct: "RBLN-CA12"}
		node(t, "atom-0", atom, catalog.ResourceRebellionsATOM, 4)
		node(t, "atom-1", atom, catalog.ResourceRebellionsATOM, 4)
		node(t, "rngd-0", map[string]string{catalog.LabelRegion: "ap-northeast-2", catalog.LabelFuriosaNPUProduct: "RNGD"}, catalog.ResourceFuriosaRNGD, 4)
	})
}

func optimizer(t *testing.T, ns, name string, mutate func(*kcloudv1alpha1.WorkloadOptimizer)) {
	t.Helper()
	wo := &kcloudv1alpha1.WorkloadOptimizer{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{WorkloadType: kcloudv1alpha1.WorkloadTraining}}
	if mutate != nil {
		mutate(wo)
	}
	if err := k8s.Create(context.Background(), wo); err != nil {
		t.Fatal(err)
	}
}

func basePod(ns, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/job:1"}}}}
}

func quantity(s string) *resource.Quantity { q := resource.MustParse(s); return &q }
