package model

import (
	"fmt"
	"time"
)

// Period names an accounting window: "day", "week" (starting Monday) or "month", all in UTC.
type Period string

// Periods an accounting window can have.
const (
	PeriodDay   Period = "day"
	PeriodWeek  Period = "week"
	PeriodMonth Period = "month"
)

// PeriodStart is the start of the period that contains t: 00:00 UTC of the day, of the Monday of
// the week, or of the first day of the month.
func PeriodStart(t time.Time, p Period) (time.Time, error) {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch p {
	case PeriodDay:
		return day, nil
	case PeriodWeek:
		back := (int(day.Weekday()) + 6) % 7 // days since Monday
		return day.AddDate(0, 0, -back), nil
	case PeriodMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC), nil
	}
	return time.Time{}, fmt.Errorf("unknown period %q: want day, week or month", p)
}

// Ledger is money or energy accumulated over a period, counted up to AccountedUntil. It lives in a
// policy's status, so an operator that restarts continues from AccountedUntil: nothing is counted
// twice, and the time the operator was down is counted from the pods' running intervals.
type Ledger struct {
	PeriodStart    time.Time
	AccountedUntil time.Time
	Amount         float64
}

// Advance returns the ledger moved to the period that contains now, and the instant from which
// usage must be added. A ledger from an earlier period (or a new one) starts over at the current
// period's start with nothing counted.
func (l Ledger) Advance(now time.Time, p Period) (Ledger, time.Time, error) {
	start, err := PeriodStart(now, p)
	if err != nil {
		return l, time.Time{}, err
	}
	if l.PeriodStart.IsZero() || l.PeriodStart.Before(start) || l.AccountedUntil.Before(start) {
		return Ledger{PeriodStart: start, AccountedUntil: start}, start, nil
	}
	if l.AccountedUntil.After(now) {
		// A clock that went back must not un-count anything already counted.
		return l, now, nil
	}
	return l, l.AccountedUntil, nil
}

// Interval is when something ran: End is zero while it still runs.
type Interval struct {
	Start, End time.Time
}

// HoursWithin is how many hours of the interval fall within [from, to).
func (iv Interval) HoursWithin(from, to time.Time) float64 {
	s, e := iv.Start, iv.End
	if e.IsZero() || e.After(to) {
		e = to
	}
	if s.Before(from) {
		s = from
	}
	if !e.After(s) {
		return 0
	}
	return e.Sub(s).Hours()
}

// ThresholdsReached returns the highest alert threshold (in percent of budget) that usage has
// reached, or 0 when none has.
func ThresholdsReached(used, budget float64, thresholds []int32) int32 {
	if budget <= 0 {
		return 0
	}
	pct := used / budget * 100
	var top int32
	for _, t := range thresholds {
		if pct >= float64(t) && t > top {
			top = t
		}
	}
	return top
}
