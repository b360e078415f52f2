package certs

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhookcerts "kcloud.io/optimizer/internal/webhook/certs"
)

const day = 24 * time.Hour

// TestInjectionAndAdmission: the first Ensure creates the Secret and injects the CA, the API
// server then calls the webhook over TLS (allowing and refusing), and a caBundle emptied by
// someone else is put back by the watch, without the rotator's clock moving.
func TestInjectionAndAdmission(t *testing.T) {
	h := startHarness(t, "admission", validity{100 * day, 40 * day, 30 * day, 10 * day}, time.Now())
	ctx := context.Background()

	s := h.secret()
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("secret type %q, want %q", s.Type, corev1.SecretTypeTLS)
	}
	if len(s.Data[webhookcerts.CABundleKey]) == 0 || !bytes.Equal(h.caBundle(), s.Data[webhookcerts.CABundleKey]) {
		t.Fatal("the configuration's caBundle is not the Secret's ca.crt")
	}
	leaf, err := h.servedLeaf()
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyAgainst(leaf, h.caBundle()); err != nil {
		t.Fatalf("served certificate not trusted by the caBundle: %v", err)
	}
	if err := h.rot.ReadyCheck(nil); err != nil {
		t.Errorf("ReadyCheck after Ensure: %v", err)
	}

	// The API server may need a moment to see the injected bundle; after that every create works.
	eventually(t, "an allowed ConfigMap to be admitted over TLS", func() (bool, string) {
		err := h.createConfigMap(ctx, map[string]string{"ok": "1"})
		return err == nil, fmt.Sprint(err)
	})
	err = h.createConfigMap(ctx, map[string]string{"deny": "1"})
	if err == nil || !strings.Contains(err.Error(), denyMessage) {
		t.Fatalf("a ConfigMap with key deny: got %v, want the webhook's refusal %q", err, denyMessage)
	}

	// Empty the caBundle, as re-applying a manifest would.
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: h.vwc}, vwc); err != nil {
		t.Fatal(err)
	}
	vwc.Webhooks[0].ClientConfig.CABundle = nil
	if err := k8sClient.Update(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the watch to re-inject the caBundle", func() (bool, string) {
		got := h.caBundle()
		return bytes.Equal(got, s.Data[webhookcerts.CABundleKey]), fmt.Sprintf("caBundle of %d bytes", len(got))
	})
	eventually(t, "admission to work again", func() (bool, string) {
		err := h.createConfigMap(ctx, map[string]string{"ok": "2"})
		return err == nil, fmt.Sprint(err)
	})
}

