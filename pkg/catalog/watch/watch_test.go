package watch

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kcloud.io/optimizer/pkg/catalog"
)

func TestParseRef(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    Ref
		wantErr bool
	}{
		{"", Ref{}, false},
		{"kcloud-system/kcloud-catalog", Ref{"kcloud-system", "kcloud-catalog"}, false},
		{"kcloud-catalog", Ref{}, true},
		{"/kcloud-catalog", Ref{}, true},
		{"a/b/c", Ref{}, true},
	} {
		got, err := ParseRef(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseRef(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if got := (Ref{"ns", "kcloud-catalog"}).PriceSource(); got != (Ref{"ns", "kcloud-catalog-price-source"}) {
		t.Errorf("PriceSource = %v", got)
	}
}

// Apply returns the event to record and sets the metrics: Normal on a change, nothing when the data
// are the same, Warning with the error on a bad update (the last good catalog kept), nothing on a
// delete.
func TestApply(t *testing.T) {
	store := catalog.NewStore(nil)
	cm := func(prices string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "kcloud-catalog"}, Data: map[string]string{catalog.ConfigMapKeyPrices: prices}}
	}
	steps := []struct {
		name      string
		cm        *corev1.ConfigMap
		want      Event
		wantValid float64
		wantGen   float64
	}{
		{"good", cm("p4d.24xlarge,,,20\n"), Event{corev1.EventTypeNormal, ReasonApplied, "catalog ConfigMap ns/kcloud-catalog applied: catalog generation 2"}, 1, 2},
		{"same again", cm("p4d.24xlarge,,,20\n"), Event{}, 1, 2},
		{"bad", cm("p4d.24xlarge,,,x\n"), Event{corev1.EventTypeWarning, ReasonRejected,
			`catalog ConfigMap ns/kcloud-catalog: configmap key "prices.csv" line 1: usd_per_hour "x" is not a number; the last good prices stay in force`}, 0, 2},
		{"deleted", nil, Event{}, 1, 3},
	}
	for _, s := range steps {
		if got := Apply(store, KindCatalog, s.cm); got != s.want {
			t.Errorf("%s: event %+v, want %+v", s.name, got, s.want)
		}
		if v := testutil.ToFloat64(ConfigValid.WithLabelValues("catalog")); v != s.wantValid {
			t.Errorf("%s: kcloud_catalog_config_valid %g, want %g", s.name, v, s.wantValid)
		}
		if v := testutil.ToFloat64(Generation); v != s.wantGen {
			t.Errorf("%s: kcloud_catalog_generation %g, want %g", s.name, v, s.wantGen)
		}
	}
	e := Apply(store, KindPriceSource, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "kcloud-catalog-price-source"},
		Data: map[string]string{catalog.PriceSourceKey: "n1,1.5,opencost\n"}})
	if e.Type != corev1.EventTypeNormal || !strings.HasPrefix(e.Note, "price-source ConfigMap ns/kcloud-catalog-price-source applied") {
		t.Errorf("price source event %+v", e)
	}
}
