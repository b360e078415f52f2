package cluster

import "testing"

func TestCombineSources(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"catalog", "catalog"}, "catalog"},
		{[]string{"dcgm"}, "dcgm"},
		{[]string{"dcgm", "catalog"}, SourceMixed},
	}
	for _, tc := range tests {
		if got := CombineSources(tc.in); got != tc.want {
			t.Errorf("CombineSources(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
