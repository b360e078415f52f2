// Command gen-chart-readme writes the values table of a Helm chart's README.md from the comments in
// its values.yaml: every key is documented by a comment block starting with "# --" right above it.
// A key whose value is a mapping and has no such comment is a section: its keys are listed instead.
// Any other key without one is an error, so a new value cannot go undocumented. The table replaces
// what stands between the README's "<!-- values:begin -->" and "<!-- values:end -->" lines.
//
//	go run ./hack/gen-chart-readme charts/kcloud-operator
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

const (
	begin = "<!-- values:begin -->"
	end   = "<!-- values:end -->"
)

type entry struct{ key, def, doc string }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gen-chart-readme CHART_DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "gen-chart-readme:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	src, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		return err
	}
	entries, err := Entries(src)
	if err != nil {
		return err
	}
	readmePath := filepath.Join(dir, "README.md")
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		return err
	}
	out, err := Splice(readme, Table(entries))
	if err != nil {
		return fmt.Errorf("%s: %w", readmePath, err)
	}
	if bytes.Equal(out, readme) {
		return nil
	}
	return os.WriteFile(readmePath, out, 0o644)
}

// Entries lists the documented keys of a values file in file order.
func Entries(src []byte) ([]entry, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("values.yaml: want a mapping at the top")
	}
	var out []entry
	var errs []error
	var walk func(prefix string, m *yaml.Node)
	walk = func(prefix string, m *yaml.Node) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			key := prefix + k.Value
			doc, ok := describe(k.HeadComment)
			switch {
			case ok:
				def, err := render(v)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", key, err))
				}
				out = append(out, entry{key: key, def: def, doc: doc})
			case v.Kind == yaml.MappingNode && len(v.Content) > 0:
				walk(key+".", v)
			default:
				errs = append(errs, fmt.Errorf("values.yaml line %d: %s has no \"# --\" comment", k.Line, key))
			}
		}
	}
	walk("", doc.Content[0])
	return out, errors.Join(errs...)
}

// describe returns the text of the "# --" block of a head comment (which may follow other comments).
func describe(comment string) (string, bool) {
	lines := strings.Split(comment, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "# --") {
			continue
		}
		var words []string
		for j, l := range lines[i:] {
			if j == 0 {
				l = strings.TrimPrefix(l, "# --")
			} else {
				l = strings.TrimPrefix(l, "#")
			}
			if l = strings.TrimSpace(l); l != "" {
				words = append(words, l)
			}
		}
		return strings.Join(words, " "), true
	}
	return "", false
}

// render is a value's default as compact JSON.
func render(v *yaml.Node) (string, error) {
	var x any
	if err := v.Decode(&x); err != nil {
		return "", err
	}
	b, err := json.Marshal(x)
	return string(b), err
}

// Table is the Markdown values table.
func Table(entries []entry) string {
	var b strings.Builder
	b.WriteString("| Key | Default | Description |\n|---|---|---|\n")
	esc := strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;")
	for _, e := range entries {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", e.key, esc.Replace(e.def), esc.Replace(e.doc))
	}
	return b.String()
}

// Splice replaces the lines between the markers with table.
func Splice(readme []byte, table string) ([]byte, error) {
	s := string(readme)
	i := strings.Index(s, begin+"\n")
	j := strings.Index(s, end)
	if i < 0 || j < i {
		return nil, fmt.Errorf("want the lines %q and %q around the values table", begin, end)
	}
	return []byte(s[:i+len(begin)+1] + table + s[j:]), nil
}
