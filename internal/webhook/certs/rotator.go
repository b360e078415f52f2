// Package certs manages the admission webhooks' certificates without cert-manager: a CA and a
// serving certificate in a Secret shared by every replica, the serving pair written to the webhook
// server's CertDir, and the CA bundle injected into the webhook configurations. Rotation is
// staged (new CA published in the bundle before any server uses it, old CAs kept until they
// expire) so that no admission fails while certificates change.
package certs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RevisionAnnotation numbers the Secret's content. The rotator writes it on the webhook
// configurations with the bundle, and never overwrites a configuration carrying a higher
// revision: a replica that read the Secret just before another replica rotated it cannot put
// the older bundle back.
const RevisionAnnotation = "certs.kcloud.io/revision"

// maxAttempts bounds the read-modify-write loops; conflicts between a few replicas settle in
// two or three.
const maxAttempts = 10

// Rotator keeps the webhook certificates valid. Create it with New.
type Rotator struct {
	c client.Client
	o Options

	mu sync.Mutex // serialises Ensure
	// trust records since when this replica has seen every configuration carry the bundle of
	// the CA with fingerprint trustCA; the serving certificate moves to a new CA only after
	// TrustDelay of that.
	trustCA    [32]byte
	trustSince time.Time
	// pending is set while the serving certificate waits for trust in a new CA.
	pending bool

	stateMu  sync.RWMutex
	readyErr error
}

// New validates o (errors name the field) and returns a Rotator using c, which must read
// Secrets in o.Namespace and the named webhook configurations. Give it a client that reads
// from the API server (client.New or client.NewWithWatch), not a cached one: a cache would start
// informers over every Secret. With a client.WithWatch, Start also reacts to changes at once.
func New(c client.Client, o Options) (*Rotator, error) {
	if c == nil {
		return nil, errors.New("webhook certificates: client is nil")
	}
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Rotator{c: c, o: o, readyErr: errors.New("webhook certificates not ensured yet")}, nil
}

// NeedLeaderElection is false: every replica serves webhooks, so every replica keeps its files
// current.
func (r *Rotator) NeedLeaderElection() bool { return false }

// ReadyCheck is a healthz.Checker: it passes once an Ensure has put the certificates on disk and
// seen every named configuration carry the bundle. It stays passing through later API errors, so
// an API server hiccup does not take every replica out of the Service at once; the files are
// checked on each call.
func (r *Rotator) ReadyCheck(_ *http.Request) error {
	r.stateMu.RLock()
	err := r.readyErr
	r.stateMu.RUnlock()
	if err != nil {
		return err
	}
	for _, name := range []string{CertKey, KeyKey} {
		if _, err := os.Stat(filepath.Join(r.o.CertDir, name)); err != nil {
			return fmt.Errorf("webhook certificate file: %w", err)
		}
	}
	return nil
}

// Ensure brings the Secret, the files in CertDir and the configurations' caBundles up to date,
// synchronously. Call it once before the manager starts (the webhook server reads the files when
// it starts); Start then calls it on changes and every CheckInterval.
func (r *Rotator) Ensure(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.ensure(ctx)
	if err == nil {
		r.stateMu.Lock()
		r.readyErr = nil
		r.stateMu.Unlock()
	}
	return err
}

