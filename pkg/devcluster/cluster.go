// Package devcluster runs a local Kubernetes control plane with a simulated accelerator fleet:
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, all built from the Go module
// graph into bin/, on loopback, with every file in one state directory.
package devcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"kcloud.io/optimizer/pkg/install"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"kcloud.io/optimizer/pkg/catalog"
)

// Binaries the local cluster runs, in start order.
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// Options configure Up.
type Options struct {
	StateDir      string // all files: certificates, kubeconfig, etcd data, logs, state.json
	BinDir        string // where the binaries are (hack/build-controlplane.sh prints it)
	Profile       string // fleet profile
	APIServerPort int    // 0 picks a free port
	Catalog       *catalog.Catalog
	Log           func(format string, args ...any)
	// Scheduler, when set, is a kcloud-scheduler binary started after the fleet is Ready, with
	// SchedulerConfig (a KubeSchedulerConfiguration) pointed at the cluster.
	Scheduler       string
	SchedulerConfig []byte
	// Operator, when set, is a kcloud-operator binary started last, with OperatorArgs added to the
	// kubeconfig, metrics and probe flags; Up waits until it is ready.
	Operator     string
	OperatorArgs []string
	// Webhooks has the operator serve the admission webhooks on loopback, with their
	// configurations installed to call it there and certificates it manages itself.
	Webhooks bool
	// Install runs once the fleet is Ready, before the scheduler starts (the CLI installs the CRDs).
	Install func(ctx context.Context, cfg *rest.Config) error
}

// Process is one started program.
type Process struct {
	Name string   `json:"name"`
	PID  int      `json:"pid"`
	Args []string `json:"args"`
	Log  string   `json:"log"`
	done chan struct{}
}

// State is what Up leaves in the state directory for Down and for users.
type State struct {
	Profile    string     `json:"profile"`
	Kubeconfig string     `json:"kubeconfig"`
	Server     string     `json:"server"`
	Processes  []*Process `json:"processes"`
	Nodes      int        `json:"nodes"`
	// OperatorMetrics and OperatorProbes are the kcloud-operator's plain-HTTP endpoints, when it runs.
	OperatorMetrics string `json:"operatorMetrics,omitempty"`
	OperatorProbes  string `json:"operatorProbes,omitempty"`
	// WebhookURL is where the apiserver calls the operator's webhooks, when they are installed.
	WebhookURL string    `json:"webhookURL,omitempty"`
	Started    time.Time `json:"started"`
}

const stateFile = "state.json"

// Cluster is a running local cluster.
type Cluster struct {
	State
	Dir    string
	Config *rest.Config
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(format, args...)
	}
}

// ReadState reads the state directory's state.json.
func ReadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state %s: %w", filepath.Join(dir, stateFile), err)
	}
	return &s, nil
}

// Alive reports whether a process with the PID exists and is not a zombie.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses, which may itself contain spaces.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// Up starts the control plane and the fleet and waits until every node is Ready.
func Up(ctx context.Context, o Options) (*Cluster, error) {
	if _, ok := Profiles[o.Profile]; !ok {
		return nil, fmt.Errorf("unknown fleet profile %q; known profiles: %s", o.Profile, strings.Join(ProfileNames(), ", "))
	}
	for _, b := range Binaries {
		if fi, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil || fi.IsDir() {
			return nil, fmt.Errorf("missing binary %s in %s: build the control plane with `make controlplane` (or pass --bin-dir)", b, o.BinDir)
		}
	}
	stages := filepath.Join(o.BinDir, "kwok-stages.yaml")
	if _, err := os.Stat(stages); err != nil {
		return nil, fmt.Errorf("missing kwok stages %s: build the control plane with `make controlplane`", stages)
	}
	if s, err := ReadState(o.StateDir); err == nil {
		var alive []string
		for _, p := range s.Processes {
			if Alive(p.PID) {
				alive = append(alive, fmt.Sprintf("%s (pid %d)", p.Name, p.PID))
			}
		}
		if len(alive) > 0 {
			return nil, fmt.Errorf("a local cluster is already running from %s: %s; use it through %s, or stop it with `kcloud dev down --state-dir %s`",
				o.StateDir, strings.Join(alive, ", "), s.Kubeconfig, o.StateDir)
		}
		return nil, fmt.Errorf("state directory %s holds a stopped cluster (started %s); clean it with `kcloud dev down --state-dir %s`",
			o.StateDir, s.Started.Format(time.RFC3339), o.StateDir)
	} else if entries, _ := os.ReadDir(o.StateDir); len(entries) > 0 {
		return nil, fmt.Errorf("state directory %s is not empty and holds no cluster state; choose another --state-dir or remove it", o.StateDir)
	}
	if o.APIServerPort != 0 {
		if err := portFree(o.APIServerPort); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.StateDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, State: State{Profile: o.Profile, Started: time.Now().UTC()}}
	ok := false
	defer func() {
		if !ok {
			_ = c.stop(10 * time.Second)
		}
	}()
	if err := c.start(ctx, o, stages); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) { return freePort() }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	// The listener only found a port; closing it can fail only if it is already closed.
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d is in use on 127.0.0.1: choose another --apiserver-port", port)
	}
	return l.Close()
}

