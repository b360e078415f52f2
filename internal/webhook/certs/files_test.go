package certs

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tls.key")
	if err := writeAtomic(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	first, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if first.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", first.Mode().Perm())
	}
	// The same content is not rewritten, so the webhook server sees no event.
	if err := writeAtomic(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	same, _ := os.Stat(path)
	if !os.SameFile(first, same) {
		t.Error("unchanged content was rewritten")
	}
	// New content arrives as a new file renamed into place: a reader holds either whole file.
	if err := writeAtomic(path, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	second, _ := os.Stat(path)
	if os.SameFile(first, second) {
		t.Error("new content was written in place, not renamed into place")
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Errorf("content %q, want two", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestWriteFilesCreatesDir(t *testing.T) {
	o := validOptions()
	o.CertDir = filepath.Join(t.TempDir(), "a", "b")
	r, err := New(fake.NewClientBuilder().Build(), o)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := initial(t, &r.o)
	if err := r.writeFiles(data); err != nil {
		t.Fatal(err)
	}
	crt, _ := os.ReadFile(filepath.Join(o.CertDir, "tls.crt"))
	key, _ := os.ReadFile(filepath.Join(o.CertDir, "tls.key"))
	if _, err := parseKeyPair(crt, key); err != nil {
		t.Errorf("written pair does not load: %v", err)
	}
	if err := r.ReadyCheck(nil); err == nil {
		t.Error("ReadyCheck passed before any Ensure")
	}
}