func (r *Rotator) ensure(ctx context.Context) error {
	for range maxAttempts {
		secret, p, err := r.syncSecret(ctx)
		if err != nil {
			return err
		}
		if err := r.writeFiles(secret.Data); err != nil {
			return err
		}
		upToDate, err := r.inject(ctx, secret.Data[CABundleKey], revision(secret))
		var stale *staleError
		if errors.As(err, &stale) {
			if err := r.resolveStale(ctx, secret, stale.revision); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		r.observeTrust(p.ca, upToDate)
		r.pending = p.pending
		return nil
	}
	return fmt.Errorf("secret %s/%s: still changing after %d attempts", r.o.Namespace, r.o.SecretName, maxAttempts)
}

// syncSecret reads the Secret, creating or updating it as decide says, and returns what is
// stored. Create races end in AlreadyExists and update races in Conflict; both re-read.
func (r *Rotator) syncSecret(ctx context.Context) (*corev1.Secret, *plan, error) {
	key := client.ObjectKey{Namespace: r.o.Namespace, Name: r.o.SecretName}
	for range maxAttempts {
		now := r.o.Clock.Now()
		secret := &corev1.Secret{}
		err := r.c.Get(ctx, key, secret)
		if apierrors.IsNotFound(err) {
			p, err := decide(&r.o, nil, now, r.trusted)
			if err != nil {
				return nil, nil, fmt.Errorf("secret %s: %w", key, err)
			}
			secret = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{
					Namespace:   key.Namespace,
					Name:        key.Name,
					Annotations: map[string]string{RevisionAnnotation: "1"},
					Labels:      map[string]string{"app.kubernetes.io/managed-by": "kcloud-operator"},
				},
				Type: corev1.SecretTypeTLS,
				Data: p.data,
			}
			err = r.c.Create(ctx, secret)
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("creating secret %s: %w", key, err)
			}
			r.changed(secret, p, "Created")
			return secret, p, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading secret %s: %w", key, err)
		}
		p, err := decide(&r.o, secret.Data, now, r.trusted)
		if err != nil {
			return nil, nil, fmt.Errorf("secret %s: %w", key, err)
		}
		if len(p.reasons) == 0 {
			return secret, p, nil
		}
		secret.Data = p.data
		setRevision(secret, revision(secret)+1)
		err = r.c.Update(ctx, secret) // carries resourceVersion: optimistic concurrency
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("updating secret %s: %w", key, err)
		}
		r.changed(secret, p, "Rotated")
		return secret, p, nil
	}
	return nil, nil, fmt.Errorf("secret %s: conflicts persisted over %d attempts", key, maxAttempts)
}

// changed logs and records a change of the Secret.
func (r *Rotator) changed(secret *corev1.Secret, p *plan, action string) {
	why := strings.Join(p.reasons, "; ")
	kv := []any{"secret", klog.KObj(secret), "reasons", why, "revision", revision(secret),
		"ca", p.ca.Subject.CommonName, "caNotAfter", p.ca.NotAfter.UTC()}
	if p.serving != nil {
		kv = append(kv, "servingSerial", p.serving.SerialNumber.Text(16), "servingNotAfter", p.serving.NotAfter.UTC())
	}
	r.o.Logger.Info(action+" webhook certificates", kv...)
	if r.o.Recorder != nil {
		r.o.Recorder.Eventf(secret, nil, corev1.EventTypeNormal, "WebhookCertificates"+action, action, "%s", why)
	}
}

// trusted reports whether every configuration has carried ca in its bundle for TrustDelay, as
// seen by this replica.
func (r *Rotator) trusted(ca *x509.Certificate) bool {
	return !r.trustSince.IsZero() && r.trustCA == sha256.Sum256(ca.Raw) &&
		r.o.Clock.Since(r.trustSince) >= r.o.TrustDelay
}

// observeTrust starts the TrustDelay for ca when the configurations already carried the bundle
// before this pass (so the API servers have had the time of a round trip at least), and resets
// it when a configuration had to be corrected.
func (r *Rotator) observeTrust(ca *x509.Certificate, upToDate bool) {
	fp := sha256.Sum256(ca.Raw)
	switch {
	case !upToDate:
		r.trustSince = time.Time{}
	case r.trustSince.IsZero() || r.trustCA != fp:
		r.trustCA, r.trustSince = fp, r.o.Clock.Now()
	}
}

// nextCheck is how long Start waits after a successful Ensure: CheckInterval, or less while a
// serving certificate waits for trust in a new CA.
func (r *Rotator) nextCheck() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	wait := r.o.CheckInterval
	if r.pending {
		left := r.o.TrustDelay
		if !r.trustSince.IsZero() {
			left -= r.o.Clock.Since(r.trustSince)
		}
		wait = min(wait, max(left, 0))
	}
	return wait
}

