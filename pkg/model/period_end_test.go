package model

import (
	"testing"
	"time"
)

func TestPeriodEnd(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		now  string
		p    Period
		want string
	}{
		{"2026-11-26T13:45:00Z", PeriodDay, "2026-11-27T00:00:00Z"},
		{"2026-11-26T00:00:00Z", PeriodDay, "2026-11-27T00:00:00Z"},
		{"2026-11-26T13:45:00Z", PeriodWeek, "2026-11-30T00:00:00Z"}, // a Thursday; weeks start on Monday
		{"2026-11-30T00:00:00Z", PeriodWeek, "2026-12-07T00:00:00Z"},
		{"2026-12-31T23:59:59Z", PeriodMonth, "2027-01-01T00:00:00Z"},
		{"2026-02-10T09:00:00+09:00", PeriodMonth, "2026-03-01T00:00:00Z"},
	} {
		got, err := PeriodEnd(at(tc.now), tc.p)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.now, tc.p, err)
		}
		if !got.Equal(at(tc.want)) {
			t.Errorf("PeriodEnd(%s, %s) = %s, want %s", tc.now, tc.p, got, tc.want)
		}
	}
	if _, err := PeriodEnd(time.Now(), "year"); err == nil {
		t.Error("PeriodEnd(year): no error")
	}
}
