package deploy

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"kcloud.io/optimizer/pkg/devcluster"
)

// runAsServiceAccounts runs the real kcloud-operator and kcloud-scheduler binaries on the host
// against the cluster, each impersonating its ServiceAccount of the installation in ns (kwok runs
// no containers, so the Deployments' pods do not run them): with nothing but the installed RBAC,
// the operator must sync its caches, issue its webhook certificate into its Secret and the
// configurations, and win leader election, and the scheduler must win its own and bind a pod. A
// "forbidden" in either log fails the test.
func (c *cluster) runAsServiceAccounts(t *testing.T, ns, operatorSA, schedulerSA string) {
	ctx := context.Background()
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/kcloud-operator", "./cmd/kcloud-scheduler")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	operatorKubeconfig := c.impersonating(t, ns, operatorSA)
	schedulerKubeconfig := c.impersonating(t, ns, schedulerSA)
	ports := make([]int, 3)
	for i := range ports {
		var err error
		if ports[i], err = devcluster.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	webhookPort, probePort, schedulerPort := ports[0], ports[1], ports[2]

	t.Setenv("POD_NAME", "operator-on-host")
	t.Setenv("OPERATOR_NAME", "kcloud-operator")
	if err := c.Start(filepath.Join(bin, "kcloud-operator"), "kcloud-operator-as-sa",
		"--kubeconfig="+operatorKubeconfig, "--leader-elect=true", "--leader-election-namespace="+ns,
		"--metrics-bind-address=0", fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort),
		fmt.Sprintf("--webhook-port=%d", webhookPort), "--webhook-host=127.0.0.1", "--webhook-cert-mode=self",
		"--operator-namespace="+ns, "--webhook-service-name=kcloud-webhook-service", "--webhook-secret-name=kcloud-webhook-certs",
		"--webhook-cert-dir="+t.TempDir()); err != nil {
		t.Fatal(err)
	}
	operatorLog := filepath.Join(c.Dir, "kcloud-operator-as-sa.log")
	waitFor(t, "kcloud-operator ready as "+operatorSA, operatorLog, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	c.waitLease(t, ns, "kcloud-operator.kcloud.io", "operator-on-host", operatorLog)
	if _, err := c.cs.CoreV1().Secrets(ns).Get(ctx, "kcloud-webhook-certs", metav1.GetOptions{}); err != nil {
		t.Errorf("the operator's certificate Secret: %v", err)
	}
	mwc, err := c.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "kcloud-mutating-webhook-configuration", metav1.GetOptions{})
	if err != nil || len(mwc.Webhooks) == 0 || len(mwc.Webhooks[0].ClientConfig.CABundle) == 0 {
		t.Errorf("the operator did not inject its CA bundle into the mutating webhook configuration (err %v)", err)
	}

	schedCfg, err := os.ReadFile(filepath.Join(root, "config", "scheduler", "kcloud-scheduler-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "kcloud-scheduler-config.yaml")
	withKubeconfig := strings.Replace(string(schedCfg), "clientConnection:", "clientConnection:\n  kubeconfig: "+schedulerKubeconfig, 1)
	if err := os.WriteFile(cfgPath, []byte(withKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	// The same leader-election flags as the Deployment's, and delegated authentication and
	// authorization of its secure port through the API server as the ServiceAccount.
	if err := c.Start(filepath.Join(bin, "kcloud-scheduler"), "kcloud-scheduler-as-sa",
		"--config="+cfgPath, "--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", schedulerPort),
		"--authentication-kubeconfig="+schedulerKubeconfig, "--authorization-kubeconfig="+schedulerKubeconfig,
		"--cert-dir="+t.TempDir(), "--leader-elect=true", "--leader-elect-resource-name=kcloud-scheduler",
		"--leader-elect-resource-namespace="+ns); err != nil {
		t.Fatal(err)
	}
	schedulerLog := filepath.Join(c.Dir, "kcloud-scheduler-as-sa.log")
	c.waitLease(t, ns, "kcloud-scheduler", "", schedulerLog)

	const podNS = "sa-check"
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: podNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		// The webhooks' Service has no reachable endpoint here (kwok pods); the opt-out skips them.
		ObjectMeta: metav1.ObjectMeta{Name: "placed-by-kcloud", Namespace: podNS, Annotations: map[string]string{"kcloud.io/ignore": "true"}},
		Spec: corev1.PodSpec{SchedulerName: "kcloud-scheduler", Containers: []corev1.Container{{Name: "c", Image: "example.com/x:1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}},
	}
	if _, err := c.cs.CoreV1().Pods(podNS).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "kcloud-scheduler binding a pod as "+schedulerSA, schedulerLog, func() bool {
		p, err := c.cs.CoreV1().Pods(podNS).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.Spec.NodeName != ""
	})

	forbidden := regexp.MustCompile(`(?i)forbidden`)
	for _, log := range []string{operatorLog, schedulerLog} {
		b, _ := os.ReadFile(log)
		for _, line := range strings.Split(string(b), "\n") {
			if forbidden.MatchString(line) {
				t.Errorf("%s: %s", filepath.Base(log), line)
			}
		}
	}
}

// impersonating writes a kubeconfig that acts as the ServiceAccount ns/sa (its user and groups),
// through the admin's credentials.
func (c *cluster) impersonating(t *testing.T, ns, sa string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate = "system:serviceaccount:" + ns + ":" + sa
		a.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	}
	path := filepath.Join(t.TempDir(), sa+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitLease waits until the Lease ns/name has a holder (whose identity starts with holder, when set).
func (c *cluster) waitLease(t *testing.T, ns, name, holder, log string) {
	t.Helper()
	waitFor(t, "lease "+ns+"/"+name, log, func() bool {
		l, err := c.cs.CoordinationV1().Leases(ns).Get(context.Background(), name, metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && strings.HasPrefix(*l.Spec.HolderIdentity, holder)
	})
}

func waitFor(t *testing.T, what, log string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Fatalf("%s: not after 90s; %s ends with:\n%s", what, log, strings.Join(lines[max(0, len(lines)-25):], "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}
