// Package deploy installs the product the ways a user does — the Helm chart (the product
// description's `helm install` command verbatim, then non-default values), and `make install` /
// `make deploy` (kustomize) — each on a fresh local cluster (kcloud dev up's control plane and kwok
// fleet; kwok runs no containers, so the images need not exist), and checks what the API server
// holds: every rendered object applied, pods admitted under Pod Security "restricted", and the
// ServiceAccounts' permissions through SubjectAccessReviews.
//
// It has its own clusters rather than the e2e suite's, whose operator serves the same webhook
// configurations on loopback.
package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"kcloud.io/optimizer/pkg/devcluster"
	"kcloud.io/optimizer/pkg/install"
)

var (
	controlPlane string // KCLOUD_BIN_DIR: kube-apiserver, kubectl, ...
	helmBin      string
	root         string
)

func TestMain(m *testing.M) {
	_, file, _, _ := goruntime.Caller(0)
	root = filepath.Join(filepath.Dir(file), "..", "..", "..")
	controlPlane = os.Getenv("KCLOUD_BIN_DIR")
	if controlPlane == "" {
		fmt.Fprintln(os.Stderr, "deploy: KCLOUD_BIN_DIR is not set: run with `make test-e2e` (or `make test`), which builds the control plane and helm from the module graph")
		os.Exit(1)
	}
	helmBin = os.Getenv("KCLOUD_HELM")
	if helmBin == "" {
		// Cached under bin/helm after the first build.
		out, err := exec.Command(filepath.Join(root, "hack", "build-helm.sh")).Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, "deploy: building helm:", err)
			os.Exit(1)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		helmBin = lines[len(lines)-1]
	}
	os.Exit(m.Run())
}

// cluster is a fresh local cluster for one test, with clients that record API warnings.
type cluster struct {
	*devcluster.Cluster
	cs       kubernetes.Interface
	dyn      dynamic.Interface
	mapper   meta.ResettableRESTMapper
	warnings *warningLog
}

type warningLog struct{ msgs []string }

func (w *warningLog) HandleWarningHeader(code int, agent, text string) {
	w.msgs = append(w.msgs, text)
}

func (w *warningLog) take() []string {
	m := w.msgs
	w.msgs = nil
	return m
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, stop, err := devcluster.UpTemporary(ctx, devcluster.Options{BinDir: controlPlane, Profile: "default"})
	if err != nil {
		t.Fatalf("local cluster: %v", err)
	}
	t.Cleanup(stop)
	cfg := rest.CopyConfig(c.Config)
	w := &warningLog{}
	cfg.WarningHandler = w
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{Cluster: c, cs: cs, dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), warnings: w}
}

// run runs a shell script in the checkout with the cluster's kubeconfig, and helm and kubectl
// (built from the module graph) first on PATH; helm keeps its files in a temporary directory.
func (c *cluster) run(t *testing.T, script string) string {
	t.Helper()
	helmHome := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = root
	var env []string
	for _, e := range os.Environ() {
		// A test run by `make test` must not hand make's flags or jobserver to a nested make.
		if k, _, _ := strings.Cut(e, "="); !slices.Contains([]string{"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "KUBECONFIG", "PATH"}, k) {
			env = append(env, e)
		}
	}
	cmd.Env = append(env,
		"KUBECONFIG="+c.Kubeconfig,
		"PATH="+filepath.Dir(helmBin)+":"+controlPlane+":"+os.Getenv("PATH"),
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s\n%v\n%s", script, err, out.String())
	}
	t.Logf("$ %s\n%s", strings.TrimSpace(script), out.String())
	return out.String()
}

// helmTemplate renders the chart with extra helm arguments, CRDs included.
func helmTemplate(t *testing.T, release, namespace string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	all := append([]string{"template", release, "./charts/kcloud-operator", "--namespace", namespace, "--include-crds"}, args...)
	cmd := exec.Command(helmBin, all...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(all, " "), err, stderr.String())
	}
	objs, err := install.Decode("helm template", out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// kustomize renders a kustomization with kubectl's built-in kustomize, as `make deploy` applies it.
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	cmd := exec.Command(filepath.Join(controlPlane, "kubectl"), "kustomize", dir)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	objs, err := install.Decode(dir, out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// apply server-side-applies objects in order (CRDs first, then namespaces, then the rest, waiting
// for CRDs to be served), with strict field validation so that a misspelt field fails here.
func (c *cluster) apply(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rank := func(o *unstructured.Unstructured) int {
		switch o.GetKind() {
		case "CustomResourceDefinition":
			return 0
		case "Namespace":
			return 1
		}
		return 2
	}
	sorted := slices.Clone(objs)
	slices.SortStableFunc(sorted, func(a, b *unstructured.Unstructured) int { return rank(a) - rank(b) })
	var crds []string
	for _, o := range sorted {
		if o.GetKind() != "CustomResourceDefinition" && len(crds) > 0 {
			a, err := install.NewApplier(c.Config)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.WaitEstablished(ctx, crds, time.Minute); err != nil {
				t.Fatal(err)
			}
			c.mapper.Reset()
			crds = nil
		}
		gvk := o.GroupVersionKind()
		m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", gvk.Kind, o.GetName(), err)
		}
		var ri dynamic.ResourceInterface = c.dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if o.GetNamespace() == "" {
				t.Fatalf("%s %s has no namespace", gvk.Kind, o.GetName())
			}
			ri = c.dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		body, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		force := true
		if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{
			FieldManager: "kcloud-deploy-test", Force: &force, FieldValidation: "Strict"}); err != nil {
			t.Fatalf("applying %s %s/%s: %v", gvk.Kind, o.GetNamespace(), o.GetName(), err)
		}
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o.GetName())
		}
	}
}

