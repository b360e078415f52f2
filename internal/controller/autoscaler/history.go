package autoscaler

import (
	"math"
	"time"

	"kcloud.io/optimizer/internal/telemetry"
	"kcloud.io/optimizer/pkg/model"
)

// history is one metric's total demand at equally spaced steps, newest last, at most size points
// (older ones fall off the front). Step i of the clock is slot i = unix nanoseconds / step; a slot
// without an observation holds NaN, as model.DecideReplicas expects.
type history struct {
	size     int
	points   []float64
	lastSlot int64 // slot of points[len(points)-1]
	// query is the PromQL the history was recorded from (a changed query starts over).
	query string
	// params are the Holt-Winters factors fitted at slot fittedAt, reused until refit.
	params   *model.HoltWintersParams
	fittedAt int64
}

func newHistory(size int, query string) *history {
	return &history{size: max(size, 1), query: query}
}

// set records v at slot: a newer slot appends (NaN for the slots skipped), the newest overwrites, an
// older one still held overwrites its point, an older one no longer held is dropped.
func (h *history) set(slot int64, v float64) {
	if len(h.points) == 0 {
		h.points, h.lastSlot = append(h.points, v), slot
		return
	}
	switch {
	case slot > h.lastSlot:
		gap := slot - h.lastSlot - 1
		if gap >= int64(h.size) {
			h.points = h.points[:0]
			gap = 0
		}
		for range gap {
			h.points = append(h.points, math.NaN())
		}
		h.points, h.lastSlot = append(h.points, v), slot
		if over := len(h.points) - h.size; over > 0 {
			h.points = append(h.points[:0], h.points[over:]...)
		}
	case h.lastSlot-slot < int64(len(h.points)):
		h.points[len(h.points)-1-int(h.lastSlot-slot)] = v
	}
}

// seed fills the history from samples of a range query; samples of the same slot keep the latest.
func (h *history) seed(samples []telemetry.Sample, step time.Duration) {
	for _, s := range samples {
		if !math.IsNaN(s.Value) && !math.IsInf(s.Value, 0) {
			h.set(slotOf(s.At, step), s.Value)
		}
	}
}

// series is the history, oldest first (shared: do not modify).
func (h *history) series() []float64 { return h.points }

// known counts the points that are not NaN.
func (h *history) known() int {
	n := 0
	for _, v := range h.points {
		if !math.IsNaN(v) {
			n++
		}
	}
	return n
}

// slotOf is the step a time falls in.
func slotOf(t time.Time, step time.Duration) int64 {
	ns := t.UnixNano()
	s := ns / int64(step)
	if ns < 0 && ns%int64(step) != 0 {
		s--
	}
	return s
}

// slotTime is the start of a slot.
func slotTime(slot int64, step time.Duration) time.Time {
	return time.Unix(0, slot*int64(step)).UTC()
}
