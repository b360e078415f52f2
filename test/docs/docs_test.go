// Package docs checks that the documentation is true: every command in a fenced shell block of the
// READMEs and docs/*.md either runs, from the repository root, against one fresh local cluster
// (`kcloud dev up`), or is mapped below to the test or target that runs it; every manifest in a
// fenced yaml block is applied to that cluster's kube-apiserver with server-side apply and strict
// field validation, so it is checked against the CRDs. A command that is neither run nor mapped
// fails the test, so a new command cannot enter the docs untested.
//
// How commands run: with `bash -o pipefail -c`, in the repository root, with KUBECONFIG set to the
// test's cluster, KCLOUD_DEV_DIR to its state directory (which stands in for `.dev/cluster` in the
// commands' text), KCLOUD_BIN_DIR to the control-plane binaries, and PATH starting with bin/ (our
// binaries and the kubectl-kcloud plugin), the control plane's directory (kubectl) and helm's
// (`make helm`). Order:
//
//  1. setup: `make build`, then `bin/kcloud dev up` (both are doc commands, run here);
//  2. every block that deploys nothing, in document order (README.md, README.ko.md, docs/EXAMPLES.md,
//     docs/DEVELOPER_GUIDE.md, docs/DEPLOYMENT_GUIDE.md, the other docs, the chart's README), with
//     the yaml blocks applied where they stand;
//  3. the blocks that deploy (helm, `make install|uninstall|deploy|undeploy`), in document order,
//     after the local cluster's own webhook configurations are removed: they call the operator on
//     loopback and bear the names the chart's and kustomize's configurations use;
//  4. teardown: `bin/kcloud dev down`.
//
// A console block (```console) holds commands after "$ " and their output; an output that starts
// with "Error from server" says the command must fail, with that output (text elided with "..."
// is not compared). The same command in several documents runs once.
package docs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// mapped are the doc commands this test does not run, each with the test or target that does.
// Keep it short: a command that can run on the local cluster runs here.
var mapped = map[string]string{
	"make test": "CI: .ci/run is exactly `make test` (which also runs this test)",
	"helm upgrade --install kcloud-operator ./charts/kcloud-operator -n kcloud-operator-system -f my-values.yaml":           "test/e2e/deploy TestHelmChart/non-default_values renders the chart with these values and more (testdata/values-custom.yaml) and applies every object, with the cert-manager and prometheus-operator CRDs the values need, which this cluster does not have",
	"KUBEBUILDER_ASSETS=$(./hack/build-controlplane.sh) go test ./test/integration/webhook/ -run TestPodMutations -count=1": "make test-integration (and make test) run ./test/integration/webhook with the same KUBEBUILDER_ASSETS",
	"make test-unit": "make test runs every package that make test-unit runs (go test ./...), without -short; running it here again would add minutes",
	"make lint":      "make test runs make verify first, and hack/verify.sh runs make lint",
	"podman load -i bin/image/kcloud-optimizer-oci.tar":                                                   "make test-image (part of make test) loads the archive into podman with the containers.conf hack/ensure-podman.sh writes, and runs it",
	"podman tag ghcr.io/kcloud/kcloud-optimizer:0.1.0 registry.example.com/kcloud/kcloud-optimizer:0.1.0": "no registry is reachable here; make test-image runs the loaded image under its own tag",
	"podman push registry.example.com/kcloud/kcloud-optimizer:0.1.0":                                      "no registry is reachable here; make test-image runs the loaded image under its own tag",
}

// Commands that start and stop the cluster the others run on.
const (
	buildCommand    = "make build"
	upCommand       = "bin/kcloud dev up"
	teardownCommand = "bin/kcloud dev down"
)

func repoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// docFiles lists the documents whose commands are checked, in the order they run.
func docFiles(root string) []string {
	files := []string{"README.md", "README.ko.md", "docs/EXAMPLES.md", "docs/DEVELOPER_GUIDE.md", "docs/DEPLOYMENT_GUIDE.md"}
	more, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	sort.Strings(more)
	for _, m := range more {
		rel, _ := filepath.Rel(root, m)
		if !slices.Contains(files, rel) {
			files = append(files, rel)
		}
	}
	return append(files, "charts/kcloud-operator/README.md")
}