// checkExist gets every object back from the API server.
func (c *cluster) checkExist(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	c.mapper.Reset()
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("%s %s: %v", gvk.Kind, o.GetName(), err)
			continue
		}
		var ri dynamic.ResourceInterface = c.dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = c.dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		if _, err := ri.Get(context.Background(), o.GetName(), metav1.GetOptions{}); err != nil {
			t.Errorf("%s %s/%s not in the cluster: %v", gvk.Kind, o.GetNamespace(), o.GetName(), err)
		}
	}
}

// waitRunning waits until every Deployment in the namespace has its replicas Running.
func (c *cluster) waitRunning(t *testing.T, namespace string, want map[string]int32) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var missing []string
		for name, replicas := range want {
			d, err := c.cs.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				missing = append(missing, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
				t.Fatalf("deployment %s/%s: spec.replicas %v, want %d", namespace, name, d.Spec.Replicas, replicas)
			}
			sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			pods, err := c.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
			if err != nil {
				t.Fatal(err)
			}
			running := 0
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
					running++
				}
			}
			if int32(running) != replicas {
				missing = append(missing, fmt.Sprintf("%s: %d of %d pods Running", name, running, replicas))
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			events, _ := c.cs.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
			var ev []string
			for _, e := range events.Items {
				ev = append(ev, e.InvolvedObject.Name+": "+e.Reason+": "+e.Message)
			}
			t.Fatalf("namespace %s after 2 minutes: %s\nevents:\n%s", namespace, strings.Join(missing, "; "), strings.Join(ev, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// enforceRestricted labels a namespace for Pod Security "restricted" enforcement, fails on the
// API server's warnings about existing pods that violate it, recreates those pods so that the
// admission plugin judges each, and checks that a privileged pod is now refused.
func (c *cluster) enforceRestricted(t *testing.T, namespace string, want map[string]int32) {
	t.Helper()
	ctx := context.Background()
	c.warnings.take()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"restricted",%q:"latest"}}}`, psapi.EnforceLevelLabel, psapi.EnforceVersionLabel)
	if _, err := c.cs.CoreV1().Namespaces().Patch(ctx, namespace, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if w := c.warnings.take(); len(w) > 0 {
		t.Errorf("labelling %s restricted: the API server warns about existing pods: %s", namespace, strings.Join(w, "; "))
	}
	c.recreatePods(t, namespace, want)
	bad := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "privileged-probe", Namespace: namespace},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/x:1",
			SecurityContext: &corev1.SecurityContext{Privileged: ptrTo(true)}}}},
	}
	_, err := c.cs.CoreV1().Pods(namespace).Create(ctx, bad, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Errorf("a privileged pod in %s: got %v, want a PodSecurity refusal (enforcement not active)", namespace, err)
	}
}

// recreatePods deletes every pod in the namespace and waits for the Deployments' replacements.
func (c *cluster) recreatePods(t *testing.T, namespace string, want map[string]int32) {
	t.Helper()
	ctx := context.Background()
	pods, err := c.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]bool{}
	for _, p := range pods.Items {
		old[p.Name] = true
		if err := c.cs.CoreV1().Pods(namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0))}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		pods, err := c.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fresh := 0
		for _, p := range pods.Items {
			if !old[p.Name] && p.Status.Phase == corev1.PodRunning {
				fresh++
			}
		}
		var total int32
		for _, n := range want {
			total += n
		}
		if int32(fresh) == total {
			break
		}
		if time.Now().After(deadline) {
			rs, _ := c.cs.AppsV1().ReplicaSets(namespace).List(ctx, metav1.ListOptions{})
			var conds []string
			for _, r := range rs.Items {
				for _, cond := range r.Status.Conditions {
					conds = append(conds, r.Name+": "+cond.Message)
				}
			}
			t.Fatalf("%s: %d of %d pods recreated Running under enforcement; ReplicaSet conditions: %s", namespace, fresh, total, strings.Join(conds, "; "))
		}
		time.Sleep(300 * time.Millisecond)
	}
	c.waitRunning(t, namespace, want)
}

func ptrTo[T any](v T) *T { return &v }

// checkPodSecurity runs Pod Security admission's own checks (restricted, latest) over every pod
// template of the rendered workloads and returns the Deployments found.
func checkPodSecurity(t *testing.T, objs []*unstructured.Unstructured) map[string]*appsv1.Deployment {
	t.Helper()
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string]*appsv1.Deployment{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			if slices.Contains([]string{"Pod", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet"}, o.GetKind()) {
				t.Errorf("%s %s: a workload kind this check does not cover", o.GetKind(), o.GetName())
			}
			continue
		}
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, &d, true); err != nil {
			t.Fatalf("deployment %s: %v", o.GetName(), err)
		}
		res := policy.AggregateCheckResults(eval.EvaluatePod(psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()},
			&d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec))
		if !res.Allowed {
			t.Errorf("deployment %s violates Pod Security restricted: %s: %s", d.Name, res.ForbiddenReason(), res.ForbiddenDetail())
		}
		for _, ctr := range d.Spec.Template.Spec.Containers {
			sc := ctr.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("deployment %s container %s: root filesystem not read-only", d.Name, ctr.Name)
			}
		}
		deps[d.Name] = &d
	}
	if len(deps) == 0 {
		t.Error("no Deployment rendered")
	}
	return deps
}

// checkNoWildcard fails on "*" anywhere in a rendered Role or ClusterRole, and in the roles the
// rendered bindings refer to (built-in ones included), read from the cluster.
func (c *cluster) checkNoWildcard(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	check := func(what string, rules []rbacv1.PolicyRule) {
		if len(rules) == 0 {
			t.Errorf("%s has no rules", what)
		}
		for i, r := range rules {
			for _, field := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames, r.NonResourceURLs} {
				for _, v := range field {
					if strings.Contains(v, "*") {
						t.Errorf("%s rule %d has a wildcard: %+v", what, i, r)
					}
				}
			}
		}
	}
	roles := 0
	for _, o := range objs {
		switch o.GetKind() {
		case "Role", "ClusterRole":
			var r rbacv1.ClusterRole // a Role has the same rules field
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &r); err != nil {
				t.Fatal(err)
			}
			check(o.GetKind()+" "+o.GetName(), r.Rules)
			roles++
		case "RoleBinding", "ClusterRoleBinding":
			ref, _, _ := unstructured.NestedStringMap(o.Object, "roleRef")
			var rules []rbacv1.PolicyRule
			if ref["kind"] == "ClusterRole" {
				r, err := c.cs.RbacV1().ClusterRoles().Get(ctx, ref["name"], metav1.GetOptions{})
				if err != nil {
					t.Fatalf("%s %s refers to ClusterRole %s: %v", o.GetKind(), o.GetName(), ref["name"], err)
				}
				rules = r.Rules
			} else {
				r, err := c.cs.RbacV1().Roles(o.GetNamespace()).Get(ctx, ref["name"], metav1.GetOptions{})
				if err != nil {
					t.Fatalf("%s %s refers to Role %s: %v", o.GetKind(), o.GetName(), ref["name"], err)
				}
				rules = r.Rules
			}
			check(fmt.Sprintf("%s %s (bound by %s %s)", ref["kind"], ref["name"], o.GetKind(), o.GetName()), rules)
		}
	}
	if roles == 0 {
		t.Error("no Role or ClusterRole rendered")
	}
}

func byKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func names(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetName())
	}
	slices.Sort(out)
	return out
}
