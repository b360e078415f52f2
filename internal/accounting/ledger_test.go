package accounting

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kcloud.io/optimizer/pkg/model"
)

func TestResumeLedger(t *testing.T) {
	at := func(day, hour int) time.Time { return time.Date(2026, 12, day, hour, 0, 0, 0, time.UTC) }
	mt := func(tm time.Time) *metav1.Time { return &metav1.Time{Time: tm} }
	month := at(1, 0)
	now := at(2, 12)
	tests := []struct {
		name         string
		start, until *metav1.Time
		amount       float64
		now          time.Time
		want         model.Ledger
		wantFrom     time.Time
	}{
		{"no status yet: the period's start, nothing counted", nil, nil, 7, now,
			model.Ledger{PeriodStart: month, AccountedUntil: month}, month},
		{"same period: resumes where it stopped", mt(month), mt(at(2, 10)), 7, now,
			model.Ledger{PeriodStart: month, AccountedUntil: at(2, 10), Amount: 7}, at(2, 10)},
		{"an earlier period: starts over", mt(at(1, 0).AddDate(0, -1, 0)), mt(at(1, 0).Add(-time.Hour)), 7, now,
			model.Ledger{PeriodStart: month, AccountedUntil: month}, month},
		{"a clock that went back un-counts nothing", mt(month), mt(at(2, 14)), 7, now,
			model.Ledger{PeriodStart: month, AccountedUntil: at(2, 14), Amount: 7}, now},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, from, err := ResumeLedger(tc.start, tc.until, tc.amount, tc.now, model.PeriodMonth)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ledger (-want +got):\n%s", diff)
			}
			if !from.Equal(tc.wantFrom) {
				t.Errorf("from %s, want %s", from, tc.wantFrom)
			}
		})
	}
	if _, _, err := ResumeLedger(nil, nil, 0, now, model.Period("fortnight")); err == nil {
		t.Error("an unknown period: no error")
	}
}