func (c *Cluster) start(ctx context.Context, o Options, stages string) error {
	p := pki{dir: c.Dir}
	if err := p.generate(time.Now()); err != nil {
		return fmt.Errorf("generating certificates: %w", err)
	}
	ports, err := allocatePorts(o)
	if err != nil {
		return err
	}
	cs, err := c.startAPIServer(ctx, o, p, ports)
	if err != nil {
		return err
	}
	if err := c.startNodeComponents(o, p, stages, ports.kwok); err != nil {
		return err
	}
	if err := markLocal(ctx, cs, c.Dir); err != nil {
		return err
	}
	if err := c.createFleet(ctx, o, cs); err != nil {
		return err
	}
	if o.Install != nil {
		if err := o.Install(ctx, c.Config); err != nil {
			return err
		}
	}
	return c.startProducts(ctx, o)
}

// clusterPorts are the loopback ports of one cluster's processes.
type clusterPorts struct{ api, etcd, peer, kwok int }

// allocatePorts picks free ports for the cluster; the API server's is o.APIServerPort when set.
func allocatePorts(o Options) (clusterPorts, error) {
	var ports clusterPorts
	var err error
	ports.api = o.APIServerPort
	if ports.api == 0 {
		if ports.api, err = freePort(); err != nil {
			return ports, err
		}
	}
	for _, port := range []*int{&ports.etcd, &ports.peer, &ports.kwok} {
		if *port, err = freePort(); err != nil {
			return ports, err
		}
	}
	return ports, nil
}

// startAPIServer writes the kubeconfig, starts etcd and kube-apiserver and waits until the API
// server is ready; it returns a client of it.
func (c *Cluster) startAPIServer(ctx context.Context, o Options, p pki, ports clusterPorts) (kubernetes.Interface, error) {
	apiPort := ports.api
	c.Server = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, c.Server, p); err != nil {
		return nil, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports.etcd)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports.peer)
	o.logf("starting etcd on %s", etcdURL)
	if err := c.run(o, "etcd", "--name=kcloud-dev", "--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kcloud-dev="+peerURL, "--unsafe-no-fsync=true", "--log-level=warn"); err != nil {
		return nil, err
	}
	o.logf("starting kube-apiserver on %s", c.Server)
	if err := c.run(o, "kube-apiserver", "--etcd-servers="+etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort), "--tls-cert-file="+p.path("apiserver.crt"), "--tls-private-key-file="+p.path("apiserver.key"),
		"--client-ca-file="+p.path("ca.crt"), "--service-account-key-file="+p.path("sa.pub"),
		"--service-account-signing-key-file="+p.path("sa.key"), "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=RBAC", "--allow-privileged=true",
		// Loopback cannot be published as the kubernetes Service endpoint; nothing in-cluster needs it.
		"--endpoint-reconciler-type=none"); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 500, 1000
	c.Config = cfg
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, cs, 90*time.Second); err != nil {
		return nil, err
	}
	return cs, nil
}

// startNodeComponents starts kube-controller-manager, the upstream kube-scheduler and kwok, which
// together make created nodes Ready and schedule pods onto them.
// kwokConfiguration raises kwok's workers from 4 each: with 4, kwok marked about 13 pods a
// second Ready on an idle two-core machine (each worker waits on its API call), and a 1,000-node
// production-like fleet's 5,400 DaemonSet pods took over six minutes.
const kwokConfiguration = `apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  podPlayStageParallelism: 16
  nodePlayStageParallelism: 16
  nodeLeaseParallelism: 16
`

