package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	webhookcerts "kcloud.io/optimizer/internal/webhook/certs"
)

const (
	secretName  = "webhook-certs"
	serviceName = "kcloud-webhook"
	// denyMessage is what the test webhook answers for a ConfigMap with the key "deny".
	denyMessage = "configmaps with the key deny are refused by the test webhook"
	// waitLong bounds every wait on the API server or the webhook server: generous, since a loaded
	// 2-core machine may be slow, and never asserted on.
	waitLong = 2 * time.Minute
)

// harness is one namespace with a ValidatingWebhookConfiguration (failurePolicy Fail) whose
// webhook is served on 127.0.0.1 by a controller-runtime webhook server with the rotator's
// certificates, and the rotator running with a fake clock.
type harness struct {
	t     *testing.T
	ns    string
	vwc   string
	addr  string
	dir   string
	clock *testingclock.FakeClock
	rot   *webhookcerts.Rotator
}

// validity is a set of certificate lifetimes for a test.
type validity struct {
	ca, caRenewBefore, cert, renewBefore time.Duration
}

func (v validity) apply(o *webhookcerts.Options) {
	o.CAValidity, o.CARenewBefore = v.ca, v.caRenewBefore
	o.CertValidity, o.RenewBefore = v.cert, v.renewBefore
}

// startHarness creates the namespace and configuration, runs Ensure, then starts the webhook
// server and the rotator; all stop and the configuration is deleted when the test ends.
func startHarness(t *testing.T, name string, v validity, clockStart time.Time) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{t: t, ns: "certs-" + name, vwc: "certs-test-" + name, dir: t.TempDir(),
		clock: testingclock.NewFakeClock(clockStart)}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns, Labels: map[string]string{"certs-test": name}}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatalf("creating namespace %s: %v", h.ns, err)
	}
	port := freePort(t)
	h.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: h.vwc},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "deny.certs.kcloud.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL: ptr.To("https://" + h.addr + "/validate"),
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
					Resources: []string{"configmaps"}},
			}},
			// Only this test's namespace: a fail-closed webhook must not reach anything else.
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"certs-test": name}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
		}},
	}
	if err := k8sClient.Create(ctx, vwc); err != nil {
		t.Fatalf("creating validatingwebhookconfiguration %s: %v", h.vwc, err)
	}
	t.Cleanup(func() {
		if err := k8sClient.Delete(context.Background(), vwc); err != nil {
			t.Errorf("deleting validatingwebhookconfiguration %s: %v", h.vwc, err)
		}
	})

	h.rot = h.newRotator(h.dir, v)
	runCtx, cancel := context.WithCancel(ctx)
	if err := h.rot.Ensure(runCtx); err != nil {
		cancel()
		t.Fatalf("first Ensure: %v", err)
	}

	srv := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: h.dir})
	srv.Register("/validate", closeConnections(&admission.Webhook{Handler: admission.HandlerFunc(denyKey)}))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Start(runCtx); err != nil {
			t.Errorf("webhook server: %v", err)
		}
	})
	wg.Go(func() {
		if err := h.rot.Start(runCtx); err != nil {
			t.Errorf("rotator: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitLong):
			t.Error("webhook server or rotator still running after the test")
		}
	})
	eventually(t, "the webhook server to listen", func() (bool, string) {
		_, err := h.servedLeaf()
		return err == nil, fmt.Sprint(err)
	})
	return h
}

// newRotator makes a rotator for this harness's Secret and configuration writing into dir.
func (h *harness) newRotator(dir string, v validity) *webhookcerts.Rotator {
	h.t.Helper()
	o := webhookcerts.Options{
		Namespace:                       h.ns,
		SecretName:                      secretName,
		ServiceName:                     serviceName,
		ExtraIPs:                        []net.IP{net.ParseIP("127.0.0.1")},
		CertDir:                         dir,
		ValidatingWebhookConfigurations: []string{h.vwc},
		CheckInterval:                   time.Minute,
		Clock:                           h.clock,
		Logger:                          testr.New(h.t),
	}
	v.apply(&o)
	rot, err := webhookcerts.New(k8sClient, o)
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	return rot
}

// denyKey refuses ConfigMaps that carry the data key "deny".
func denyKey(_ context.Context, req admission.Request) admission.Response {
	var cm corev1.ConfigMap
	if err := json.Unmarshal(req.Object.Raw, &cm); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if _, ok := cm.Data["deny"]; ok {
		return admission.Denied(denyMessage)
	}
	return admission.Allowed("")
}

// closeConnections makes the API server open a new connection, and so verify the served
// certificate in a new handshake, for every admission: without it one kept-alive connection could
// carry every request across a rotation and prove nothing.
func closeConnections(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		next.ServeHTTP(w, r)
	})
}

// servedLeaf dials the webhook server and returns the certificate it serves now. Verification
// is skipped here on purpose: the test checks trust separately against the caBundle.
func (h *harness) servedLeaf() (*x509.Certificate, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // reading, not trusting
	conn, err := d.DialContext(context.Background(), "tcp", h.addr)
	if err != nil {
		return nil, err
	}
	// Only the handshake was wanted; closing cannot change the certificate it returned.
	defer func() { _ = conn.Close() }()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// caBundle is the configuration's (single) webhook caBundle.
func (h *harness) caBundle() []byte {
	h.t.Helper()
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: h.vwc}, vwc); err != nil {
		h.t.Fatalf("reading validatingwebhookconfiguration %s: %v", h.vwc, err)
	}
	return vwc.Webhooks[0].ClientConfig.CABundle
}

func (h *harness) secret() *corev1.Secret {
	h.t.Helper()
	s := &corev1.Secret{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: secretName}, s); err != nil {
		h.t.Fatalf("reading secret %s/%s: %v", h.ns, secretName, err)
	}
	return s
}

// createConfigMap creates a ConfigMap through the API server, and so through the webhook.
func (h *harness) createConfigMap(ctx context.Context, data map[string]string) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, GenerateName: "cm-"}, Data: data}
	return k8sClient.Create(ctx, cm)
}

// verifyAgainst checks leaf is trusted for 127.0.0.1 by the PEM bundle, at the real time the
// API server checks it at.
func verifyAgainst(leaf *x509.Certificate, bundle []byte) error {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		return errors.New("no certificate in the bundle")
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

func bundleCerts(t *testing.T, bundle []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			return out
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("caBundle holds an unparsable certificate: %v", err)
		}
		out = append(out, c)
	}
}

// eventually polls cond every 200ms until it holds, failing the test after waitLong with the
// last state cond described.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }() // the listener only found a free port
	return l.Addr().(*net.TCPAddr).Port
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