// TestRotationWithoutFailedAdmission moves the rotator's clock past a renewal while ConfigMaps
// are created every 20 ms through a fail-closed webhook whose server closes every connection (so
// each admission is a new TLS handshake). Every create must succeed, the served certificate must
// change, and the caBundle must trust it.
//
// The fake clock starts in the past, so that the certificates issued before and after the step
// are both valid at the real time the API server checks them at.
func TestRotationWithoutFailedAdmission(t *testing.T) {
	tests := []struct {
		name string
		v    validity
		// back is how far in the past the clock starts; step moves it past a renewal.
		back, step time.Duration
		caRotates  bool
	}{
		// Serving certificate due 20 days after issue; the CA not before 60.
		{name: "serving", v: validity{100 * day, 40 * day, 30 * day, 10 * day}, back: 25 * day, step: 21 * day},
		// CA due 60 days after issue; the serving certificate not before 80.
		{name: "ca", v: validity{100 * day, 40 * day, 90 * day, 10 * day}, back: 65 * day, step: 61 * day, caRotates: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHarness(t, "rotate-"+tt.name, tt.v, time.Now().Add(-tt.back))
			eventually(t, "admission to work", func() (bool, string) {
				err := h.createConfigMap(context.Background(), map[string]string{"ok": "1"})
				return err == nil, fmt.Sprint(err)
			})
			leaf0, err := h.servedLeaf()
			if err != nil {
				t.Fatal(err)
			}
			bundle0, secret0 := h.caBundle(), h.secret()

			load := startLoad(h)
			defer load.stop()
			probe := startProbe(h)
			defer probe.stop()
			eventually(t, "the load to run", func() (bool, string) {
				return load.ok.Load() >= 10, fmt.Sprintf("%d admitted", load.ok.Load())
			})

			h.clock.Step(tt.step)
			// Keep the rotator's time moving (2 s per poll, 10x real time) so that timers fire
			// and, for a CA, the trust delay passes.
			eventually(t, "the served certificate to change", func() (bool, string) {
				h.clock.Step(2 * time.Second)
				leaf, err := h.servedLeaf()
				if err != nil {
					return false, err.Error()
				}
				return leaf.SerialNumber.Cmp(leaf0.SerialNumber) != 0, "serial " + leaf.SerialNumber.Text(16)
			})
			switched := load.ok.Load()
			// Admissions after the switch each verify the new certificate in a new handshake.
			eventually(t, "50 admissions with the new certificate", func() (bool, string) {
				return load.ok.Load() >= switched+50, fmt.Sprintf("%d since the switch", load.ok.Load()-switched)
			})
			load.stop()
			probe.stop()
			if bad := probe.failures(); len(bad) > 0 {
				t.Errorf("%d of %d probes found the served certificate untrusted by the caBundle the API server had just before; first: %v", len(bad), probe.checks.Load(), bad[0])
			}
			t.Logf("%d trust probes", probe.checks.Load())
			if fails := load.failures(); len(fails) > 0 {
				t.Errorf("%d of %d creates failed during the rotation; first: %v", len(fails), int(load.ok.Load())+len(fails), fails[0])
			}
			t.Logf("%d ConfigMaps admitted during the rotation, %d after the switch", load.ok.Load(), load.ok.Load()-switched)

			leaf1, err := h.servedLeaf()
			if err != nil {
				t.Fatal(err)
			}
			bundle1, secret1 := h.caBundle(), h.secret()
			if err := verifyAgainst(leaf1, bundle1); err != nil {
				t.Errorf("new certificate not trusted by the caBundle: %v", err)
			}
			if !bytes.Equal(bundle1, secret1.Data[webhookcerts.CABundleKey]) {
				t.Error("caBundle differs from the Secret's ca.crt")
			}
			if stored := bundleCerts(t, secret1.Data[webhookcerts.CertKey]); len(stored) != 1 || !stored[0].Equal(leaf1) {
				t.Error("the served certificate is not the Secret's tls.crt")
			}
			cas := bundleCerts(t, bundle1)
			if tt.caRotates {
				if len(cas) != 2 {
					t.Fatalf("caBundle holds %d CAs, want the new and the old", len(cas))
				}
				if leaf1.CheckSignatureFrom(cas[0]) != nil {
					t.Error("the new certificate is not signed by the bundle's first (new) CA")
				}
				if leaf0.CheckSignatureFrom(cas[1]) != nil || leaf0.CheckSignatureFrom(cas[0]) == nil {
					t.Error("the old certificate's CA is not the bundle's second")
				}
				if bytes.Equal(bundle1, bundle0) {
					t.Error("caBundle unchanged by a CA rotation")
				}
				// A replica still serving the old certificate stays trusted.
				if err := verifyAgainst(leaf0, bundle1); err != nil {
					t.Errorf("old certificate no longer trusted right after the rotation: %v", err)
				}
				if bytes.Equal(secret1.Data[webhookcerts.CAKeyKey], secret0.Data[webhookcerts.CAKeyKey]) {
					t.Error("ca.key unchanged by a CA rotation")
				}
			} else {
				if !bytes.Equal(bundle1, bundle0) {
					t.Error("caBundle changed by a serving-only rotation")
				}
				if len(cas) != 1 || leaf1.CheckSignatureFrom(cas[0]) != nil || leaf0.CheckSignatureFrom(cas[0]) != nil {
					t.Error("old and new serving certificates should both be signed by the one CA")
				}
			}
			if err := h.rot.ReadyCheck(nil); err != nil {
				t.Errorf("ReadyCheck after the rotation: %v", err)
			}
		})
	}
}