// block is a fenced code block of a document.
type block struct {
	file string
	line int // of the opening fence
	lang string
	text string
}

func readBlocks(root, file string) ([]block, error) {
	f, err := os.Open(filepath.Join(root, file))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read only: closing has nothing to report
	var blocks []block
	var cur *block
	var body strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur == nil {
			if lang, ok := strings.CutPrefix(trimmed, "```"); ok {
				cur = &block{file: file, line: n, lang: strings.ToLower(strings.TrimSpace(lang))}
				body.Reset()
			}
			continue
		}
		if trimmed == "```" {
			cur.text = body.String()
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: unterminated code block", file, cur.line)
	}
	return blocks, sc.Err()
}

// command is one shell command of a block, with continuation lines and here-documents joined.
type command struct {
	file      string
	line      int
	text      string
	wantError []string // console output that the command must fail with (fragments, in order)
}

func (c command) where() string { return fmt.Sprintf("%s:%d", c.file, c.line) }

// key identifies a command across documents: whitespace collapsed, a trailing comment dropped.
func (c command) key() string {
	first, rest, heredoc := strings.Cut(c.text, "\n")
	if i := strings.Index(first, " #"); i >= 0 && !strings.ContainsAny(first[:i], `'"`) {
		first = first[:i]
	}
	k := strings.Join(strings.Fields(first), " ")
	if heredoc {
		k += "\n" + rest
	}
	return k
}

func shellCommands(b block) ([]command, error) {
	lines := strings.Split(strings.TrimRight(b.text, "\n"), "\n")
	var out []command
	console := b.lang == "console"
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		start := b.line + 1 + i
		if console {
			cmd, ok := strings.CutPrefix(line, "$ ")
			if !ok {
				continue // output of the previous command
			}
			line = cmd
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		text := line
		for strings.HasSuffix(strings.TrimRight(text, " "), `\`) && i+1 < len(lines) {
			i++
			text = strings.TrimRight(strings.TrimSuffix(strings.TrimRight(text, " "), `\`), " ") + " " + strings.TrimSpace(lines[i])
		}
		if j := strings.Index(text, "<<"); j >= 0 {
			delim := strings.Trim(strings.Fields(text[j+2:])[0], `'"-`)
			var doc []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != delim; i++ {
				doc = append(doc, lines[i])
			}
			if i == len(lines) {
				return nil, fmt.Errorf("%s:%d: here-document without its %s line", b.file, start, delim)
			}
			text += "\n" + strings.Join(doc, "\n") + "\n" + delim
		}
		c := command{file: b.file, line: start, text: strings.TrimSpace(text)}
		if console && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "Error from server") {
			c.wantError = strings.Split(lines[i+1], "...")
		}
		out = append(out, c)
	}
	return out, nil
}

// step is one thing the test does: a command or a yaml block.
type step struct {
	cmd    *command
	yaml   *block
	deploy bool
}

func isShell(lang string) bool {
	return lang == "bash" || lang == "sh" || lang == "shell" || lang == "console"
}

// deploys says whether a command installs or removes the product's deployment.
func deploys(text string) bool {
	f := strings.Fields(text)
	if len(f) == 0 {
		return false
	}
	if f[0] == "helm" {
		return true
	}
	return f[0] == "make" && len(f) > 1 && slices.Contains([]string{"install", "uninstall", "deploy", "undeploy"}, f[1])
}

type env struct {
	root, stateDir, controlPlane, kubeconfig string
	helmDir                                  string
	pending                                  map[string]string // prerequisite -> why it is missing
	vars                                     []string
}

func (e *env) environ() []string {
	path := strings.Join([]string{filepath.Join(e.root, "bin"), e.controlPlane}, string(os.PathListSeparator))
	if e.helmDir != "" {
		path += string(os.PathListSeparator) + e.helmDir
	}
	out := []string{}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "PATH", "KUBECONFIG", "KCLOUD_DEV_DIR", "KCLOUD_BIN_DIR":
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "PATH="+path+string(os.PathListSeparator)+os.Getenv("PATH"),
		"KCLOUD_DEV_DIR="+e.stateDir, "KCLOUD_BIN_DIR="+e.controlPlane)
	if e.kubeconfig != "" {
		out = append(out, "KUBECONFIG="+e.kubeconfig)
	}
	return append(out, e.vars...)
}

