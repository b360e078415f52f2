// Command kcloud-image writes the product's container image without a container daemon or a
// registry: a base layer made here (what distroless "static:nonroot" gives the Dockerfile: passwd
// and group entries for root and nonroot 65532, /tmp, /home/nonroot, CA certificates) and one layer
// with the two static binaries, /kcloud-operator and /kcloud-scheduler, with the Dockerfile's
// entrypoint, user and labels. Every layer is built from sorted entries with fixed times and owners
// and the image's created time is fixed, so the same binaries give the same digest.
//
// It writes an OCI image layout, as a tar (--output ending in .tar: `podman load`, `skopeo copy
// oci-archive:...`) or as a directory, and optionally a docker-archive tar (--docker-archive: `docker
// load`, `podman load`). hack/build-image.sh builds the binaries and runs it.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The nonroot user of distroless, which the chart's runAsUser/runAsGroup name.
const nonroot = 65532

// binaries are put at the image's root, as the Dockerfile's COPY does.
var binaries = []string{"kcloud-operator", "kcloud-scheduler"}

func main() {
	var (
		binDir        = flag.String("binary-dir", "", "directory holding the static kcloud-operator and kcloud-scheduler binaries")
		tag           = flag.String("tag", "", "image reference, e.g. ghcr.io/kcloud/kcloud-optimizer:0.1.0")
		output        = flag.String("output", "", "OCI image layout: a tar archive when the path ends in .tar, else a directory")
		dockerArchive = flag.String("docker-archive", "", "also write a docker-archive tar (docker load / podman load) here")
		caCerts       = flag.String("ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied to /etc/ssl/certs/ca-certificates.crt")
		arch          = flag.String("arch", runtime.GOARCH, "the binaries' GOARCH, recorded in the image's config")
	)
	flag.Parse()
	if *binDir == "" || *tag == "" || *output == "" {
		fmt.Fprintln(os.Stderr, "kcloud-image: --binary-dir, --tag and --output are required")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*binDir, *tag, *output, *dockerArchive, *caCerts, *arch); err != nil {
		fmt.Fprintln(os.Stderr, "kcloud-image:", err)
		os.Exit(1)
	}
}

func run(binDir, tagName, output, dockerArchive, caCerts, arch string) error {
	tag, err := name.NewTag(tagName, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("--tag: %w", err)
	}
	created := epoch()
	img, err := build(binDir, caCerts, arch, created)
	if err != nil {
		return err
	}
	if strings.HasSuffix(output, ".tar") {
		err = writeOCIArchive(output, img, tag)
	} else {
		err = writeOCILayout(output, img, tag)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", output, err)
	}
	if dockerArchive != "" {
		if err := writeAtomically(dockerArchive, func(w io.Writer) error { return tarball.Write(tag, img, w) }); err != nil {
			return fmt.Errorf("writing %s: %w", dockerArchive, err)
		}
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	id, err := img.ConfigName()
	if err != nil {
		return err
	}
	fmt.Printf("image %s\ndigest %s\nid %s\n", tag.Name(), digest, id)
	return nil
}

// epoch is the time every file and the image carry: SOURCE_DATE_EPOCH when set, else the Unix epoch.
func epoch() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Unix(0, 0).UTC()
}

// build assembles the image: the base layer, the binaries' layer, and the Dockerfile's config.
func build(binDir, caCerts, arch string, created time.Time) (v1.Image, error) {
	ca, err := os.ReadFile(caCerts)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w", err)
	}
	base, err := layer(baseFiles(ca), created)
	if err != nil {
		return nil, err
	}
	var bins []file
	for _, b := range binaries {
		data, err := os.ReadFile(filepath.Join(binDir, b))
		if err != nil {
			return nil, err
		}
		bins = append(bins, file{path: b, mode: 0o755, data: data})
	}
	binLayer, err := layer(bins, created)
	if err != nil {
		return nil, err
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	at := v1.Time{Time: created}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: at, Author: "kcloud-image",
			CreatedBy: "base: /etc/passwd, /etc/group (root, nonroot 65532), /etc/nsswitch.conf, CA certificates, /tmp, /home/nonroot"}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: at, Author: "kcloud-image",
			CreatedBy: "COPY kcloud-operator kcloud-scheduler /"}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = arch, "linux"
	cfg.Created = at
	// As the Dockerfile's final stage: distroless static:nonroot's environment, user and working
	// directory, then the Dockerfile's own labels, user and entrypoint.
	cfg.Config = v1.Config{
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		},
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		WorkingDir: "/home/nonroot",
		Entrypoint: []string{"/kcloud-operator"},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "kcloud-optimizer",
			"org.opencontainers.image.description": "KCloud Workload Optimizer: kcloud-operator and kcloud-scheduler",
		},
	}
	return mutate.ConfigFile(img, cfg)
}