// load creates ConfigMaps every 20 ms until stopped, counting successes and keeping failures.
type load struct {
	ok       atomic.Int64
	mu       sync.Mutex
	errs     []error
	stopOnce sync.Once
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func startLoad(h *harness) *load {
	l := &load{}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.wg.Go(func() {
		for ctx.Err() == nil {
			// Not derived from ctx: stopping must not cancel a create in flight and count it.
			reqCtx, done := context.WithTimeout(context.Background(), time.Minute)
			err := h.createConfigMap(reqCtx, map[string]string{"load": "1"})
			done()
			if err != nil {
				l.mu.Lock()
				l.errs = append(l.errs, err)
				l.mu.Unlock()
			} else {
				l.ok.Add(1)
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	return l
}

func (l *load) stop() {
	l.stopOnce.Do(func() {
		l.cancel()
		l.wg.Wait()
	})
}

func (l *load) failures() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// probe checks, as fast as it can, that the served certificate is trusted by the caBundle read
// from the API server just before dialing: a tighter check than admissions, whose 20 ms pace can
// miss a short window where a server uses a CA the API server does not trust yet.
type probe struct {
	load
	checks atomic.Int64
}

func startProbe(h *harness) *probe {
	p := &probe{}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	fail := func(err error) {
		p.mu.Lock()
		p.errs = append(p.errs, err)
		p.mu.Unlock()
	}
	p.wg.Go(func() {
		for ctx.Err() == nil {
			before := h.clock.Now()
			vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: h.vwc}, vwc); err != nil {
				fail(fmt.Errorf("reading the configuration: %w", err))
				continue
			}
			leaf, err := h.servedLeaf()
			if err != nil {
				fail(fmt.Errorf("dialing the webhook server: %w", err))
				continue
			}
			// Had the rotator's clock moved by a whole TrustDelay in between (a stalled probe), a
			// correct rotator could have switched meanwhile: no conclusion from this sample.
			if h.clock.Since(before) >= webhookcerts.DefaultTrustDelay {
				continue
			}
			p.checks.Add(1)
			if err := verifyAgainst(leaf, vwc.Webhooks[0].ClientConfig.CABundle); err != nil {
				fail(fmt.Errorf("serial %s: %w", leaf.SerialNumber.Text(16), err))
			}
		}
	})
	return p
}

// TestReplicasShareOneSecret runs three replicas' Ensure at once, on a missing Secret and again
// after the serving certificate is due: one creation and one rotation win, the others re-read,
// and all write the same files. It also checks that a configuration carrying a newer revision
// than a recreated Secret is still corrected.
func TestReplicasShareOneSecret(t *testing.T) {
	ctx := context.Background()
	ns := "certs-replicas"
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	vwcName := "certs-test-replicas"
	// Never called: it matches nothing that is created.
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: vwcName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "unused.certs.kcloud.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:1/unused")},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"certs-test": "no-such-namespace"}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Ignore),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	if err := k8sClient.Create(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), vwc) })

	clk := testingclock.NewFakeClock(time.Now())
	h := &harness{t: t, ns: ns, vwc: vwcName, clock: clk}
	v := validity{100 * day, 40 * day, 30 * day, 10 * day}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	rots := make([]*webhookcerts.Rotator, len(dirs))
	for i, d := range dirs {
		rots[i] = h.newRotator(d, v)
	}
	ensureAll := func(stage string) {
		t.Helper()
		errs := make([]error, len(rots))
		var wg sync.WaitGroup
		for i, r := range rots {
			wg.Go(func() { errs[i] = r.Ensure(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s: replica %d: %v", stage, i, err)
			}
		}
		s := h.secret()
		for i, d := range dirs {
			crt := readFile(t, d, webhookcerts.CertKey)
			key := readFile(t, d, webhookcerts.KeyKey)
			if !bytes.Equal(crt, s.Data[webhookcerts.CertKey]) || !bytes.Equal(key, s.Data[webhookcerts.KeyKey]) {
				t.Errorf("%s: replica %d's files differ from the Secret", stage, i)
			}
		}
		if !bytes.Equal(h.caBundle(), s.Data[webhookcerts.CABundleKey]) {
			t.Errorf("%s: caBundle differs from the Secret's ca.crt", stage)
		}
	}

	ensureAll("creation")
	s1 := h.secret()
	if got := s1.Annotations[webhookcerts.RevisionAnnotation]; got != "1" {
		t.Errorf("revision after a concurrent creation = %s, want 1 (a loser rewrote the Secret)", got)
	}
	clk.Step(21 * day)
	ensureAll("rotation")
	s2 := h.secret()
	if got := s2.Annotations[webhookcerts.RevisionAnnotation]; got != "2" {
		t.Errorf("revision after a concurrent rotation = %s, want 2 (one rotation)", got)
	}
	if bytes.Equal(s1.Data[webhookcerts.CertKey], s2.Data[webhookcerts.CertKey]) {
		t.Error("serving certificate not rotated")
	}

	// The configuration claims a newer revision with a wrong bundle, as after the Secret was
	// deleted and recreated (revisions restart): Ensure raises the Secret's revision and corrects it.
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: vwcName}, vwc); err != nil {
		t.Fatal(err)
	}
	vwc.Annotations = map[string]string{webhookcerts.RevisionAnnotation: "99"}
	vwc.Webhooks[0].ClientConfig.CABundle = []byte("stale")
	if err := k8sClient.Update(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	ensureAll("newer configuration")
	if got := h.secret().Annotations[webhookcerts.RevisionAnnotation]; got != "100" {
		t.Errorf("revision after meeting a configuration at 99 = %s, want 100", got)
	}
}