func (c *Cluster) startNodeComponents(o Options, p pki, stages string, kwokPort int) error {
	kubeconfig := "--kubeconfig=" + c.Kubeconfig
	o.logf("starting kube-controller-manager, kube-scheduler and kwok")
	// Client rate limits well above the defaults (20 QPS): the node lifecycle controller lifts the
	// not-ready taint of each new node, and at 20 QPS a 1,523-node fleet takes over five minutes.
	qps := []string{"--kube-api-qps=1000", "--kube-api-burst=2000"}
	if err := c.run(o, "kube-controller-manager", append(qps, kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--controllers=*,-serviceaccount-token", "--root-ca-file="+p.path("ca.crt"), "--use-service-account-credentials=false",
		// kwok's node heartbeat comes every 10-20 minutes by its stages (hack/build-controlplane.sh):
		// past the grace period the node lifecycle controller marks the node's pods not Ready, and
		// kwok, which set them Ready once, never sets them again.
		"--node-monitor-grace-period=30m")...); err != nil {
		return err
	}
	if err := c.run(o, "kube-scheduler", append(qps, kubeconfig, "--leader-elect=false", "--secure-port=0")...); err != nil {
		return err
	}
	kwokConfig := filepath.Join(c.Dir, "kwok-config.yaml")
	if err := os.WriteFile(kwokConfig, []byte(kwokConfiguration), 0o600); err != nil {
		return err
	}
	if err := c.run(o, "kwok", kubeconfig, "--config="+stages, "--config="+kwokConfig, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+KwokNodeAnnotation+"=fake", "--server-address=127.0.0.1:"+strconv.Itoa(kwokPort)); err != nil {
		return err
	}
	return nil
}

// createFleet creates the nodes of o.Profile and waits until they are Ready.
func (c *Cluster) createFleet(ctx context.Context, o Options, cs kubernetes.Interface) error {
	cat := o.Catalog
	if cat == nil {
		cat = catalog.Default()
	}
	nodes, err := FleetNodes(o.Profile, cat)
	if err != nil {
		return err
	}
	o.logf("creating %d nodes of fleet %q", len(nodes), o.Profile)
	if err := createNodes(ctx, cs, nodes); err != nil {
		return err
	}
	c.Nodes = len(nodes)
	if err := c.save(); err != nil {
		return err
	}
	// The add-ons are created before the nodes are Ready, so that their controllers and the
	// scheduler work while kwok and the node lifecycle controller bring the nodes up.
	production := Profiles[o.Profile].ProductionLike
	addons := ClusterAddons()
	if production {
		o.logf("creating the cluster add-ons: %d DaemonSets, %d Deployments in namespaces %s",
			len(addons.DaemonSets), len(addons.Deployments), strings.Join(addons.Namespaces, ", "))
		if err := createAddons(ctx, cs, addons); err != nil {
			return err
		}
	}
	o.logf("waiting for %d nodes to be Ready", len(nodes))
	if err := c.waitNodesReady(ctx, cs, len(nodes), readyTimeout(5*time.Minute, len(nodes))); err != nil {
		return err
	}
	if production {
		o.logf("waiting for the DaemonSets' pods and the Deployments to be ready")
		ready, err := c.waitAddonsReady(ctx, cs, addons, readyTimeout(3*time.Minute, len(nodes)))
		if err != nil {
			return err
		}
		o.logf("%d daemon pods Ready on %d nodes (%d DaemonSets); %d Deployments available",
			ready.DaemonPods, len(nodes), len(addons.DaemonSets), len(addons.Deployments))
	}
	return nil
}

// readyTimeout is base for a fleet of up to 200 nodes and grows with the fleet beyond: on a busy
// two-core machine kwok marks about 30 pods a second Ready, and a production-like node runs five or
// six DaemonSet pods (a 1,000-node fleet took 3 minutes to get its nodes Ready and 3 more for most
// of its daemon pods).
func readyTimeout(base time.Duration, nodes int) time.Duration {
	return base + time.Duration(max(0, nodes-200))*250*time.Millisecond
}

// startProducts starts kcloud-scheduler and kcloud-operator (with the admission webhooks) when
// o names their binaries.
func (c *Cluster) startProducts(ctx context.Context, o Options) error {
	if o.Scheduler != "" {
		o.logf("starting kcloud-scheduler")
		cfgPath := filepath.Join(c.Dir, "kcloud-scheduler-config.yaml")
		schedCfg := strings.Replace(string(o.SchedulerConfig), "clientConnection:", "clientConnection:\n  kubeconfig: "+c.Kubeconfig, 1)
		if err := os.WriteFile(cfgPath, []byte(schedCfg), 0o600); err != nil {
			return err
		}
		if err := c.runPath(o.Scheduler, "kcloud-scheduler", "--config="+cfgPath, "--secure-port=0"); err != nil {
			return err
		}
	}
	if o.Operator != "" {
		args := o.OperatorArgs
		if o.Webhooks {
			webhookArgs, err := c.installWebhooks(ctx)
			if err != nil {
				return err
			}
			args = append(webhookArgs, args...)
			o.logf("installed the admission webhooks, served by kcloud-operator on %s", c.WebhookURL)
		}
		o.logf("starting kcloud-operator")
		if err := c.StartOperator(ctx, o.Operator, args...); err != nil {
			return err
		}
	}
	return nil
}

