package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func mustCA(t *testing.T, now time.Time, validity time.Duration) *keyPair {
	t.Helper()
	ca, err := newCA(now, validity, "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestNewCA(t *testing.T) {
	ca := mustCA(t, t0, 365*24*time.Hour)
	c := ca.cert
	if !c.IsCA || !c.BasicConstraintsValid || !c.MaxPathLenZero {
		t.Errorf("CA constraints: IsCA=%v valid=%v maxPathLenZero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLenZero)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA key usage %v lacks CertSign", c.KeyUsage)
	}
	if !c.NotBefore.Equal(t0.Add(-backdate)) || !c.NotAfter.Equal(t0.Add(365*24*time.Hour)) {
		t.Errorf("CA validity %s..%s", c.NotBefore, c.NotAfter)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA not self-signed: %v", err)
	}
	if _, ok := ca.key.(*ecdsa.PrivateKey); !ok {
		t.Errorf("CA key is %T, want ECDSA", ca.key)
	}
	key, err := parseKey(ca.keyPEM)
	if err != nil || !sameKey(c.PublicKey, key) {
		t.Errorf("CA key PEM does not round-trip to the certificate's key: %v", err)
	}
	if got := parseCerts(ca.certPEM); len(got) != 1 || !got[0].Equal(c) {
		t.Errorf("CA PEM does not round-trip")
	}
}

func TestNewServing(t *testing.T) {
	day := 24 * time.Hour
	dns := []string{"svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local", "localhost"}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	tests := []struct {
		name         string
		caValidity   time.Duration
		validity     time.Duration
		wantNotAfter time.Time
	}{
		{name: "full validity", caValidity: 365 * day, validity: 90 * day, wantNotAfter: t0.Add(90 * day)},
		{name: "capped at the CA's end", caValidity: 30 * day, validity: 90 * day, wantNotAfter: t0.Add(30 * day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := mustCA(t, t0, tt.caValidity)
			kp, err := newServing(ca, t0, tt.validity, dns, ips)
			if err != nil {
				t.Fatal(err)
			}
			c := kp.cert
			if !c.NotAfter.Equal(tt.wantNotAfter) || !c.NotBefore.Equal(t0.Add(-backdate)) {
				t.Errorf("validity %s..%s, want ..%s", c.NotBefore, c.NotAfter, tt.wantNotAfter)
			}
			if diff := cmp.Diff(dns, c.DNSNames); diff != "" {
				t.Errorf("DNS names (-want +got):\n%s", diff)
			}
			if !sameNames(c, dns, ips) {
				t.Errorf("IP SANs %v, want %v", c.IPAddresses, ips)
			}
			if c.IsCA {
				t.Error("serving certificate is a CA")
			}
			if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, c.ExtKeyUsage); diff != "" {
				t.Errorf("ext key usage (-want +got):\n%s", diff)
			}
			if c.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
				t.Errorf("key usage %v lacks DigitalSignature", c.KeyUsage)
			}
			if !signedBy(c, ca.cert) {
				t.Error("not signed by the CA")
			}
			other := mustCA(t, t0, tt.caValidity)
			if signedBy(c, other.cert) {
				t.Error("reported as signed by an unrelated CA")
			}
			// Verify the chain the way the API server does, for each name it may dial.
			roots := x509.NewCertPool()
			roots.AddCert(ca.cert)
			for _, host := range []string{"svc.ns.svc", "localhost", "127.0.0.1", "::1"} {
				_, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, CurrentTime: t0.Add(day),
					KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
				if err != nil {
					t.Errorf("verify for %s: %v", host, err)
				}
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: "other.example", CurrentTime: t0}); err == nil {
				t.Error("verified for a name it does not carry")
			}
			if _, err := parseKeyPair(kp.certPEM, kp.keyPEM); err != nil {
				t.Errorf("pair does not load: %v", err)
			}
			if _, err := parseKeyPair(kp.certPEM, ca.keyPEM); err == nil {
				t.Error("certificate loaded with the wrong key")
			}
		})
	}
}

func TestParseKeyFormats(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	tests := []struct {
		name    string
		pem     []byte
		wantErr bool
	}{
		{name: "SEC 1", pem: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})},
		{name: "PKCS#1", pem: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})},
		{name: "PKCS#8", pem: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})},
		{name: "empty", pem: nil, wantErr: true},
		{name: "garbage", pem: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("nope")}), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseKey(tt.pem)
			if (err != nil) != tt.wantErr {
				t.Errorf("parseKey err=%v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestMergeBundle(t *testing.T) {
	day := 24 * time.Hour
	curPair := mustCA(t, t0, 100*day)
	cur := curPair.cert
	old := mustCA(t, t0.Add(-50*day), 100*day).cert      // ends t0+50d
	older := mustCA(t, t0.Add(-90*day), 100*day).cert    // ends t0+10d
	expired := mustCA(t, t0.Add(-200*day), 100*day).cert // ended t0-100d
	leaf, err := newServing(curPair, t0, day, []string{"x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := func(cs []*x509.Certificate) []string {
		var out []string
		for _, c := range cs {
			switch {
			case c.Equal(cur):
				out = append(out, "cur")
			case c.Equal(old):
				out = append(out, "old")
			case c.Equal(older):
				out = append(out, "older")
			default:
				out = append(out, c.Subject.CommonName)
			}
		}
		return out
	}
	tests := []struct {
		name     string
		existing []*x509.Certificate
		now      time.Time
		want     []string
	}{
		{name: "empty", now: t0, want: []string{"cur"}},
		{name: "current first, others kept in order", existing: []*x509.Certificate{old, cur, older}, now: t0, want: []string{"cur", "old", "older"}},
		{name: "duplicates once", existing: []*x509.Certificate{old, old, cur, cur}, now: t0, want: []string{"cur", "old"}},
		{name: "expired dropped", existing: []*x509.Certificate{expired, old}, now: t0, want: []string{"cur", "old"}},
		{name: "non-CA dropped", existing: []*x509.Certificate{leaf.cert, old}, now: t0, want: []string{"cur", "old"}},
		{name: "kept a nanosecond before its end", existing: []*x509.Certificate{older}, now: older.NotAfter.Add(-time.Nanosecond), want: []string{"cur", "older"}},
		{name: "dropped at its end", existing: []*x509.Certificate{older}, now: older.NotAfter, want: []string{"cur"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeBundle(cur, tt.existing, tt.now)
			if diff := cmp.Diff(tt.want, names(got)); diff != "" {
				t.Errorf("bundle (-want +got):\n%s", diff)
			}
			if round := parseCerts(encodeCerts(got)); len(round) != len(got) {
				t.Errorf("PEM round trip lost certificates: %d of %d", len(round), len(got))
			}
		})
	}
}

func TestParseCertsSkipsOtherBlocks(t *testing.T) {
	ca := mustCA(t, t0, time.Hour)
	data := append([]byte("# comment\n"), ca.keyPEM...)
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("broken")})...)
	data = append(data, ca.certPEM...)
	got := parseCerts(data)
	if len(got) != 1 || !got[0].Equal(ca.cert) {
		t.Fatalf("parseCerts returned %d certificates, want the one CA", len(got))
	}
}
