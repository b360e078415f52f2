package accounting

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kcloud.io/optimizer/pkg/model"
)

// ResumeLedger rebuilds a policy's ledger from its status and moves it to the period containing
// now; it returns the ledger and the instant usage must be counted from.
func ResumeLedger(start, until *metav1.Time, amount float64, now time.Time, period model.Period) (model.Ledger, time.Time, error) {
	l := model.Ledger{Amount: amount}
	if start != nil && until != nil {
		l.PeriodStart, l.AccountedUntil = start.Time, until.Time
	}
	return l.Advance(now, period)
}

// ValueOr0 reads an optional figure for a message.
func ValueOr0(v *float64) float64 {
	if v == nil {
		return 0
	}
	return *v
}
