// Package image runs the product's container image (`make image`: an OCI archive, built without a
// container daemon) the way the Helm chart runs it, with podman on the host network against a
// fresh local cluster (kcloud dev up's control plane and kwok fleet): the chart's operator
// container, as `helm template` renders it with the default values (its image, args, env,
// securityContext and emptyDir volumes), becomes a `podman run` whose only changes are loopback
// ports and a kubeconfig in place of the in-cluster config, and whose webhook configurations call
// it on loopback. The container must run as the chart's uid with a read-only root, serve the
// admission webhooks with the certificate it issues itself, and give a WorkloadOptimizer a status.
//
// It runs under `make test-image`, which builds the archive, installs podman and writes its
// containers.conf; it skips without KCLOUD_IMAGE_ARCHIVE or a podman on PATH.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/install"
)

const (
	release   = "kcloud-operator"
	namespace = "kcloud-operator-system"
	// kubeconfigPath is where the container finds the cluster's kubeconfig, instead of the
	// in-cluster ServiceAccount a pod would have.
	kubeconfigPath = "/etc/kcloud/kubeconfig"
)

func repoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

func TestImageAsTheChartRunsIt(t *testing.T) {
	archive := os.Getenv("KCLOUD_IMAGE_ARCHIVE")
	if archive == "" {
		t.Skip("KCLOUD_IMAGE_ARCHIVE is not set: `make test-image` builds the image and runs this test")
	}
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not on PATH: `make test-image` installs it (hack/ensure-podman.sh)")
	}
	controlPlane := os.Getenv("KCLOUD_BIN_DIR")
	if controlPlane == "" {
		t.Fatal("KCLOUD_BIN_DIR is not set: run with `make test-image`, which builds the control plane from the module graph")
	}
	root := repoRoot()

	// The archive's name is the chart's default image: <image.repository>:<appVersion>.
	ref := archiveRef(t, archive)
	if want := chartDefaultImage(t, root); ref != want && os.Getenv("KCLOUD_IMAGE") == "" {
		t.Errorf("the archive is tagged %s; the chart's default image is %s", ref, want)
	}
	out := mustRun(t, podman, "load", "-i", archive)
	if !strings.Contains(out, "Loaded image: "+ref) && !strings.Contains(out, "Loaded image(s): "+ref) {
		t.Fatalf("podman load -i %s did not load %s:\n%s", archive, ref, out)
	}
	checkImageConfig(t, podman, ref)

	// The scheduler, from the same image, as the chart's scheduler Deployment runs it (command).
	out = mustRun(t, podman, "run", "--rm", "--network", "host", "--read-only", "--user", "65532:65532",
		"--entrypoint", "/kcloud-scheduler", ref, "--version")
	// It is kube-scheduler of the module graph's Kubernetes, and says so.
	k8sVersion := strings.TrimSpace(mustRun(t, "go", "list", "-m", "-f", "{{.Version}}", "k8s.io/kubernetes"))
	if want := "Kubernetes " + k8sVersion; strings.TrimSpace(out) != want {
		t.Errorf("/kcloud-scheduler --version: %q, want %q", strings.TrimSpace(out), want)
	}
	t.Logf("/kcloud-scheduler --version: %s", strings.TrimSpace(out))

	operator := chartOperator(t, root)
	if operator.Image != ref {
		t.Errorf("the chart's operator image is %s; the archive's is %s", operator.Image, ref)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, stop, err := devcluster.UpTemporary(ctx, devcluster.Options{BinDir: controlPlane, Profile: "bare", Install: install.ApplyCRDs})
	if err != nil {
		t.Fatalf("local cluster: %v", err)
	}
	t.Cleanup(stop)

	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = devcluster.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	webhookPort, metricsPort, probePort := ports[0], ports[1], ports[2]
	a, err := install.NewApplier(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.EnsureNamespace(ctx, namespace); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WebhooksAt(ctx, fmt.Sprintf("https://127.0.0.1:%d", webhookPort)); err != nil {
		t.Fatalf("webhook configurations: %v", err)
	}

	kubeconfig := flatKubeconfig(t, c.Kubeconfig)
	name := fmt.Sprintf("kcloud-image-test-%d", os.Getpid())
	args := podmanRunArgs(t, operator, name, kubeconfig, webhookPort, metricsPort, probePort)
	t.Logf("$ podman %s", strings.Join(args, " "))
	mustRun(t, podman, args...)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command(podman, "logs", name).CombinedOutput()
			t.Logf("podman logs %s:\n%s", name, logs)
		}
		if out, err := exec.Command(podman, "rm", "-f", "-t", "5", name).CombinedOutput(); err != nil {
			t.Errorf("podman rm -f %s: %v\n%s", name, err, out)
		}
	})

	waitFor(t, "the operator container's /readyz", 2*time.Minute, func() error {
		if state := strings.TrimSpace(run(podman, "inspect", "--format", "{{.State.Status}}", name)); state != "running" {
			return fmt.Errorf("container %s", state)
		}
		return get(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort))
	})
	checkProcess(t, podman, name)

	cl, err := client.New(c.Config, client.Options{Scheme: scheme()})
	if err != nil {
		t.Fatal(err)
	}
	const woNS = "image-check"
	if err := cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: woNS}}); err != nil {
		t.Fatal(err)
	}
	// Refused by the validating webhook (not the CRD's schema): four GPUs draw more than 1 W idle.
	// Until the operator has injected its CA into the configuration the call fails with a TLS
	// error instead, so the first answers may be that.
	const refusal = "is below the least the requested accelerators draw idle"
	waitFor(t, "the webhook refusing an invalid WorkloadOptimizer", time.Minute, func() error {
		err := cl.Create(ctx, optimizer(woNS, "too-little-power", 4, 1))
		switch {
		case err == nil:
			_ = cl.Delete(ctx, optimizer(woNS, "too-little-power", 4, 1))
			return errors.New("admitted")
		case !strings.Contains(err.Error(), refusal):
			return err
		}
		t.Logf("refused as expected: %v", err)
		return nil
	})
	valid := optimizer(woNS, "fits", 1, 2000)
	if err := cl.Create(ctx, valid); err != nil {
		t.Fatalf("a valid WorkloadOptimizer was refused: %v", err)
	}
	waitFor(t, "the operator giving the WorkloadOptimizer a status", 90*time.Second, func() error {
		var wo kcloudv1alpha1.WorkloadOptimizer
		if err := cl.Get(ctx, client.ObjectKeyFromObject(valid), &wo); err != nil {
			return err
		}
		if wo.Status.Phase == "" || len(wo.Status.Conditions) == 0 {
			return fmt.Errorf("status %+v", wo.Status)
		}
		t.Logf("WorkloadOptimizer %s/%s: phase %s, %d conditions", wo.Namespace, wo.Name, wo.Status.Phase, len(wo.Status.Conditions))
		return nil
	})
	// The certificate the operator issued is in its Secret, as in a cluster.
	var secret corev1.Secret
	if err := cl.Get(ctx, client.ObjectKey{Namespace: namespace, Name: flagValue(operator.Args, "--webhook-secret-name")}, &secret); err != nil {
		t.Errorf("the operator's certificate Secret: %v", err)
	}
}

