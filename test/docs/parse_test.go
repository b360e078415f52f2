package docs

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestShellCommands: continuation lines are joined, here-documents kept with their command,
// comments and console output skipped, and a console error becomes the expected failure.
func TestShellCommands(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    block
		want []command
	}{
		{"bash", block{file: "f.md", line: 10, lang: "bash", text: "# a comment\nhelm install x ./chart \\\n  --namespace ns\n\nkubectl get wo -A   # columns\n"},
			[]command{{file: "f.md", line: 12, text: "helm install x ./chart --namespace ns"}, {file: "f.md", line: 15, text: "kubectl get wo -A   # columns"}}},
		{"heredoc", block{file: "f.md", line: 1, lang: "sh", text: "kubectl apply -f - <<'EOF'\nkind: X\nEOF\nkubectl get x\n"},
			[]command{{file: "f.md", line: 2, text: "kubectl apply -f - <<'EOF'\nkind: X\nEOF"}, {file: "f.md", line: 5, text: "kubectl get x"}}},
		{"console", block{file: "f.md", line: 1, lang: "console", text: "$ kubectl get wo\nNAME  PHASE\n$ kubectl run p\nError from server (Forbidden): denied: cost ... USD/h\n"},
			[]command{{file: "f.md", line: 2, text: "kubectl get wo"}, {file: "f.md", line: 4, text: "kubectl run p", wantError: []string{"Error from server (Forbidden): denied: cost ", " USD/h"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := shellCommands(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(command{})); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := shellCommands(block{file: "f.md", lang: "bash", text: "cat <<EOF\nno end\n"}); err == nil {
		t.Error("a here-document without its end line was accepted")
	}
}

func TestCommandKey(t *testing.T) {
	for text, want := range map[string]string{
		"kubectl get wo -A          # TYPE, PHASE": "kubectl get wo -A",
		"kubectl get wo  -A":                       "kubectl get wo -A",
		"echo '# not a comment'":                   "echo '# not a comment'",
	} {
		if got := (command{text: text}).key(); got != want {
			t.Errorf("key(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestDeploys(t *testing.T) {
	for text, want := range map[string]bool{"helm status x": true, "make deploy": true, "make install": true, "make run": false, "kubectl get pods": false} {
		if got := deploys(text); got != want {
			t.Errorf("deploys(%q) = %v, want %v", text, got, want)
		}
	}
}