// substitute puts the test's state directory where the docs name the default one.
func (e *env) substitute(text string) string {
	text = strings.ReplaceAll(text, "$PWD/.dev/cluster", e.stateDir)
	return strings.ReplaceAll(text, ".dev/cluster", e.stateDir)
}

func (e *env) run(ctx context.Context, text string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", e.substitute(text))
	cmd.Dir = e.root
	cmd.Env = e.environ()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	return out.String(), err
}

// pendingReason says why a command cannot run yet (its prerequisite is another change of issue #9
// that is not in this tree), or "".
func (e *env) pendingReason(text string) string {
	f := strings.Fields(text)
	switch {
	case len(f) > 0 && f[0] == "helm" && e.pending["helm"] != "":
		return e.pending["helm"]
	case strings.Contains(text, "charts/kcloud-operator") && e.pending["chart"] != "":
		return e.pending["chart"]
	case len(f) > 1 && f[0] == "make" && (f[1] == "deploy" || f[1] == "undeploy") && e.pending["kustomize"] != "":
		return e.pending["kustomize"]
	}
	return ""
}

type outcome struct {
	where, command, result string
}

func TestDocCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local cluster")
	}
	ctx := context.Background()
	root, err := filepath.Abs(repoRoot())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{root: root, pending: map[string]string{}}

	// Collect the steps and check that every command is known before anything runs.
	var steps []step
	seen := map[string]bool{}
	commandsSeen := map[string]bool{}
	for _, file := range docFiles(root) {
		blocks, err := readBlocks(root, file)
		if os.IsNotExist(err) && file == "charts/kcloud-operator/README.md" {
			t.Logf("%s does not exist in this tree (the chart comes with another change of issue #9): nothing to check there", file)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			switch {
			case isShell(b.lang):
				cmds, err := shellCommands(b)
				if err != nil {
					t.Fatal(err)
				}
				deployBlock := slices.ContainsFunc(cmds, func(c command) bool { return deploys(c.text) })
				for _, c := range cmds {
					k := c.key()
					commandsSeen[k] = true
					if seen[k] {
						continue
					}
					seen[k] = true
					steps = append(steps, step{cmd: &c, deploy: deployBlock})
				}
			case b.lang == "yaml" || b.lang == "yml":
				steps = append(steps, step{yaml: &b})
			}
		}
	}
	for k := range mapped {
		if !commandsSeen[k] {
			t.Errorf("mapped command %q is in no document any more: remove it from the mapping", k)
		}
	}

	// Control plane, helm, and what the other changes of issue #9 bring.
	if e.controlPlane = os.Getenv("KCLOUD_BIN_DIR"); e.controlPlane == "" {
		out, err := e.run(ctx, "./hack/build-controlplane.sh")
		if err != nil {
			t.Fatalf("building the control plane: %v\n%s", err, out)
		}
		e.controlPlane = lastLine(out)
	}
	if _, err := os.Stat(filepath.Join(root, "charts/kcloud-operator/Chart.yaml")); err != nil {
		e.pending["chart"] = "charts/kcloud-operator is not in this tree yet"
	}
	if _, err := os.Stat(filepath.Join(root, "config/default/kustomization.yaml")); err != nil {
		e.pending["kustomize"] = "config/default (make deploy) is not in this tree yet"
	}
	if out, err := e.run(ctx, "make -s helm"); err != nil {
		e.pending["helm"] = "no helm binary: `make -s helm` failed: " + lastLine(out)
	} else if helm := lastLine(out); isExecutable(helm) {
		e.helmDir = filepath.Dir(helm)
	} else {
		e.pending["helm"] = fmt.Sprintf("`make -s helm` did not print a helm binary's path (last line %q)", helm)
	}

	var results []outcome
	record := func(c *command, result string) {
		results = append(results, outcome{c.where(), firstLine(c.text), result})
	}
	defer func() {
		var b strings.Builder
		for _, r := range results {
			fmt.Fprintf(&b, "  %-32s %-9s %s\n", r.where, r.result, r.command)
		}
		t.Logf("doc commands:\n%s", b.String())
	}()

	// Classify: setup, teardown, mapped, or run in one of the two phases.
	var setup, teardown []*command
	for _, s := range steps {
		if s.cmd == nil {
			continue
		}
		switch s.cmd.key() {
		case buildCommand, upCommand:
			setup = append(setup, s.cmd)
		case teardownCommand:
			teardown = append(teardown, s.cmd)
		}
	}

	// 1. setup
	untrackedBefore := untracked(t, root)
	stateParent := t.TempDir()
	e.stateDir = filepath.Join(stateParent, "cluster")
	for _, k := range []string{buildCommand, upCommand} {
		text := k
		var doc *command
		for _, c := range setup {
			if c.key() == k {
				doc, text = c, c.text
			}
		}
		start := time.Now()
		out, err := e.run(ctx, text)
		if err != nil {
			t.Fatalf("setup %q: %v\n%s", text, err, out)
		}
		t.Logf("setup %q: %.1fs", text, time.Since(start).Seconds())
		if doc != nil {
			record(doc, "RUN")
		}
	}
	e.kubeconfig = filepath.Join(e.stateDir, "kubeconfig")
	down := func() {
		text := teardownCommand
		for _, c := range teardown {
			text = c.text
		}
		if out, err := e.run(context.Background(), text); err != nil {
			t.Errorf("teardown %q: %v\n%s", text, err, out)
		} else {
			for _, c := range teardown {
				record(c, "RUN")
			}
		}
	}
	defer down()
	defer removeNewFiles(t, root, untrackedBefore, steps)

	cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))

	runStep := func(s step) {
		if s.yaml != nil {
			applyBlock(ctx, t, dyn, cs, mapper, s.yaml)
			return
		}
		c := s.cmd
		k := c.key()
		if k == buildCommand || k == upCommand || k == teardownCommand {
			return
		}
		if why, ok := mapped[k]; ok {
			record(c, "MAPPED")
			t.Logf("%s: %q is run by: %s", c.where(), firstLine(c.text), why)
			return
		}
		if why := e.pendingReason(c.text); why != "" {
			record(c, "NOT RUN")
			t.Logf("%s: NOT RUN, pending: %s: %s", c.where(), why, firstLine(c.text))
			return
		}
		if name, _, ok := strings.Cut(strings.TrimPrefix(c.text, "export "), "="); strings.HasPrefix(c.text, "export ") && ok && !strings.ContainsAny(name, " \n") {
			out, err := e.run(ctx, fmt.Sprintf("%s; printf %%s \"$%s\"", c.text, name))
			if err != nil {
				t.Errorf("%s: %s: %v\n%s", c.where(), c.text, err, out)
				return
			}
			if name == "KUBECONFIG" && out != e.kubeconfig {
				t.Errorf("%s: %s sets %s, the cluster's kubeconfig is %s", c.where(), c.text, out, e.kubeconfig)
				return
			}
			e.vars = append(e.vars, name+"="+out)
			record(c, "RUN")
			return
		}
		start := time.Now()
		out, err := e.run(ctx, c.text)
		switch {
		case len(c.wantError) > 0 && err == nil:
			t.Errorf("%s: %q succeeded; the docs show it failing with %q\n%s", c.where(), firstLine(c.text), strings.Join(c.wantError, "..."), out)
		case len(c.wantError) > 0 && !containsInOrder(out, c.wantError):
			t.Errorf("%s: %q failed otherwise than the docs show:\n got: %s\nwant: %s", c.where(), firstLine(c.text), out, strings.Join(c.wantError, "..."))
		case len(c.wantError) == 0 && err != nil:
			t.Errorf("%s: %q: %v\n%s", c.where(), firstLine(c.text), err, tail(out, 40))
		default:
			record(c, "RUN")
			t.Logf("%s: %q ok in %.1fs", c.where(), firstLine(c.text), time.Since(start).Seconds())
			return
		}
		record(c, "FAILED")
	}

	// 2. everything that deploys nothing, manifests included
	for _, s := range steps {
		if !s.deploy || s.yaml != nil {
			runStep(s)
		}
	}
	// 3. the deployment blocks, on a cluster without the local cluster's webhook configurations
	removedWebhooks := false
	for _, s := range steps {
		if !s.deploy || s.yaml != nil {
			continue
		}
		if _, isMapped := mapped[s.cmd.key()]; !removedWebhooks && deploys(s.cmd.text) && !isMapped && e.pendingReason(s.cmd.text) == "" {
			removeLocalWebhooks(ctx, t, cs)
			removedWebhooks = true
		}
		runStep(s)
	}
}

