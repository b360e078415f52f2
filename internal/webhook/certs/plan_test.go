package certs

import (
	"bytes"
	"crypto/x509"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

const day = 24 * time.Hour

func planOptions() Options {
	o := validOptions()
	o.ExtraIPs = []net.IP{net.ParseIP("127.0.0.1")}
	o.CAValidity, o.CARenewBefore = 100*day, 40*day
	o.CertValidity, o.RenewBefore = 30*day, 10*day
	return o.withDefaults()
}

func never(*x509.Certificate) bool { return false }

// initial is the data a first decide at t0 produces.
func initial(t *testing.T, o *Options) (map[string][]byte, *plan) {
	t.Helper()
	p, err := decide(o, nil, t0, never)
	if err != nil {
		t.Fatal(err)
	}
	return p.data, p
}

func TestDecideInitial(t *testing.T) {
	o := planOptions()
	data, p := initial(t, &o)
	if diff := cmp.Diff([]string{"no CA yet", "no serving certificate yet"}, p.reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	bundle := parseCerts(data[CABundleKey])
	if len(bundle) != 1 || !bundle[0].Equal(p.ca) {
		t.Fatalf("bundle holds %d certificates, want the new CA alone", len(bundle))
	}
	serving, err := parseKeyPair(data[CertKey], data[KeyKey])
	if err != nil {
		t.Fatal(err)
	}
	if !signedBy(serving, p.ca) || p.pending {
		t.Errorf("serving certificate signed by the CA: %v, pending %v", signedBy(serving, p.ca), p.pending)
	}
	if !sameNames(serving, o.dnsNames(), o.ExtraIPs) {
		t.Errorf("serving names %v %v", serving.DNSNames, serving.IPAddresses)
	}
	// Deciding again at once changes nothing.
	again, err := decide(&o, data, t0, never)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.reasons) != 0 || !maps.EqualFunc(again.data, data, bytes.Equal) {
		t.Errorf("second decide changed the data: %v", again.reasons)
	}
}

// TestDecideBoundaries moves the clock to either side of each renewal boundary. The data made
// at t0 has its serving certificate due at t0+20d; the CA is due at t0+60d, so the CA cases
// start from data whose serving certificate was renewed five days before that.
func TestDecideBoundaries(t *testing.T) {
	o := planOptions()
	data, first := initial(t, &o)
	ca0 := first.ca
	servingDue := first.serving.NotAfter.Add(-o.RenewBefore)
	caDue := ca0.NotAfter.Add(-o.CARenewBefore)
	renewed, err := decide(&o, data, caDue.Add(-5*day), never)
	if err != nil {
		t.Fatal(err)
	}
	if !renewed.ca.Equal(ca0) || renewed.serving.Equal(first.serving) {
		t.Fatal("setup: the serving certificate should have been renewed by the same CA")
	}

	type want struct {
		reason     string // substring of the reasons; "" means no change
		newCA      bool
		newServing bool
		servingCA  string // "old" or "new": the serving certificate's signer
		bundle     int    // CAs in the bundle
		pending    bool
	}
	tests := []struct {
		name string
		base *plan
		now  time.Time
		want want
	}{
		{name: "serving a nanosecond before due", base: first, now: servingDue.Add(-time.Nanosecond),
			want: want{servingCA: "old", bundle: 1}},
		{name: "serving due", base: first, now: servingDue,
			want: want{reason: "within RenewBefore", newServing: true, servingCA: "old", bundle: 1}},
		{name: "CA a nanosecond before due", base: renewed, now: caDue.Add(-time.Nanosecond),
			want: want{servingCA: "old", bundle: 1}},
		{name: "CA due, new CA not trusted yet: bundle first, serving waits", base: renewed, now: caDue,
			want: want{reason: "within CARenewBefore", newCA: true, servingCA: "old", bundle: 2, pending: true}},
		{name: "serving expired: reissued even though the new CA is not trusted", base: renewed, now: renewed.serving.NotAfter,
			want: want{reason: "serving certificate expired", newCA: true, newServing: true, servingCA: "new", bundle: 2}},
		{name: "CA expired: dropped from the bundle", base: renewed, now: ca0.NotAfter,
			want: want{reason: "within CARenewBefore", newCA: true, newServing: true, servingCA: "new", bundle: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := decide(&o, tt.base.data, tt.now, never)
			if err != nil {
				t.Fatal(err)
			}
			got := want{
				newCA:      !p.ca.Equal(ca0),
				newServing: !p.serving.Equal(tt.base.serving),
				bundle:     len(parseCerts(p.data[CABundleKey])),
				pending:    p.pending,
				servingCA:  "?",
			}
			switch {
			case signedBy(p.serving, ca0):
				got.servingCA = "old"
			case signedBy(p.serving, p.ca):
				got.servingCA = "new"
			}
			if tt.want.reason != "" {
				joined := strings.Join(p.reasons, "; ")
				if !strings.Contains(joined, tt.want.reason) {
					t.Errorf("reasons %q lack %q", joined, tt.want.reason)
				}
				got.reason = tt.want.reason
			} else if len(p.reasons) != 0 {
				t.Errorf("unexpected change: %v", p.reasons)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
			if parsed := parseCerts(p.data[CABundleKey]); !parsed[0].Equal(p.ca) {
				t.Error("the current CA is not first in the bundle")
			}
		})
	}
}

// TestDecideCARotationSequence walks a CA rotation through its stages: new CA published with the
// old one, serving certificate switched once trusted, old CA kept until it expires.
func TestDecideCARotationSequence(t *testing.T) {
	o := planOptions()
	data, first := initial(t, &o)
	caDue := first.ca.NotAfter.Add(-o.CARenewBefore)

	// Keep the serving certificate fresh up to the CA's due time, as Start would.
	p, err := decide(&o, data, caDue.Add(-5*day), never)
	if err != nil {
		t.Fatal(err)
	}
	data = p.data
	servingBefore := p.serving

	p, err = decide(&o, data, caDue, never)
	if err != nil {
		t.Fatal(err)
	}
	newCA := p.ca
	if !p.pending || !p.serving.Equal(servingBefore) || len(parseCerts(p.data[CABundleKey])) != 2 {
		t.Fatalf("stage 1: pending %v, serving kept %v, bundle %d", p.pending, p.serving.Equal(servingBefore), len(parseCerts(p.data[CABundleKey])))
	}
	data = p.data

	// Not trusted yet: nothing changes however often it is asked.
	p, err = decide(&o, data, caDue.Add(time.Minute), never)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.reasons) != 0 || !p.pending {
		t.Fatalf("stage 1 repeated: reasons %v pending %v", p.reasons, p.pending)
	}

	// Trusted: the serving certificate moves to the new CA; trust is asked about the new CA.
	var asked *x509.Certificate
	p, err = decide(&o, data, caDue.Add(2*time.Minute), func(c *x509.Certificate) bool { asked = c; return true })
	if err != nil {
		t.Fatal(err)
	}
	if asked == nil || !asked.Equal(newCA) {
		t.Error("trust was not asked about the new CA")
	}
	if p.pending || !signedBy(p.serving, newCA) || !strings.Contains(strings.Join(p.reasons, ";"), "switching") {
		t.Fatalf("stage 2: pending %v, signed by new CA %v, reasons %v", p.pending, signedBy(p.serving, newCA), p.reasons)
	}
	if got := parseCerts(p.data[CABundleKey]); len(got) != 2 || !got[0].Equal(newCA) || !got[1].Equal(first.ca) {
		t.Fatal("stage 2: the bundle must still hold the new CA first and the old CA")
	}
	data = p.data

	// The old CA leaves the bundle when it expires, not before.
	p, err = decide(&o, data, first.ca.NotAfter.Add(-time.Nanosecond), never)
	if err != nil {
		t.Fatal(err)
	}
	if len(parseCerts(p.data[CABundleKey])) != 2 {
		t.Error("old CA dropped before it expired")
	}
	p, err = decide(&o, p.data, first.ca.NotAfter, never)
	if err != nil {
		t.Fatal(err)
	}
	if got := parseCerts(p.data[CABundleKey]); len(got) != 1 || !got[0].Equal(newCA) {
		t.Errorf("at the old CA's end the bundle holds %d CAs, want the new one alone", len(got))
	}
}

func TestDecideRepairs(t *testing.T) {
	o := planOptions()
	data, first := initial(t, &o)
	now := t0.Add(day)
	tests := []struct {
		name       string
		modify     func(map[string][]byte)
		opts       func(*Options)
		reason     string
		keepCA     bool
		newServing bool
		pending    bool
	}{
		{name: "garbage serving certificate", modify: func(d map[string][]byte) { d[CertKey] = []byte("junk") },
			reason: "serving certificate unusable", keepCA: true, newServing: true},
		{name: "serving key of another pair", modify: func(d map[string][]byte) { d[KeyKey] = d[CAKeyKey] },
			reason: "serving certificate unusable", keepCA: true, newServing: true},
		{name: "service renamed", opts: func(o *Options) { o.ServiceName = "renamed" },
			reason: "names changed", keepCA: true, newServing: true},
		{name: "extra IP added", opts: func(o *Options) { o.ExtraIPs = append(o.ExtraIPs, net.ParseIP("10.0.0.1")) },
			reason: "names changed", keepCA: true, newServing: true},
		// The CA key is lost but its certificate and the serving pair are fine: a new CA is
		// staged like a rotation, the old one stays trusted.
		{name: "CA key lost", modify: func(d map[string][]byte) { delete(d, CAKeyKey) },
			reason: "no usable CA", pending: true},
		{name: "bundle emptied", modify: func(d map[string][]byte) { delete(d, CABundleKey) },
			reason: "signed by no CA of the bundle", newServing: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := maps.Clone(data)
			d["unrelated"] = []byte("kept")
			if tt.modify != nil {
				tt.modify(d)
			}
			oo := o
			if tt.opts != nil {
				tt.opts(&oo)
			}
			p, err := decide(&oo, d, now, never)
			if err != nil {
				t.Fatal(err)
			}
			if joined := strings.Join(p.reasons, "; "); !strings.Contains(joined, tt.reason) {
				t.Errorf("reasons %q lack %q", joined, tt.reason)
			}
			if got := p.ca.Equal(first.ca); got != tt.keepCA {
				t.Errorf("CA kept %v, want %v", got, tt.keepCA)
			}
			if got := !p.serving.Equal(first.serving); got != tt.newServing {
				t.Errorf("serving reissued %v, want %v", got, tt.newServing)
			}
			if p.pending != tt.pending {
				t.Errorf("pending %v, want %v", p.pending, tt.pending)
			}
			if string(p.data["unrelated"]) != "kept" {
				t.Error("an unrelated key was dropped")
			}
			if _, err := parseKeyPair(p.data[CertKey], p.data[KeyKey]); err != nil {
				t.Errorf("result does not load: %v", err)
			}
			if !sameNames(p.serving, oo.dnsNames(), oo.ExtraIPs) && tt.newServing {
				t.Error("reissued certificate has the wrong names")
			}
		})
	}
}

