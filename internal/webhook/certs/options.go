package certs

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Defaults. The CA lives a year and the serving certificate a quarter: short enough that rotation
// is exercised in every long-running cluster (so it is known to work), long enough that an
// operator outage of weeks does not break admission.
const (
	DefaultCAValidity    = 365 * 24 * time.Hour
	DefaultCertValidity  = 90 * 24 * time.Hour
	DefaultCheckInterval = time.Minute
	// DefaultTrustDelay covers the API servers' informers picking up a new caBundle (normally well
	// under a second, seconds on a loaded control plane) before a certificate signed by a new CA
	// is served.
	DefaultTrustDelay = 30 * time.Second
)

// Options configure a Rotator. Zero durations take the defaults above.
type Options struct {
	// Namespace and SecretName name the Secret (type kubernetes.io/tls, plus ca.crt and ca.key)
	// that holds the CA and the serving certificate. Every replica reads the same Secret, so all
	// serve the same certificate.
	Namespace, SecretName string
	// ServiceName gives the serving certificate's DNS names <svc>, <svc>.<ns>, <svc>.<ns>.svc and
	// <svc>.<ns>.svc.cluster.local. Optional when ExtraDNSNames or ExtraIPs name the server.
	ServiceName string
	// ExtraDNSNames and ExtraIPs are added to the serving certificate, e.g. "localhost" and
	// 127.0.0.1 when the API server calls a URL on the host (envtest, local clusters).
	ExtraDNSNames []string
	ExtraIPs      []net.IP
	// CertDir receives tls.crt and tls.key for controller-runtime's webhook server, which reloads
	// them on change (certwatcher). Use the same directory as webhook.Options.CertDir.
	CertDir string
	// MutatingWebhookConfigurations and ValidatingWebhookConfigurations name the configurations
	// whose every webhook's clientConfig.caBundle is kept equal to the Secret's CA bundle.
	MutatingWebhookConfigurations, ValidatingWebhookConfigurations []string

	// CAValidity is the CA's lifetime (default 365 days); CARenewBefore starts a CA rotation when
	// less than this is left (default a third of CAValidity). It must exceed RenewBefore so that a
	// serving certificate signed by a CA that is not due itself is not due either.
	CAValidity, CARenewBefore time.Duration
	// CertValidity is the serving certificate's lifetime (default 90 days, never past the CA's
	// end); RenewBefore reissues it when less than this is left (default a third of CertValidity).
	CertValidity, RenewBefore time.Duration
	// CheckInterval is how often Start re-checks the Secret and the configurations (default 1m).
	CheckInterval time.Duration
	// TrustDelay is how long this replica must have seen every configuration trust a new CA
	// before it switches the serving certificate to one that CA signed (default 30s).
	TrustDelay time.Duration

	// Clock is injected so tests can drive rotation; the real clock when nil.
	Clock clock.Clock
	// Logger receives structured logs; controller-runtime's logger named "webhook-certs" when unset.
	Logger logr.Logger
	// Recorder, when set, records an event on the Secret at each creation and rotation.
	Recorder events.EventRecorder
}

// withDefaults returns a copy of o with zero fields defaulted.
func (o Options) withDefaults() Options {
	if o.CAValidity == 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.CARenewBefore == 0 {
		o.CARenewBefore = o.CAValidity / 3
	}
	if o.CertValidity == 0 {
		o.CertValidity = DefaultCertValidity
	}
	if o.RenewBefore == 0 {
		o.RenewBefore = o.CertValidity / 3
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.TrustDelay == 0 {
		o.TrustDelay = DefaultTrustDelay
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger.GetSink() == nil {
		o.Logger = ctrllog.Log.WithName("webhook-certs")
	}
	return o
}

// validate reports every problem of a defaulted Options, each naming its field.
func (o *Options) validate() error {
	var errs []error
	req := func(field, v string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("Options.%s is required", field))
		}
	}
	req("Namespace", o.Namespace)
	req("SecretName", o.SecretName)
	req("CertDir", o.CertDir)
	if o.ServiceName == "" && len(o.ExtraDNSNames) == 0 && len(o.ExtraIPs) == 0 {
		errs = append(errs, errors.New("Options.ServiceName, ExtraDNSNames or ExtraIPs must name the server"))
	}
	for i, n := range o.ExtraDNSNames {
		if n == "" {
			errs = append(errs, fmt.Errorf("Options.ExtraDNSNames[%d] is empty", i))
		}
	}
	for i, ip := range o.ExtraIPs {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			errs = append(errs, fmt.Errorf("Options.ExtraIPs[%d] is not an IP address", i))
		}
	}
	checkNames := func(field string, names []string) {
		seen := map[string]bool{}
		for i, n := range names {
			switch {
			case n == "":
				errs = append(errs, fmt.Errorf("Options.%s[%d] is empty", field, i))
			case seen[n]:
				errs = append(errs, fmt.Errorf("Options.%s[%d]: %q is listed twice", field, i, n))
			}
			seen[n] = true
		}
	}
	checkNames("MutatingWebhookConfigurations", o.MutatingWebhookConfigurations)
	checkNames("ValidatingWebhookConfigurations", o.ValidatingWebhookConfigurations)

	pos := func(field string, d time.Duration) bool {
		if d < 0 {
			errs = append(errs, fmt.Errorf("Options.%s is negative (%s)", field, d))
			return false
		}
		return true
	}
	if pos("CAValidity", o.CAValidity) && pos("CertValidity", o.CertValidity) && o.CertValidity > o.CAValidity {
		errs = append(errs, fmt.Errorf("Options.CertValidity (%s) exceeds CAValidity (%s)", o.CertValidity, o.CAValidity))
	}
	if pos("RenewBefore", o.RenewBefore) && o.RenewBefore >= o.CertValidity {
		errs = append(errs, fmt.Errorf("Options.RenewBefore (%s) must be shorter than CertValidity (%s)", o.RenewBefore, o.CertValidity))
	}
	if pos("CARenewBefore", o.CARenewBefore) {
		if o.CARenewBefore >= o.CAValidity {
			errs = append(errs, fmt.Errorf("Options.CARenewBefore (%s) must be shorter than CAValidity (%s)", o.CARenewBefore, o.CAValidity))
		}
		if o.CARenewBefore <= o.RenewBefore {
			errs = append(errs, fmt.Errorf("Options.CARenewBefore (%s) must exceed RenewBefore (%s), or a fresh serving certificate capped at the CA's end would be due at once", o.CARenewBefore, o.RenewBefore))
		}
	}
	if pos("CheckInterval", o.CheckInterval) && o.RenewBefore <= o.CheckInterval {
		errs = append(errs, fmt.Errorf("Options.RenewBefore (%s) must exceed CheckInterval (%s), or a certificate may expire between checks", o.RenewBefore, o.CheckInterval))
	}
	pos("TrustDelay", o.TrustDelay)
	if len(errs) > 0 {
		return fmt.Errorf("webhook certificates: %w", errors.Join(errs...))
	}
	return nil
}

// dnsNames are the serving certificate's DNS subject alternative names.
func (o *Options) dnsNames() []string {
	var names []string
	if s := o.ServiceName; s != "" {
		ns := o.Namespace
		names = append(names, s, s+"."+ns, s+"."+ns+".svc", s+"."+ns+".svc.cluster.local")
	}
	return append(names, o.ExtraDNSNames...)
}
