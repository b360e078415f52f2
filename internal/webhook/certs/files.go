package certs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// writeFiles puts the Secret's serving pair into CertDir for the webhook server. Each file is
// replaced atomically, so certwatcher never reads half a file; between the two renames it may
// read a new key with the old certificate, which tls.X509KeyPair refuses, so it keeps the old
// pair until the second rename (or its next poll) brings a matching one.
func (r *Rotator) writeFiles(data map[string][]byte) error {
	if err := os.MkdirAll(r.o.CertDir, 0o700); err != nil {
		return fmt.Errorf("creating certificate directory %s: %w", r.o.CertDir, err)
	}
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{KeyKey, 0o600}, {CertKey, 0o644}} {
		if err := writeAtomic(filepath.Join(r.o.CertDir, f.name), data[f.name], f.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeAtomic replaces path with content through a temporary file in the same directory and a
// rename; it does nothing when path already holds content, so the server reloads only on change.
func writeAtomic(path string, content []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// After the rename there is nothing to remove; before it, a leftover temporary file is harmless
	// (the next write makes a new one), so the error is not worth failing the write for.
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, err = tmp.Write(content)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