// file is one entry of a layer; a nil data with a directory mode is a directory.
type file struct {
	path     string
	mode     fs.FileMode
	uid, gid int
	data     []byte
}

func baseFiles(ca []byte) []file {
	dir := func(p string, perm fs.FileMode, id int) file {
		return file{path: p, mode: fs.ModeDir | perm, uid: id, gid: id}
	}
	text := func(p, s string) file { return file{path: p, mode: 0o644, data: []byte(s)} }
	return []file{
		dir("etc", 0o755, 0),
		text("etc/group", "root:x:0:\nnonroot:x:65532:\nnobody:x:65534:\n"),
		text("etc/nsswitch.conf", "hosts: files dns\n"),
		text("etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\n"+
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"+
			"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"),
		dir("etc/ssl", 0o755, 0),
		dir("etc/ssl/certs", 0o755, 0),
		{path: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca},
		dir("home", 0o755, 0),
		dir("home/nonroot", 0o700, nonroot),
		dir("root", 0o700, 0),
		{path: "tmp", mode: fs.ModeDir | fs.ModeSticky | 0o777},
	}
}

// layer writes files, sorted by path, into an uncompressed tar with fixed times and no user or
// group names, and makes a gzip-compressed OCI layer of it.
func layer(files []file, mtime time.Time) (v1.Layer, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.path, b.path) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.path, Mode: int64(f.mode.Perm()), Uid: f.uid, Gid: f.gid, ModTime: mtime, Format: tar.FormatPAX}
		if f.mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		if f.mode.IsDir() {
			h.Typeflag, h.Name = tar.TypeDir, f.path+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// annotations name the image in the layout's index: the full reference for podman and containerd
// (io.containerd.image.name, as BuildKit writes it) and the tag for skopeo's oci-archive:PATH:TAG.
func annotations(tag name.Tag) map[string]string {
	return map[string]string{
		"io.containerd.image.name":          tag.Name(),
		"org.opencontainers.image.ref.name": tag.TagStr(),
	}
}

func writeOCILayout(dir string, img v1.Image, tag name.Tag) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(annotations(tag)))
}

// writeOCIArchive writes the layout into a temporary directory and tars it: sorted, fixed times,
// root-owned entries, so that the archive's bytes depend only on the image.
func writeOCIArchive(path string, img v1.Image, tag name.Tag) error {
	tmp, err := os.MkdirTemp("", "kcloud-image-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	dir := filepath.Join(tmp, "layout")
	if err := writeOCILayout(dir, img, tag); err != nil {
		return err
	}
	var paths []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		paths = append(paths, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		return err
	}
	slices.Sort(paths)
	mtime := epoch()
	return writeAtomically(path, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for _, rel := range paths {
			fi, err := os.Stat(filepath.Join(dir, rel))
			if err != nil {
				return err
			}
			h := &tar.Header{Name: rel, ModTime: mtime, Format: tar.FormatPAX}
			if fi.IsDir() {
				h.Typeflag, h.Name, h.Mode = tar.TypeDir, rel+"/", 0o755
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				continue
			}
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, fi.Size()
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			f, err := os.Open(filepath.Join(dir, rel))
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			_ = f.Close()
			if err != nil {
				return err
			}
		}
		return tw.Close()
	})
}

// writeAtomically writes a file through a temporary one beside it, renamed into place when complete.
func writeAtomically(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if err := write(f); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
