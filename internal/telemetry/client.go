package telemetry

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"

	promapi "github.com/prometheus/client_golang/api"
)

// HTTPConfig says how to reach a Prometheus that wants more than plain HTTP: a bearer token (a
// service-account token, or one an auth proxy such as kube-rbac-proxy or OpenShift's Thanos querier
// accepts), a private CA, a client certificate. Every query of the operator (telemetry, the
// autoscaler's metrics, the price source's OpenCost series) goes through the one client built from
// it. The zero value is plain HTTP(S) with the system's roots.
type HTTPConfig struct {
	// BearerTokenFile holds the token sent as `Authorization: Bearer <token>`. It is read again
	// whenever the file changes (projected service-account tokens are rotated by the kubelet).
	BearerTokenFile string
	// CAFile is a PEM bundle of the CAs that sign the server's certificate, instead of the system's.
	// It is read again whenever the file changes, as a mounted ConfigMap or Secret is updated.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and key, for a server that requires mutual
	// TLS; both or neither. They are read again whenever either file changes.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any server certificate. Only for tests and trials: the token is
	// then sent to whoever answers.
	InsecureSkipVerify bool
}

// RoundTripper returns the transport for c; files are read once here, so that a missing or
// malformed one fails at start-up rather than on every query.
func (c HTTPConfig) RoundTripper() (http.RoundTripper, error) {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("a client certificate needs both CertFile and KeyFile")
	}
	if c.CAFile == "" && c.CertFile == "" && !c.InsecureSkipVerify && c.BearerTokenFile == "" {
		return promapi.DefaultRoundTripper, nil
	}
	base, ok := promapi.DefaultRoundTripper.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("the Prometheus client's default transport is a %T, not an *http.Transport", promapi.DefaultRoundTripper)
	}
	tr := base.Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // only when asked for
	if c.CAFile != "" {
		ca := &caPool{file: watchedFile{paths: []string{c.CAFile}}}
		if _, err := ca.pool(); err != nil {
			return nil, err
		}
		// The chain is checked here rather than by crypto/tls so that a renewed CA bundle applies
		// without a restart; the host name is checked as crypto/tls would.
		tr.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // verified in VerifyConnection
		if !c.InsecureSkipVerify {
			tr.TLSClientConfig.VerifyConnection = ca.verify
		}
	}
	if c.CertFile != "" {
		kp := &keyPair{file: watchedFile{paths: []string{c.CertFile, c.KeyFile}}}
		if _, err := kp.get(nil); err != nil {
			return nil, err
		}
		tr.TLSClientConfig.GetClientCertificate = kp.get
	}
	var rt http.RoundTripper = tr
	if c.BearerTokenFile != "" {
		b := &bearerToken{file: watchedFile{paths: []string{c.BearerTokenFile}}, next: tr}
		if _, err := b.token(); err != nil {
			return nil, err
		}
		rt = b
	}
	return rt, nil
}

// watchedFile holds the contents of some files, read again when any of them changes (its size or
// modification time; a mounted ConfigMap or Secret is replaced by a symlink swap, which changes
// both as seen through the link).
type watchedFile struct {
	paths []string

	mu    sync.Mutex
	stamp string
	data  [][]byte
}

// read returns the files' contents and whether they changed since the last call.
func (w *watchedFile) read() ([][]byte, bool, error) {
	var stamp bytes.Buffer
	for _, p := range w.paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, false, err
		}
		fmt.Fprintf(&stamp, "%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.data != nil && stamp.String() == w.stamp {
		return w.data, false, nil
	}
	data := make([][]byte, len(w.paths))
	for i, p := range w.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, false, err
		}
		data[i] = b
	}
	w.stamp, w.data = stamp.String(), data
	return data, true, nil
}

// bearerToken sends the token in a file with every request.
type bearerToken struct {
	file watchedFile
	next http.RoundTripper
}

func (b *bearerToken) token() (string, error) {
	data, _, err := b.file.read()
	if err != nil {
		return "", fmt.Errorf("reading the Prometheus bearer token: %w", err)
	}
	t := string(bytes.TrimSpace(data[0]))
	if t == "" {
		return "", fmt.Errorf("the Prometheus bearer token file %s is empty", b.file.paths[0])
	}
	return t, nil
}

func (b *bearerToken) RoundTrip(req *http.Request) (*http.Response, error) {
	t, err := b.token()
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+t)
	return b.next.RoundTrip(req)
}

// caPool is a CA bundle file, parsed again when it changes.
type caPool struct {
	file watchedFile

	mu     sync.Mutex
	parsed *x509.CertPool
}

func (c *caPool) pool() (*x509.CertPool, error) {
	data, changed, err := c.file.read()
	if err != nil {
		return nil, fmt.Errorf("reading the Prometheus CA file: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if changed || c.parsed == nil {
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(data[0]) {
			return nil, fmt.Errorf("the Prometheus CA file %s holds no PEM certificate", c.file.paths[0])
		}
		c.parsed = p
	}
	return c.parsed, nil
}

// verify checks the server's chain against the current bundle and its name against the host dialled.
func (c *caPool) verify(cs tls.ConnectionState) error {
	roots, err := c.pool()
	if err != nil {
		return err
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the Prometheus server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, cert := range cs.PeerCertificates[1:] {
		inter.AddCert(cert)
	}
	_, err = cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: roots, Intermediates: inter})
	if err != nil {
		return fmt.Errorf("verifying the Prometheus server's certificate: %w", err)
	}
	return nil
}

// keyPair is a client certificate and key, loaded again when either file changes.
type keyPair struct {
	file watchedFile

	mu   sync.Mutex
	cert *tls.Certificate
}

func (k *keyPair) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	data, changed, err := k.file.read()
	if err != nil {
		return nil, fmt.Errorf("reading the Prometheus client certificate: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if changed || k.cert == nil {
		c, err := tls.X509KeyPair(data[0], data[1])
		if err != nil {
			return nil, fmt.Errorf("the Prometheus client certificate %s and key %s: %w", k.file.paths[0], k.file.paths[1], err)
		}
		k.cert = &c
	}
	return k.cert, nil
}
