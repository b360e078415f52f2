package operator

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestParseConfigMapRef(t *testing.T) {
	for _, tc := range []struct {
		ref     string
		want    types.NamespacedName
		wantErr string
	}{
		{ref: DefaultCatalogConfigMap, want: types.NamespacedName{Namespace: "kcloud-system", Name: "kcloud-catalog"}},
		{ref: "team-a/prices.v2", want: types.NamespacedName{Namespace: "team-a", Name: "prices.v2"}},
		{ref: "kcloud-catalog", wantErr: "not namespace/name"},
		{ref: "/kcloud-catalog", wantErr: "not namespace/name"},
		{ref: "a/b/c", wantErr: "not namespace/name"},
		{ref: "Team_A/catalog", wantErr: "namespace of"},
		{ref: "kcloud-system/" + strings.Repeat("x", 250), wantErr: "with -price-source appended"},
	} {
		got, err := ParseConfigMapRef(tc.ref)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ParseConfigMapRef(%q) = %v, %v; want an error containing %q", tc.ref, got, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("ParseConfigMapRef(%q) = %v, %v; want %v", tc.ref, got, err, tc.want)
		}
	}
}
