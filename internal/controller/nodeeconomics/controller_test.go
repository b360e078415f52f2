package nodeeconomics

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTransitions(t *testing.T) {
	known := state{}
	unpriced := state{unpriced: `accelerator model "B999" is not in the catalog`}
	both := state{unpriced: unpriced.unpriced, unpowered: "no TDP"}
	tests := []struct {
		name   string
		before *state
		now    state
		want   []string // reasons
	}{
		{"first seen, all known: no event", nil, known, nil},
		{"first seen unpriced", nil, unpriced, []string{ReasonNodeUnpriced}},
		{"still unpriced for the same reason: no event", &unpriced, unpriced, nil},
		{"unpriced and unpowered", &known, both, []string{ReasonNodeUnpriced, ReasonNodeUnpowered}},
		{"priced again", &unpriced, known, []string{ReasonNodePriced}},
		{"an annotation that does not parse", &known, state{err: "node x: annotation kcloud.io/price-per-hour: invalid value"}, []string{ReasonNodeUnpriced}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range transitions(tc.before, tc.now) {
				got = append(got, e.Reason)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("event reasons (-want +got):\n%s", diff)
			}
		})
	}
}
