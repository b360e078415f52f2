package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEntries(t *testing.T) {
	src := `# File header, not a key's.

# -- Top-level value.
name: ""
section:
  # Section note first.
  # -- Nested value,
  # over two lines.
  port: 8443
  # -- A documented map is one entry.
  labels: {a: "1"}
`
	got, err := Entries([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []entry{
		{key: "name", def: `""`, doc: "Top-level value."},
		{key: "section.port", def: "8443", doc: "Nested value, over two lines."},
		{key: "section.labels", def: `{"a":"1"}`, doc: "A documented map is one entry."},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(entry{})); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestUndocumentedKeyFails(t *testing.T) {
	_, err := Entries([]byte("# -- ok\na: 1\nsection:\n  b: 2\nc: []\n"))
	if err == nil || !strings.Contains(err.Error(), "section.b") || !strings.Contains(err.Error(), "c has no") {
		t.Errorf("want errors naming section.b and c, got %v", err)
	}
}

func TestSplice(t *testing.T) {
	in := "intro\n<!-- values:begin -->\nold\n<!-- values:end -->\nafter\n"
	got, err := Splice([]byte(in), "| new |\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "intro\n<!-- values:begin -->\n| new |\n<!-- values:end -->\nafter\n"; string(got) != want {
		t.Errorf("got %q", got)
	}
	if _, err := Splice([]byte("no markers"), ""); err == nil {
		t.Error("want an error without markers")
	}
}
