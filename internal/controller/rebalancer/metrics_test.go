package rebalancer

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
)

// kcloud_rebalance_last_run_moves has every outcome of the last run, zeros included, so that an
// alert can compare Blocked with Evicted.
func TestObserveRunLastRunMoves(t *testing.T) {
	runs := []struct {
		name string
		rep  Report
		want map[string]float64
	}{
		{name: "blocked and evicted", rep: Report{Deferred: 2, Moves: []Move{
			{Outcome: kcloudv1alpha1.MoveBlocked}, {Outcome: kcloudv1alpha1.MoveBlocked}, {Outcome: kcloudv1alpha1.MoveEvicted},
		}}, want: map[string]float64{"Evicted": 1, "Blocked": 2, "Failed": 0, "Planned": 0, "Deferred": 2}},
		// The next run replaces the figures: nothing of the blocked run lingers.
		{name: "dry run", rep: Report{DryRun: true, Moves: []Move{{Outcome: kcloudv1alpha1.MovePlanned}}},
			want: map[string]float64{"Evicted": 0, "Blocked": 0, "Failed": 0, "Planned": 1, "Deferred": 0}},
	}
	for _, r := range runs {
		observeRun(r.rep)
		if n := testutil.CollectAndCount(lastRunMoves); n != len(r.want) {
			t.Errorf("%s: %d series, want %d", r.name, n, len(r.want))
		}
		for outcome, want := range r.want {
			if got := testutil.ToFloat64(lastRunMoves.WithLabelValues(outcome)); got != want {
				t.Errorf("%s: %s moves %v, want %v", r.name, outcome, got, want)
			}
		}
	}
}