// TestTrustDelay checks the switch waits TrustDelay from the first pass that found every
// configuration already carrying the bundle, and restarts when one had to be corrected.
func TestTrustDelay(t *testing.T) {
	o := validOptions()
	clk := testingclock.NewFakeClock(t0)
	o.Clock = clk
	r, err := New(fake.NewClientBuilder().Build(), o)
	if err != nil {
		t.Fatal(err)
	}
	ca := mustCA(t, t0, 100*day).cert
	other := mustCA(t, t0, 100*day).cert

	r.observeTrust(ca, false) // this pass injected: the API servers may not have it yet
	if r.trusted(ca) {
		t.Fatal("trusted right after injection")
	}
	r.observeTrust(ca, true)
	clk.Step(r.o.TrustDelay - time.Nanosecond)
	r.observeTrust(ca, true) // later passes do not move the start
	if r.trusted(ca) {
		t.Fatal("trusted a nanosecond before TrustDelay")
	}
	clk.Step(time.Nanosecond)
	if !r.trusted(ca) {
		t.Fatal("not trusted after TrustDelay")
	}
	if r.trusted(other) {
		t.Fatal("trust carried over to another CA")
	}
	r.observeTrust(ca, false) // someone emptied a caBundle and it was re-injected
	clk.Step(time.Hour)
	if r.trusted(ca) {
		t.Fatal("trust survived a correction")
	}
}
