package model

import "time"

// PeriodEnd is the end of the period that contains t (the start of the next one), in UTC.
func PeriodEnd(t time.Time, p Period) (time.Time, error) {
	start, err := PeriodStart(t, p)
	if err != nil {
		return time.Time{}, err
	}
	switch p {
	case PeriodDay:
		return start.AddDate(0, 0, 1), nil
	case PeriodWeek:
		return start.AddDate(0, 0, 7), nil
	}
	return start.AddDate(0, 1, 0), nil
}