func revision(s *corev1.Secret) int64 {
	n, _ := strconv.ParseInt(s.Annotations[RevisionAnnotation], 10, 64)
	return n
}

func setRevision(o metav1.Object, n int64) {
	a := o.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[RevisionAnnotation] = strconv.FormatInt(n, 10)
	o.SetAnnotations(a)
}

// staleError says a configuration carries a bundle of a newer Secret revision than the one read.
type staleError struct {
	config   string
	revision int64
}

func (e *staleError) Error() string {
	return fmt.Sprintf("%s carries revision %d, newer than the secret read", e.config, e.revision)
}

// resolveStale handles a configuration newer than the Secret: usually another replica rotated
// since our read, and the next pass reads its Secret. When the Secret has not changed, it was
// recreated (revisions restarted), so its revision is raised past the configuration's.
func (r *Rotator) resolveStale(ctx context.Context, read *corev1.Secret, configRev int64) error {
	fresh := &corev1.Secret{}
	if err := r.c.Get(ctx, client.ObjectKeyFromObject(read), fresh); err != nil {
		return fmt.Errorf("re-reading secret %s/%s: %w", read.Namespace, read.Name, err)
	}
	if fresh.ResourceVersion != read.ResourceVersion || revision(fresh) > configRev {
		return nil
	}
	setRevision(fresh, configRev+1)
	if err := r.c.Update(ctx, fresh); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("raising the revision of secret %s/%s: %w", read.Namespace, read.Name, err)
	}
	return nil
}

// inject sets every webhook's caBundle of the named configurations to bundle. upToDate is true
// when none needed a change. A configuration with a newer revision yields a *staleError.
func (r *Rotator) inject(ctx context.Context, bundle []byte, rev int64) (upToDate bool, err error) {
	upToDate = true
	type target struct {
		kind string
		name string
		obj  func() client.Object
	}
	var targets []target
	for _, n := range r.o.MutatingWebhookConfigurations {
		targets = append(targets, target{"mutatingwebhookconfiguration", n, func() client.Object { return &admissionregistrationv1.MutatingWebhookConfiguration{} }})
	}
	for _, n := range r.o.ValidatingWebhookConfigurations {
		targets = append(targets, target{"validatingwebhookconfiguration", n, func() client.Object { return &admissionregistrationv1.ValidatingWebhookConfiguration{} }})
	}
	for _, t := range targets {
		name := t.kind + " " + t.name
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			obj := t.obj()
			if err := r.c.Get(ctx, client.ObjectKey{Name: t.name}, obj); err != nil {
				return err
			}
			cfgs := clientConfigs(obj)
			changed := false
			for _, cc := range cfgs {
				if !bytes.Equal(cc.CABundle, bundle) {
					changed = true
				}
			}
			if !changed {
				return nil
			}
			if n, _ := strconv.ParseInt(obj.GetAnnotations()[RevisionAnnotation], 10, 64); n > rev {
				return &staleError{config: name, revision: n}
			}
			for _, cc := range cfgs {
				cc.CABundle = bytes.Clone(bundle)
			}
			setRevision(obj, rev)
			if err := r.c.Update(ctx, obj); err != nil {
				return err
			}
			upToDate = false
			r.o.Logger.Info("Injected webhook CA bundle", "configuration", name, "revision", rev, "cas", len(parseCerts(bundle)))
			return nil
		})
		var stale *staleError
		if errors.As(err, &stale) {
			return false, err
		}
		if err != nil {
			return false, fmt.Errorf("injecting the CA bundle into %s: %w", name, err)
		}
	}
	return upToDate, nil
}

// clientConfigs points at every webhook's client configuration of a webhook configuration.
func clientConfigs(obj client.Object) []*admissionregistrationv1.WebhookClientConfig {
	var out []*admissionregistrationv1.WebhookClientConfig
	switch o := obj.(type) {
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		for i := range o.Webhooks {
			out = append(out, &o.Webhooks[i].ClientConfig)
		}
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		for i := range o.Webhooks {
			out = append(out, &o.Webhooks[i].ClientConfig)
		}
	}
	return out
}
