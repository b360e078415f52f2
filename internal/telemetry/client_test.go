package telemetry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA issues certificates for a loopback TLS server and its clients.
type testCA struct {
	t    *testing.T
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{t: t, cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by the CA, for the loopback address (a server) or
// for a client.
func (ca *testCA) issue(serial int64, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "kcloud-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// secureServer is an HTTPS Prometheus look-alike that answers `up` only to requests with the
// current bearer token and a client certificate from clientCA.
type secureServer struct {
	*httptest.Server
	mu      sync.Mutex
	token   string
	clients []string // client certificate serials seen
}

func newSecureServer(t *testing.T, serverCA, clientCA *testCA, token string) *secureServer {
	t.Helper()
	s := &secureServer{token: token}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		want := "Bearer " + s.token
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			s.clients = append(s.clients, r.TLS.PeerCertificates[0].SerialNumber.String())
		}
		s.mu.Unlock()
		if r.Header.Get("Authorization") != want {
			http.Error(w, `{"status":"error","errorType":"unauthorized","error":"bad token"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}`))
	}))
	certPEM, keyPEM := serverCA.issue(10, x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *secureServer) setToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

func (s *secureServer) seenClients() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.clients...)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	// A new modification time even on a coarse clock: the file is replaced as the kubelet replaces
	// a projected token or a mounted Secret.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPConfigTokenAndTLS(t *testing.T) {
	serverCA, clientCA, otherCA := newTestCA(t, "server-ca"), newTestCA(t, "client-ca"), newTestCA(t, "other-ca")
	srv := newSecureServer(t, serverCA, clientCA, "first-token")
	dir := t.TempDir()
	tokenFile, caFile := filepath.Join(dir, "token"), filepath.Join(dir, "ca.crt")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, tokenFile, []byte("first-token\n"))
	writeFile(t, caFile, serverCA.pem)
	cert, key := clientCA.issue(20, x509.ExtKeyUsageClientAuth)
	writeFile(t, certFile, cert)
	writeFile(t, keyFile, key)
	ctx := context.Background()

	query := func(cfg HTTPConfig) error {
		t.Helper()
		p, err := NewPrometheus(PrometheusConfig{URL: srv.URL, HTTP: cfg, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Query(ctx, "up")
		return err
	}
	full := HTTPConfig{BearerTokenFile: tokenFile, CAFile: caFile, CertFile: certFile, KeyFile: keyFile}
	if err := query(full); err != nil {
		t.Fatalf("token, CA and client certificate: %v", err)
	}

	for _, tc := range []struct {
		name    string
		cfg     HTTPConfig
		wantErr string
	}{
		{"without the CA the server is not trusted", HTTPConfig{BearerTokenFile: tokenFile, CertFile: certFile, KeyFile: keyFile}, "certificate"},
		{"without a client certificate the handshake fails", HTTPConfig{BearerTokenFile: tokenFile, CAFile: caFile}, "certificate"},
		{"without the token the server refuses", HTTPConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, "401"},
		{"insecureSkipVerify trusts any server", HTTPConfig{BearerTokenFile: tokenFile, CertFile: certFile, KeyFile: keyFile, InsecureSkipVerify: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := query(tc.cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}

	t.Run("rotated files apply without a new client", func(t *testing.T) {
		p, err := NewPrometheus(PrometheusConfig{URL: srv.URL, HTTP: full, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		srv.setToken("second-token")
		if _, err := p.Query(ctx, "up"); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("the server's token changed but not the file: error %v, want a refusal", err)
		}
		writeFile(t, tokenFile, []byte("second-token"))
		if _, err := p.Query(ctx, "up"); err != nil {
			t.Errorf("after the token file was rotated: %v", err)
		}
		// A new client certificate is presented on the next connection.
		cert, key := clientCA.issue(21, x509.ExtKeyUsageClientAuth)
		writeFile(t, certFile, cert)
		writeFile(t, keyFile, key)
		srv.CloseClientConnections()
		if _, err := p.Query(ctx, "up"); err != nil {
			t.Errorf("after the client certificate was rotated: %v", err)
		}
		if seen := srv.seenClients(); len(seen) == 0 || seen[len(seen)-1] != "21" {
			t.Errorf("client certificates seen %v, want the rotated one (21) last", seen)
		}
		// A CA bundle that no longer signs the server's certificate is applied too.
		writeFile(t, caFile, otherCA.pem)
		srv.CloseClientConnections()
		if _, err := p.Query(ctx, "up"); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("with a CA bundle that does not sign the server: error %v, want a certificate error", err)
		}
	})
}

func TestHTTPConfigValidation(t *testing.T) {
	dir := t.TempDir()
	empty, garbage := filepath.Join(dir, "empty"), filepath.Join(dir, "garbage")
	writeFile(t, empty, []byte(" \n"))
	writeFile(t, garbage, []byte("not PEM"))
	for _, tc := range []struct {
		cfg     HTTPConfig
		wantErr string
	}{
		{HTTPConfig{}, ""},
		{HTTPConfig{InsecureSkipVerify: true}, ""},
		{HTTPConfig{BearerTokenFile: empty}, "is empty"},
		{HTTPConfig{CAFile: garbage}, "no PEM certificate"},
		{HTTPConfig{CertFile: garbage, KeyFile: garbage}, "client certificate"},
		{HTTPConfig{KeyFile: garbage}, "both CertFile and KeyFile"},
	} {
		_, err := tc.cfg.RoundTripper()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tc.cfg, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%+v: error %v, want one mentioning %q", tc.cfg, err, tc.wantErr)
		}
	}
}
