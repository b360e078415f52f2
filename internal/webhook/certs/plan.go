package certs

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Keys of the Secret. tls.crt and tls.key are the kubernetes.io/tls keys; ca.crt is the CA
// bundle the webhook configurations get (the current CA first, then older CAs still trusted) and
// ca.key is the current CA's key. The current CA is the bundle certificate that matches ca.key.
const (
	CABundleKey = "ca.crt"
	CAKeyKey    = "ca.key"
	CertKey     = corev1.TLSCertKey
	KeyKey      = corev1.TLSPrivateKeyKey
)

// plan is what the Secret should hold at now.
type plan struct {
	// data is the Secret's data with the four keys above set; other keys are kept.
	data map[string][]byte
	// reasons say why data differs from the input; empty when nothing changes.
	reasons []string
	// ca is the current CA; serving the serving certificate data holds.
	ca, serving *x509.Certificate
	// pending is true when the serving certificate is still signed by an older CA, waiting for
	// the webhook configurations to trust the current one.
	pending bool
}

// decide works out the Secret's content at now from its current data (nil when it does not
// exist). trusted reports whether every webhook configuration has trusted a CA long enough to
// serve a certificate it signed. Rotation is staged so that no admission fails:
//   - no usable CA, or the CA has less than CARenewBefore left: a new CA is generated and put
//     first in the bundle; the older CAs stay in it until they expire;
//   - the serving certificate is reissued at once when it is missing, broken, expired, signed by
//     no CA of the bundle, or when it is signed by the current CA and is due (less than
//     RenewBefore left) or names the wrong hosts: the bundle already trusts its signer;
//   - a serving certificate still signed by an older CA is switched to the current CA only once
//     trusted(current CA) holds, i.e. after the bundle with the new CA has been published.
func decide(o *Options, data map[string][]byte, now time.Time, trusted func(*x509.Certificate) bool) (*plan, error) {
	p := &plan{data: maps.Clone(data)}
	if p.data == nil {
		p.data = map[string][]byte{}
	}
	bundle := parseCerts(data[CABundleKey])

	var ca *keyPair
	if key, err := parseKey(data[CAKeyKey]); err == nil {
		for _, c := range bundle {
			if c.IsCA && sameKey(c.PublicKey, key) {
				ca = &keyPair{cert: c, key: key, keyPEM: data[CAKeyKey]}
				break
			}
		}
	}
	switch {
	case ca == nil && len(data) == 0:
		p.reasons = append(p.reasons, "no CA yet")
	case ca == nil:
		p.reasons = append(p.reasons, "no usable CA (ca.crt and ca.key missing, unparsable or not a pair)")
	case !now.Before(ca.cert.NotAfter.Add(-o.CARenewBefore)):
		p.reasons = append(p.reasons, fmt.Sprintf("CA %q expires at %s, within CARenewBefore %s",
			ca.cert.Subject.CommonName, ca.cert.NotAfter.UTC().Format(time.RFC3339), o.CARenewBefore))
		ca = nil
	}
	if ca == nil {
		var err error
		if ca, err = newCA(now, o.CAValidity, caName(o)); err != nil {
			return nil, fmt.Errorf("creating CA: %w", err)
		}
	}
	p.ca = ca.cert
	newBundle := mergeBundle(ca.cert, bundle, now)
	p.data[CABundleKey] = encodeCerts(newBundle)
	p.data[CAKeyKey] = ca.keyPEM
	if len(p.reasons) == 0 && !bytes.Equal(p.data[CABundleKey], data[CABundleKey]) {
		p.reasons = append(p.reasons, "CA bundle pruned of expired or invalid certificates")
	}

	dnsNames, ips := o.dnsNames(), o.ExtraIPs
	serving, err := parseKeyPair(data[CertKey], data[KeyKey])
	reissue := ""
	switch {
	case err != nil && len(data[CertKey]) == 0:
		reissue = "no serving certificate yet"
	case err != nil:
		reissue = fmt.Sprintf("serving certificate unusable: %v", err)
	case !now.Before(serving.NotAfter):
		reissue = fmt.Sprintf("serving certificate expired at %s", serving.NotAfter.UTC().Format(time.RFC3339))
	case !signedByAny(serving, newBundle):
		reissue = "serving certificate signed by no CA of the bundle"
	case signedBy(serving, ca.cert):
		if !now.Before(serving.NotAfter.Add(-o.RenewBefore)) {
			reissue = fmt.Sprintf("serving certificate expires at %s, within RenewBefore %s",
				serving.NotAfter.UTC().Format(time.RFC3339), o.RenewBefore)
		} else if !sameNames(serving, dnsNames, ips) {
			reissue = "serving certificate names changed"
		}
	case trusted(ca.cert):
		reissue = fmt.Sprintf("switching the serving certificate to CA %q, which the webhook configurations trust", ca.cert.Subject.CommonName)
	default:
		p.pending = true
	}
	p.serving = serving
	if reissue != "" {
		kp, err := newServing(ca, now, o.CertValidity, dnsNames, ips)
		if err != nil {
			return nil, fmt.Errorf("creating serving certificate: %w", err)
		}
		p.data[CertKey], p.data[KeyKey] = kp.certPEM, kp.keyPEM
		p.serving = kp.cert
		p.reasons = append(p.reasons, reissue)
	}
	return p, nil
}

func signedByAny(cert *x509.Certificate, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if signedBy(cert, ca) {
			return true
		}
	}
	return false
}

// caName is the CA's common name (a timestamp is appended), so a bundle shows whose CA it is.
func caName(o *Options) string {
	if o.ServiceName != "" {
		return o.ServiceName + "." + o.Namespace + "-ca"
	}
	return o.SecretName + "." + o.Namespace + "-ca"
}