// archiveRef reads the image's name from the OCI archive's index.json.
func archiveRef(t *testing.T, archive string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no index.json (%v); is it an OCI archive?", archive, err)
		}
		if strings.TrimPrefix(h.Name, "./") != "index.json" {
			continue
		}
		var index struct {
			Manifests []struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		b, err := io.ReadAll(tr)
		if err == nil {
			err = json.Unmarshal(b, &index)
		}
		if err != nil || len(index.Manifests) != 1 || index.Manifests[0].Annotations["io.containerd.image.name"] == "" {
			t.Fatalf("%s: index.json names no single image (%v): %s", archive, err, b)
		}
		return index.Manifests[0].Annotations["io.containerd.image.name"]
	}
}

func chartDefaultImage(t *testing.T, root string) string {
	t.Helper()
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	var values struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
	}
	for path, into := range map[string]any{"Chart.yaml": &chart, "values.yaml": &values} {
		b, err := os.ReadFile(filepath.Join(root, "charts", "kcloud-operator", path))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, into); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	tag := values.Image.Tag
	if tag == "" {
		tag = chart.AppVersion
	}
	return values.Image.Repository + ":" + tag
}

// checkImageConfig compares the loaded image with the Dockerfile's final stage.
func checkImageConfig(t *testing.T, podman, ref string) {
	t.Helper()
	var cfg []struct {
		Config struct {
			User       string            `json:"User"`
			Entrypoint []string          `json:"Entrypoint"`
			Labels     map[string]string `json:"Labels"`
		} `json:"Config"`
		Digest string `json:"Digest"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, podman, "image", "inspect", ref)), &cfg); err != nil || len(cfg) != 1 {
		t.Fatalf("podman image inspect %s: %v", ref, err)
	}
	c := cfg[0].Config
	if c.User != "65532:65532" || strings.Join(c.Entrypoint, " ") != "/kcloud-operator" || c.Labels["org.opencontainers.image.title"] != "kcloud-optimizer" {
		t.Errorf("image config: user %q, entrypoint %q, labels %v; want the Dockerfile's 65532:65532, /kcloud-operator, title kcloud-optimizer",
			c.User, c.Entrypoint, c.Labels)
	}
	t.Logf("loaded %s, digest %s", ref, cfg[0].Digest)
}

// chartOperator renders the chart with its default values and returns the operator Deployment's
// pod spec (the container first, the pod's security context and volumes alongside).
func chartOperator(t *testing.T, root string) renderedOperator {
	t.Helper()
	helm := os.Getenv("KCLOUD_HELM")
	if helm == "" {
		out, err := exec.Command(filepath.Join(root, "hack", "build-helm.sh")).Output()
		if err != nil {
			t.Fatalf("building helm: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		helm = lines[len(lines)-1]
	}
	cmd := exec.Command(helm, "template", release, "./charts/kcloud-operator", "--namespace", namespace)
	cmd.Dir = root
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"), "HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	objs, err := install.Decode("helm template", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetLabels()["app.kubernetes.io/component"] != "operator" {
			continue
		}
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
			t.Fatal(err)
		}
		spec := d.Spec.Template.Spec
		return renderedOperator{Container: spec.Containers[0], Pod: spec}
	}
	t.Fatal("helm template rendered no operator Deployment")
	return renderedOperator{}
}

type renderedOperator struct {
	corev1.Container
	Pod corev1.PodSpec
}

// podmanRunArgs translates the chart's operator container into `podman run` flags: its image,
// args and env (the downward API's fields filled in), the pod's and container's security context,
// and each emptyDir as a tmpfs of its sizeLimit. Only the listening addresses change, to free
// loopback ports (the host network is shared), and a kubeconfig replaces the ServiceAccount.
func podmanRunArgs(t *testing.T, op renderedOperator, name, kubeconfig string, webhookPort, metricsPort, probePort int) []string {
	t.Helper()
	pod, sc := op.Pod.SecurityContext, op.SecurityContext
	if pod == nil || sc == nil || pod.RunAsUser == nil || pod.RunAsGroup == nil {
		t.Fatalf("the chart's operator has no runAsUser/runAsGroup: %+v %+v", pod, sc)
	}
	args := []string{"run", "-d", "--name", name, "--network", "host",
		"--user", fmt.Sprintf("%d:%d", *pod.RunAsUser, *pod.RunAsGroup),
		"-v", kubeconfig + ":" + kubeconfigPath + ":ro"}
	if pod.FSGroup != nil {
		args = append(args, "--group-add", strconv.FormatInt(*pod.FSGroup, 10))
	}
	if ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
		args = append(args, "--read-only", "--read-only-tmpfs=false")
	} else {
		t.Error("the chart's operator container has no readOnlyRootFilesystem")
	}
	if !ptr.Deref(sc.AllowPrivilegeEscalation, true) {
		args = append(args, "--security-opt", "no-new-privileges")
	}
	if sc.Capabilities != nil {
		for _, c := range sc.Capabilities.Drop {
			args = append(args, "--cap-drop", string(c))
		}
	}
	// seccompProfile RuntimeDefault is podman's default profile.
	volumes := map[string]corev1.Volume{}
	for _, v := range op.Pod.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range op.VolumeMounts {
		v := volumes[m.Name]
		if v.EmptyDir == nil {
			t.Fatalf("volume %s of the chart's operator is not an emptyDir; the test knows no other kind", m.Name)
		}
		opts := "rw,mode=1777"
		if v.EmptyDir.SizeLimit != nil {
			opts += fmt.Sprintf(",size=%d", v.EmptyDir.SizeLimit.Value())
		}
		args = append(args, "--tmpfs", m.MountPath+":"+opts)
	}
	env := map[string]string{}
	for _, e := range op.Env {
		value := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				value = name
			case "metadata.namespace":
				value = namespace
			default:
				t.Fatalf("env %s: field %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		}
		env[e.Name] = value
		args = append(args, "--env", e.Name+"="+value)
	}
	args = append(args, op.Image, "--kubeconfig="+kubeconfigPath)
	for _, a := range op.Args {
		flag, _, _ := strings.Cut(a, "=")
		switch flag {
		case "--metrics-bind-address":
			a = fmt.Sprintf("%s=127.0.0.1:%d", flag, metricsPort)
		case "--health-probe-bind-address":
			a = fmt.Sprintf("%s=127.0.0.1:%d", flag, probePort)
		case "--webhook-port":
			// The webhook configurations call https://127.0.0.1:<port>: the certificate names it.
			a = fmt.Sprintf("%s=%d", flag, webhookPort)
			args = append(args, "--webhook-host=127.0.0.1", "--webhook-extra-ips=127.0.0.1")
		}
		for k, v := range env {
			a = strings.ReplaceAll(a, "$("+k+")", v)
		}
		args = append(args, a)
	}
	if op.Command[0] != "/kcloud-operator" {
		t.Errorf("the chart's operator command is %v; the image's entrypoint is /kcloud-operator", op.Command)
	}
	return args
}

// checkProcess looks at the container's process from the host: its uid and gid, and its root
// mount read-only.
func checkProcess(t *testing.T, podman, name string) {
	t.Helper()
	pid := strings.TrimSpace(run(podman, "inspect", "--format", "{{.State.Pid}}", name))
	status, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		t.Fatalf("the container's process %q: %v", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") {
			t.Logf("container process %s %s", f[0], strings.Join(f[1:], " "))
			if f[1] != "65532" || f[2] != "65532" {
				t.Errorf("container process %s %v; want 65532", f[0], f[1:])
			}
		}
	}
	t.Logf("podman top %s user group: %s", name, strings.Join(strings.Fields(run(podman, "top", name, "user", "group")), " "))
	mounts, err := os.ReadFile(filepath.Join("/proc", pid, "mountinfo"))
	if err != nil {
		t.Fatal(err)
	}
	var rootMount string
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[4] == "/" {
			rootMount = line // the last mount on / is the one the process sees
		}
	}
	if f := strings.Fields(rootMount); len(f) < 6 || !strings.HasPrefix(f[5], "ro") {
		t.Errorf("the container's root is not mounted read-only: %q", rootMount)
	} else {
		t.Logf("container root mount: %s", rootMount)
	}
	if ro := strings.TrimSpace(run(podman, "inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name)); ro != "true" {
		t.Errorf("podman inspect: ReadonlyRootfs %s", ro)
	}
}

// flatKubeconfig writes the cluster's kubeconfig with its certificates inlined, readable by the
// container's user, for a read-only bind mount.
func flatKubeconfig(t *testing.T, path string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		t.Fatal(err)
	}
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func optimizer(ns, name string, gpus int32, maxWatts float64) *kcloudv1alpha1.WorkloadOptimizer {
	return &kcloudv1alpha1.WorkloadOptimizer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kcloudv1alpha1.WorkloadOptimizerSpec{
			WorkloadType:     kcloudv1alpha1.WorkloadTraining,
			Resources:        kcloudv1alpha1.WorkloadResources{GPU: gpus},
			PowerConstraints: &kcloudv1alpha1.PowerConstraints{MaxPowerUsage: ptr.To(maxWatts)},
		},
	}
}

func flagValue(args []string, flag string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = kcloudv1alpha1.AddToScheme(s)
	return s
}

func run(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	return string(out)
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func get(url string) error {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

func waitFor(t *testing.T, what string, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
