package certs

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func validOptions() Options {
	return Options{
		Namespace:                       "kcloud-system",
		SecretName:                      "kcloud-webhook-certs",
		ServiceName:                     "kcloud-webhook",
		CertDir:                         "/tmp/certs",
		ValidatingWebhookConfigurations: []string{"kcloud-validating"},
		MutatingWebhookConfigurations:   []string{"kcloud-mutating"},
	}
}

func TestOptionsValidation(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name   string
		modify func(*Options)
		want   []string // substrings of the error; none means valid
	}{
		{name: "valid with defaults", modify: func(*Options) {}},
		{name: "only an IP names the server", modify: func(o *Options) {
			o.ServiceName = ""
			o.ExtraIPs = []net.IP{net.ParseIP("127.0.0.1")}
		}},
		{name: "missing namespace, secret and dir", modify: func(o *Options) {
			o.Namespace, o.SecretName, o.CertDir = "", "", ""
		}, want: []string{"Options.Namespace is required", "Options.SecretName is required", "Options.CertDir is required"}},
		{name: "no server name", modify: func(o *Options) { o.ServiceName = "" },
			want: []string{"Options.ServiceName, ExtraDNSNames or ExtraIPs"}},
		{name: "empty extra DNS name", modify: func(o *Options) { o.ExtraDNSNames = []string{"localhost", ""} },
			want: []string{"Options.ExtraDNSNames[1] is empty"}},
		{name: "bad IP", modify: func(o *Options) { o.ExtraIPs = []net.IP{{1, 2, 3}} },
			want: []string{"Options.ExtraIPs[0]"}},
		{name: "duplicate configuration", modify: func(o *Options) {
			o.ValidatingWebhookConfigurations = []string{"a", "a"}
		}, want: []string{`Options.ValidatingWebhookConfigurations[1]: "a" is listed twice`}},
		{name: "empty configuration name", modify: func(o *Options) { o.MutatingWebhookConfigurations = []string{""} },
			want: []string{"Options.MutatingWebhookConfigurations[0] is empty"}},
		{name: "serving outlives CA", modify: func(o *Options) { o.CAValidity, o.CertValidity = 30*day, 60*day },
			want: []string{"Options.CertValidity (1440h0m0s) exceeds CAValidity (720h0m0s)"}},
		{name: "renew before not shorter than validity", modify: func(o *Options) { o.CertValidity, o.RenewBefore = 10*day, 10*day },
			want: []string{"Options.RenewBefore (240h0m0s) must be shorter than CertValidity"}},
		{name: "CA renew before not past serving renew before", modify: func(o *Options) { o.CARenewBefore, o.RenewBefore = 20*day, 20*day },
			want: []string{"Options.CARenewBefore (480h0m0s) must exceed RenewBefore"}},
		{name: "CA renew before too long", modify: func(o *Options) { o.CARenewBefore = 400 * day },
			want: []string{"Options.CARenewBefore (9600h0m0s) must be shorter than CAValidity"}},
		{name: "check interval too long", modify: func(o *Options) { o.CheckInterval = 31 * day },
			want: []string{"Options.RenewBefore (720h0m0s) must exceed CheckInterval"}},
		{name: "negative durations", modify: func(o *Options) { o.TrustDelay, o.CheckInterval = -time.Second, -time.Second },
			want: []string{"Options.TrustDelay is negative", "Options.CheckInterval is negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOptions()
			tt.modify(&o)
			_, err := New(fake.NewClientBuilder().Build(), o)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted invalid options; want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewRejectsNilClient(t *testing.T) {
	if _, err := New(nil, validOptions()); err == nil {
		t.Fatal("New accepted a nil client")
	}
}

func TestDefaults(t *testing.T) {
	o := validOptions().withDefaults()
	got := []time.Duration{o.CAValidity, o.CARenewBefore, o.CertValidity, o.RenewBefore, o.CheckInterval, o.TrustDelay}
	want := []time.Duration{DefaultCAValidity, DefaultCAValidity / 3, DefaultCertValidity, DefaultCertValidity / 3, time.Minute, 30 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if o.Clock == nil || o.Logger.GetSink() == nil {
		t.Error("clock or logger not defaulted")
	}
}

func TestDNSNames(t *testing.T) {
	o := validOptions()
	o.ExtraDNSNames = []string{"localhost"}
	want := []string{"kcloud-webhook", "kcloud-webhook.kcloud-system", "kcloud-webhook.kcloud-system.svc",
		"kcloud-webhook.kcloud-system.svc.cluster.local", "localhost"}
	if diff := cmp.Diff(want, o.dnsNames()); diff != "" {
		t.Errorf("dnsNames (-want +got):\n%s", diff)
	}
}
