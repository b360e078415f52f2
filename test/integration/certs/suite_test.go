// Package certs tests the operator-managed webhook certificates (internal/webhook/certs) against a
// real kube-apiserver (envtest) that calls a controller-runtime webhook server over TLS. Run it
// through `make test-integration`, which sets KUBEBUILDER_ASSETS, or:
//
//	assets=$(./hack/build-controlplane.sh) && KUBEBUILDER_ASSETS=$assets go test -count=1 -v ./test/integration/certs/
package certs

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

var (
	cfg *rest.Config
	// k8sClient reads from the API server and can watch, as the operator's rotator client does.
	k8sClient client.WithWatch
	scheme    = k8sruntime.NewScheme()
)

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run these tests with `make test` or `make test-integration`, which build etcd and kube-apiserver from the module graph")
		os.Exit(1)
	}
	// The webhook server and certwatcher log through controller-runtime; the rotators log to
	// their test (testr), which is what a failure needs.
	ctrllog.SetLogger(logr.Discard())
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	// Generous start and stop limits: on a loaded 2-core machine kube-apiserver may need more than
	// envtest's 20 s default, and a timed-out attempt leaves a process shutting down.
	env := &envtest.Environment{ControlPlaneStartTimeout: 2 * time.Minute, ControlPlaneStopTimeout: time.Minute}
	var err error
	cfg, err = env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest: %v\n", err)
		_ = env.Stop()
		os.Exit(1)
	}
	k8sClient, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintf(os.Stderr, "creating client: %v\n", err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
	}
	os.Exit(code)
}
