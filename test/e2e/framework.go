// Package e2e runs the whole product on the local cluster: `kcloud dev up` (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok and the simulated fleet) started once per suite as a
// process, our binaries as processes beside it, and `kcloud dev down` at the end, after which no
// process of the suite may remain.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/devcluster"
)

// Suite is a running local cluster and the binaries built for it.
type Suite struct {
	Root     string // repository checkout
	BinDir   string // our binaries, built by the suite
	StateDir string
	Config   *rest.Config
	Client   kubernetes.Interface
	State    *devcluster.State
}

func repoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Build compiles our commands into a fresh directory.
func Build(commands ...string) (string, error) {
	dir, err := os.MkdirTemp("", "kcloud-e2e-bin-")
	if err != nil {
		return "", err
	}
	for _, c := range commands {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, c), "./cmd/"+c)
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building %s: %v\n%s", c, err, out)
		}
	}
	return dir, nil
}

// Kcloud runs the kcloud CLI built for the suite and returns its combined output.
func (s *Suite) Kcloud(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.BinDir, "kcloud"), args...)
	cmd.Dir = s.Root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Start builds kcloud, kcloud-scheduler and kcloud-operator and brings the local cluster up with a
// profile, the product's CRDs, kcloud-scheduler beside the default scheduler, and the operator
// (accounting every 2 seconds, so budget tests need not wait minutes).
func Start(ctx context.Context, profile string) (*Suite, error) {
	controlPlane := os.Getenv("KCLOUD_BIN_DIR")
	if controlPlane == "" {
		return nil, fmt.Errorf("KCLOUD_BIN_DIR is not set: run the e2e suite with `make test-e2e` (or `make test`), which builds the control plane from the module graph")
	}
	bin, err := Build("kcloud", "kcloud-scheduler", "kcloud-operator")
	if err != nil {
		return nil, err
	}
	state, err := os.MkdirTemp("", "kcloud-e2e-cluster-")
	if err != nil {
		return nil, err
	}
	s := &Suite{Root: repoRoot(), BinDir: bin, StateDir: filepath.Join(state, "cluster")}
	start := time.Now()
	out, err := s.Kcloud(ctx, "dev", "up", "--state-dir", s.StateDir, "--bin-dir", controlPlane, "--profile", profile,
		"--scheduler", filepath.Join(bin, "kcloud-scheduler"), "--operator", filepath.Join(bin, "kcloud-operator"),
		"--operator-arg=--accounting-interval=2s", "--operator-arg=--reoptimize-interval=20s")
	if err != nil {
		_, _ = s.Kcloud(context.Background(), "dev", "down", "--state-dir", s.StateDir)
		return nil, fmt.Errorf("kcloud dev up: %v\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "e2e: local cluster %q up in %.1fs\n", profile, time.Since(start).Seconds())
	if s.State, err = devcluster.ReadState(s.StateDir); err != nil {
		return nil, err
	}
	if s.Config, err = clientcmd.BuildConfigFromFlags("", s.State.Kubeconfig); err != nil {
		return nil, err
	}
	s.Config.QPS, s.Config.Burst = 200, 400
	if s.Client, err = kubernetes.NewForConfig(s.Config); err != nil {
		return nil, err
	}
	return s, nil
}

// Stop runs `kcloud dev down` and checks that no process the suite started is left, by PID.
func (s *Suite) Stop() error {
	out, err := s.Kcloud(context.Background(), "dev", "down", "--state-dir", s.StateDir)
	if err != nil {
		return fmt.Errorf("kcloud dev down: %v\n%s", err, out)
	}
	var left []string
	for _, p := range s.State.Processes {
		if devcluster.Alive(p.PID) {
			left = append(left, fmt.Sprintf("%s (pid %d)", p.Name, p.PID))
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("processes left after kcloud dev down: %s", strings.Join(left, ", "))
	}
	if _, err := os.Stat(s.StateDir); !os.IsNotExist(err) {
		return fmt.Errorf("state directory %s still exists after kcloud dev down", s.StateDir)
	}
	_ = os.RemoveAll(filepath.Dir(s.StateDir))
	return os.RemoveAll(s.BinDir)
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = kcloudv1alpha1.AddToScheme(s)
	return s
}