// applyBlock applies every object of a yaml block with server-side apply and strict field
// validation, status through the status subresource. Blocks without apiVersion and kind (values
// files, fragments) are not objects and are skipped, unless they name the kcloud.io API.
func applyBlock(ctx context.Context, t *testing.T, dyn dynamic.Interface, cs kubernetes.Interface, mapper meta.ResettableRESTMapper, b *block) {
	t.Helper()
	dec := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(b.text)))
	for i := 0; ; i++ {
		raw, err := dec.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Errorf("%s:%d: yaml block: %v", b.file, b.line, err)
			return
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
			t.Errorf("%s:%d: document %d: %v", b.file, b.line, i, err)
			continue
		}
		if obj.GetAPIVersion() == "" || obj.GetKind() == "" {
			if strings.Contains(string(raw), "kcloud.io/v1alpha1") {
				t.Errorf("%s:%d: document %d names kcloud.io/v1alpha1 but has no apiVersion and kind", b.file, b.line, i)
			}
			continue
		}
		where := fmt.Sprintf("%s:%d: %s %s", b.file, b.line, obj.GetKind(), obj.GetName())
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			mapper.Reset()
			if m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := obj.GetNamespace()
			if ns == "" {
				ns = "default"
				obj.SetNamespace(ns)
			}
			if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				t.Errorf("%s: namespace %s does not exist; the docs must create it before", where, ns)
				continue
			}
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		status, hasStatus := obj.Object["status"]
		delete(obj.Object, "status")
		force := true
		opts := metav1.PatchOptions{FieldManager: "kcloud-docs-test", Force: &force, FieldValidation: "Strict"}
		data, err := obj.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts); err != nil {
			t.Errorf("%s: the API server refuses it: %v", where, err)
			continue
		}
		if hasStatus {
			st := &unstructured.Unstructured{Object: map[string]any{"apiVersion": obj.GetAPIVersion(), "kind": obj.GetKind(),
				"metadata": map[string]any{"name": obj.GetName(), "namespace": obj.GetNamespace()}, "status": status}}
			data, _ := st.MarshalJSON()
			if _, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts, "status"); err != nil {
				t.Errorf("%s: the API server refuses its status: %v", where, err)
				continue
			}
		}
		t.Logf("%s: applied", where)
	}
}