// OperatorNamespace is where the operator keeps its certificate Secret on the local cluster.
const OperatorNamespace = "kcloud-operator-system"

// installWebhooks points the webhook configurations at a free loopback port and returns the
// operator flags that serve them there.
func (c *Cluster) installWebhooks(ctx context.Context) ([]string, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	a, err := install.NewApplier(c.Config)
	if err != nil {
		return nil, err
	}
	if err := a.EnsureNamespace(ctx, OperatorNamespace); err != nil {
		return nil, err
	}
	c.WebhookURL = fmt.Sprintf("https://127.0.0.1:%d", port)
	if _, err := a.WebhooksAt(ctx, c.WebhookURL); err != nil {
		return nil, fmt.Errorf("installing the webhook configurations: %w", err)
	}
	return []string{fmt.Sprintf("--webhook-port=%d", port), "--webhook-host=127.0.0.1", "--webhook-extra-ips=127.0.0.1",
		"--operator-namespace=" + OperatorNamespace, "--webhook-cert-dir=" + filepath.Join(c.Dir, "webhook-certs")}, nil
}

// StartOperator runs a kcloud-operator against the cluster with plain-HTTP metrics and probes on
// loopback (recorded in the state) and waits until it reports ready.
func (c *Cluster) StartOperator(ctx context.Context, path string, args ...string) error {
	metricsPort, err := freePort()
	if err != nil {
		return err
	}
	probePort, err := freePort()
	if err != nil {
		return err
	}
	c.OperatorMetrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	c.OperatorProbes = fmt.Sprintf("http://127.0.0.1:%d", probePort)
	all := append([]string{"--kubeconfig=" + c.Kubeconfig, "--metrics-secure=false",
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort)}, args...)
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--webhook-port") }) {
		all = append(all, "--webhook-port=0") // no webhook configurations point here unless asked
	}
	if err := c.Start(path, "kcloud-operator", all...); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(c.OperatorProbes + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kcloud-operator not ready after 2 minutes (log: %s)", filepath.Join(c.Dir, "kcloud-operator.log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func writeKubeconfig(path, server string, p pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kcloud-dev"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: p.path("ca.crt")}
	cfg.AuthInfos["kcloud-dev-admin"] = &clientcmdapi.AuthInfo{ClientCertificate: p.path("admin.crt"), ClientKey: p.path("admin.key")}
	cfg.Contexts["kcloud-dev"] = &clientcmdapi.Context{Cluster: "kcloud-dev", AuthInfo: "kcloud-dev-admin"}
	cfg.CurrentContext = "kcloud-dev"
	return clientcmd.WriteToFile(*cfg, path)
}

// Start runs another program as part of the cluster: Stop and `kcloud dev down` stop it too.
func (c *Cluster) Start(path, name string, args ...string) error {
	if err := c.runPath(path, name, args...); err != nil {
		return err
	}
	return c.save()
}

// run starts one of the control-plane binaries of o.BinDir.
func (c *Cluster) run(o Options, name string, args ...string) error {
	return c.runPath(filepath.Join(o.BinDir, name), name, args...)
}

// runPath starts a binary in its own process group (so it outlives the CLI), logging to the state dir.
func (c *Cluster) runPath(path, name string, args ...string) error {
	logPath := filepath.Join(c.Dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// The child gets its own copy of the descriptor at Start; ours only hands it over, and the child's
	// writes do not depend on how closing ours goes.
	defer func() { _ = logf.Close() }()
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	proc := &Process{Name: name, PID: cmd.Process.Pid, Args: args, Log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(proc.done) }()
	c.Processes = append(c.Processes, proc)
	if err := c.save(); err != nil {
		return err
	}
	// A process that dies at once (bad flag, port taken) is reported with its log.
	select {
	case <-proc.done:
		return fmt.Errorf("%s exited at start; its log %s ends with:\n%s", name, logPath, tail(logPath, 15))
	case <-time.After(300 * time.Millisecond):
	}
	return nil
}

func tail(path string, lines int) string {
	b, _ := os.ReadFile(path)
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func (c *Cluster) save() error {
	b, err := json.MarshalIndent(c.State, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.Dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.Dir, stateFile))
}

// exited returns the first started process that is no longer running.
func (c *Cluster) exited() *Process {
	for _, p := range c.Processes {
		if !Alive(p.PID) {
			return p
		}
	}
	return nil
}

func (c *Cluster) waitReady(ctx context.Context, cs kubernetes.Interface, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if p := c.exited(); p != nil {
			return fmt.Errorf("%s exited; its log %s ends with:\n%s", p.Name, p.Log, tail(p.Log, 15))
		}
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready after %s: %v", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func createNodes(ctx context.Context, cs kubernetes.Interface, nodes []corev1.Node) error {
	errs := make(chan error, len(nodes))
	sem := make(chan struct{}, 32)
	for i := range nodes {
		sem <- struct{}{}
		go func(n *corev1.Node) {
			defer func() { <-sem }()
			_, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				errs <- fmt.Errorf("creating node %s: %w", n.Name, err)
				return
			}
			errs <- nil
		}(&nodes[i])
	}
	var all []error
	for range nodes {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// NodeReady reports whether kwok reports the node Ready and the node lifecycle controller has
// lifted the not-ready taint, i.e. pods can be scheduled to it.
func NodeReady(n *corev1.Node) bool {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return false
		}
	}
	return ready
}

func (c *Cluster) waitNodesReady(ctx context.Context, cs kubernetes.Interface, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if p := c.exited(); p != nil {
			return fmt.Errorf("%s exited; its log %s ends with:\n%s", p.Name, p.Log, tail(p.Log, 15))
		}
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: LabelFleet})
		ready := 0
		if err == nil {
			for i := range list.Items {
				if NodeReady(&list.Items[i]) {
					ready++
				}
			}
			if ready >= want {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d nodes Ready after %s (last error: %v)", ready, want, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Stop stops every process of the cluster and removes its state directory.
func (c *Cluster) Stop() error {
	if err := c.stop(15 * time.Second); err != nil {
		return err
	}
	return os.RemoveAll(c.Dir)
}

// stop terminates the processes one by one in reverse start order, so that each can still reach
// what it depends on while it shuts down (kube-apiserver hangs on a stopped etcd): SIGTERM to the
// process group, then SIGKILL after the grace period.
func (c *Cluster) stop(grace time.Duration) error {
	var left []string
	for i := len(c.Processes) - 1; i >= 0; i-- {
		p := c.Processes[i]
		if !Alive(p.PID) {
			continue
		}
		_ = syscall.Kill(-p.PID, syscall.SIGTERM)
		if !p.wait(grace) {
			_ = syscall.Kill(-p.PID, syscall.SIGKILL)
			if !p.wait(5 * time.Second) {
				left = append(left, fmt.Sprintf("%s (pid %d)", p.Name, p.PID))
			}
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("still running after SIGKILL: %s", strings.Join(left, ", "))
	}
	return nil
}

// wait reports whether the process ended within d; it reaps it when this process started it.
func (p *Process) wait(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if p.done != nil {
			select {
			case <-p.done:
				return true
			case <-time.After(50 * time.Millisecond):
			}
		} else if !Alive(p.PID) {
			return true
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return !Alive(p.PID)
}

// UpTemporary starts a cluster in a new temporary state directory, logging progress to stderr unless
// o.Log is set; stop stops it and removes the directory, reporting a failure on stderr.
func UpTemporary(ctx context.Context, o Options) (c *Cluster, stop func(), err error) {
	dir, err := os.MkdirTemp("", "kcloud-cluster-")
	if err != nil {
		return nil, nil, err
	}
	o.StateDir = filepath.Join(dir, "cluster")
	if o.Log == nil {
		start := time.Now()
		o.Log = func(f string, a ...any) {
			fmt.Fprintf(os.Stderr, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(f, a...))
		}
	}
	if c, err = Up(ctx, o); err != nil {
		_, _ = Down(o.StateDir)
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	return c, func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the local cluster:", err)
		}
		_ = os.RemoveAll(dir)
	}, nil
}

// Down stops the cluster recorded in a state directory (whatever process started it) and removes the
// directory. A directory without state is an error; a stopped cluster's leftovers are cleaned.
func Down(dir string) (*State, error) {
	s, err := ReadState(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no local cluster in %s (no %s)", dir, stateFile)
		}
		return nil, err
	}
	c := &Cluster{Dir: dir, State: *s}
	if err := c.stop(15 * time.Second); err != nil {
		return s, err
	}
	return s, os.RemoveAll(dir)
}