// removeLocalWebhooks deletes the webhook configurations `kcloud dev up` installed: they call the
// operator process on loopback, and the chart and kustomize install their own under the same names.
func removeLocalWebhooks(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	const mutating, validating = "kcloud-mutating-webhook-configuration", "kcloud-validating-webhook-configuration"
	if err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, mutating, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, validating, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	t.Logf("removed the local cluster's webhook configurations before the deployment commands")
}

// untracked lists the repository's untracked, unignored files.
func untracked(t *testing.T, root string) map[string]bool {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Logf("git ls-files: %v (files the commands write will not be removed)", err)
		return nil
	}
	files := map[string]bool{}
	for _, f := range strings.Fields(string(out)) {
		files[f] = true
	}
	return files
}

// removeNewFiles removes files the doc commands wrote into the checkout (report.html), that is new
// untracked files that a command names.
func removeNewFiles(t *testing.T, root string, before map[string]bool, steps []step) {
	if before == nil {
		return
	}
	for f := range untracked(t, root) {
		if before[f] {
			continue
		}
		for _, s := range steps {
			if s.cmd != nil && strings.Contains(s.cmd.text, f) {
				_ = os.Remove(filepath.Join(root, f))
				t.Logf("removed %s, written by %q", f, firstLine(s.cmd.text))
				break
			}
		}
	}
}

func containsInOrder(s string, fragments []string) bool {
	for _, f := range fragments {
		f = strings.TrimSpace(f)
		i := strings.Index(s, f)
		if i < 0 {
			return false
		}
		s = s[i+len(f):]
	}
	return true
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func firstLine(s string) string {
	first, _, more := strings.Cut(s, "\n")
	if more {
		return first + " ..."
	}
	return first
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
