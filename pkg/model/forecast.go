package model

import "math"

// ForecastMethod names the model a forecast came from.
type ForecastMethod string

const (
	// ForecastHoltWinters is additive Holt-Winters (level, trend, season), used once the history holds
	// two full seasons.
	ForecastHoltWinters ForecastMethod = "holt-winters"
	// ForecastLinear is an ordinary least-squares line over the recent window, the fallback with less
	// than two seasons of history.
	ForecastLinear ForecastMethod = "linear"
	// ForecastConstant repeats the value of a history whose known points are all equal, or its only
	// known point.
	ForecastConstant ForecastMethod = "constant"
	// ForecastNone: the history has no known point, so there is nothing to forecast.
	ForecastNone ForecastMethod = "none"
)

// HoltWintersParams are the smoothing factors of additive Holt-Winters, each in [0, 1]: Alpha for the
// level, Beta for the trend, Gamma for the season.
type HoltWintersParams struct {
	Alpha, Beta, Gamma float64
}

// ForecastResult is a forecast with what produced it.
type ForecastResult struct {
	Method ForecastMethod
	// Values are the forecasts of the horizon steps after the last history point, nearest first.
	Values []float64
	// Params are the fitted factors (Holt-Winters only).
	Params HoltWintersParams
	// RMSE is the chosen model's one-step-ahead root-mean-square error on the history; NaN when the
	// method has no in-sample error (constant, none) or too few points to measure it.
	RMSE float64
}

// The grid FitHoltWinters searches: 6 x 3 x 4 = 72 passes over the history. Beta stays small because a
// trend fitted on two days and extrapolated is the usual way Holt-Winters overshoots; 0 lets the fit
// drop the trend altogether.
var (
	hwAlphas = []float64{0.05, 0.15, 0.3, 0.5, 0.7, 0.9}
	hwBetas  = []float64{0, 0.02, 0.1}
	hwGammas = []float64{0.05, 0.15, 0.3, 0.5}
)

// Forecast returns the forecast of the horizon steps after history (oldest first, one point per step;
// NaN marks a missing point). With at least two seasons of history it fits additive Holt-Winters with
// the given season length in steps (288 for a day of 5-minute steps); with less, or with a season
// shorter than 2 steps, it extends a least-squares line over the recent window (LinearWindow). A
// history whose known points are all equal forecasts that value; one with no known point forecasts
// nothing (nil).
func Forecast(history []float64, season, horizon int) []float64 {
	return ForecastDetail(history, season, horizon).Values
}

// ForecastDetail is Forecast with the method, the fitted factors and the in-sample error.
func ForecastDetail(history []float64, season, horizon int) ForecastResult {
	return forecast(history, season, horizon, nil)
}

// ForecastWithParams is ForecastDetail with Holt-Winters factors fitted earlier instead of a new fit:
// fitting is a grid of passes over the history and forecasting one pass, so a caller forecasting every
// minute may refit every hour and reuse the factors in between (RMSE is then the error of p).
func ForecastWithParams(history []float64, season, horizon int, p HoltWintersParams) ForecastResult {
	return forecast(history, season, horizon, &p)
}

func forecast(history []float64, season, horizon int, params *HoltWintersParams) ForecastResult {
	if horizon <= 0 {
		return ForecastResult{Method: ForecastNone, RMSE: math.NaN()}
	}
	first, last, known := math.NaN(), math.NaN(), 0
	constant := true
	for _, v := range history {
		if !finite(v) {
			continue
		}
		if known == 0 {
			first = v
		} else if v != first {
			constant = false
		}
		last = v
		known++
	}
	switch {
	case known == 0:
		return ForecastResult{Method: ForecastNone, RMSE: math.NaN()}
	case constant:
		return ForecastResult{Method: ForecastConstant, Values: repeat(first, horizon), RMSE: math.NaN()}
	}
	if canHoltWinters(history, season) {
		st := hwInit(history, season)
		var p HoltWintersParams
		if params != nil {
			p = *params
		} else {
			p, _, _ = fitFrom(history, season, st)
		}
		sse, n := hwRun(history, season, p, &st)
		return ForecastResult{
			Method: ForecastHoltWinters,
			Values: hwForecast(st, len(history), horizon),
			Params: p,
			RMSE:   rmse(sse, n),
		}
	}
	values, sse, n := linearForecast(history, LinearWindow(season), horizon)
	if values == nil {
		// Fewer than two known points in the window: hold the latest known value.
		return ForecastResult{Method: ForecastConstant, Values: repeat(last, horizon), RMSE: math.NaN()}
	}
	return ForecastResult{Method: ForecastLinear, Values: values, RMSE: rmse(sse, n)}
}

// LinearWindow is how many recent points the linear fallback fits: a twenty-fourth of the season
// (an hour when the season is a day), at least 3, so the line follows the current ramp rather than
// the day's mean.
func LinearWindow(season int) int {
	return max(3, season/24)
}

// LinearForecast extends the least-squares line through the known points of the last window points
// of history over horizon steps. It returns nil with fewer than two known points in the window.
func LinearForecast(history []float64, window, horizon int) []float64 {
	values, _, _ := linearForecast(history, window, horizon)
	return values
}

func linearForecast(history []float64, window, horizon int) (values []float64, sse float64, n int) {
	if horizon <= 0 || window < 2 {
		return nil, 0, 0
	}
	start := max(0, len(history)-window)
	var sx, sy, sxx, sxy float64
	for i := start; i < len(history); i++ {
		y := history[i]
		if !finite(y) {
			continue
		}
		x := float64(i - start)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
		n++
	}
	if n < 2 {
		return nil, 0, 0
	}
	fn := float64(n)
	den := fn*sxx - sx*sx
	slope := 0.0
	if den != 0 {
		slope = (fn*sxy - sx*sy) / den
	}
	intercept := (sy - slope*sx) / fn
	for i := start; i < len(history); i++ {
		if y := history[i]; finite(y) {
			e := y - (intercept + slope*float64(i-start))
			sse += e * e
		}
	}
	values = make([]float64, horizon)
	lastX := float64(len(history) - 1 - start)
	for h := range values {
		values[h] = intercept + slope*(lastX+float64(h+1))
	}
	return values, sse, n
}

// canHoltWinters reports whether history can initialise Holt-Winters: a season of at least 2 steps,
// two full seasons, and at least half of each of the first two seasons known.
func canHoltWinters(history []float64, season int) bool {
	if season < 2 || len(history) < 2*season {
		return false
	}
	for k := range 2 {
		known := 0
		for _, v := range history[k*season : (k+1)*season] {
			if finite(v) {
				known++
			}
		}
		if 2*known < season {
			return false
		}
	}
	return true
}

// hwState is the level, trend and seasonal components; season[i] belongs to the steps t with
// t mod m == i.
type hwState struct {
	level, trend float64
	season       []float64
}

// hwInit derives the initial components from the first two seasons (history must pass
// canHoltWinters):
//   - trend: the difference of the two seasons' means, divided by the season length;
//   - season[i]: the mean over both seasons of the point's deviation from its season's trend line
//     (season mean + trend x distance from the season's middle), then centred to sum to zero, so
//     the level carries the mean;
//   - level: the first season's mean moved back to the step before the first point, so that the
//     first update starts from a one-step-ahead forecast like every later one.
//
// Missing points are left out of the means; a seasonal slot with no known point starts at 0.
func hwInit(history []float64, m int) hwState {
	var mean [2]float64
	for k := range 2 {
		sum, n := 0.0, 0
		for _, v := range history[k*m : (k+1)*m] {
			if finite(v) {
				sum += v
				n++
			}
		}
		mean[k] = sum / float64(n)
	}
	trend := (mean[1] - mean[0]) / float64(m)
	mid := float64(m-1) / 2
	s := hwState{trend: trend, season: make([]float64, m)}
	total := 0.0
	for i := range m {
		sum, n := 0.0, 0
		for k := range 2 {
			if v := history[k*m+i]; finite(v) {
				sum += v - (mean[k] + trend*(float64(i)-mid))
				n++
			}
		}
		if n > 0 {
			s.season[i] = sum / float64(n)
		}
		total += s.season[i]
	}
	for i := range s.season {
		s.season[i] -= total / float64(m)
	}
	s.level = mean[0] - trend*(mid+1)
	return s
}

// hwRun runs the additive Holt-Winters recursions over history from the initial state st (which it
// updates), and returns the one-step-ahead squared errors summed over the steps after the first
// season (the first season's errors mostly measure the initialisation) and how many there were. A
// missing point advances the level by the trend and updates nothing else.
func hwRun(history []float64, m int, p HoltWintersParams, st *hwState) (sse float64, n int) {
	level, trend, season := st.level, st.trend, st.season
	j := 0 // t mod m
	for t, x := range history {
		s := season[j]
		if !finite(x) {
			level += trend
		} else {
			if t >= m {
				e := x - (level + trend + s)
				sse += e * e
				n++
			}
			prev := level
			level = p.Alpha*(x-s) + (1-p.Alpha)*(level+trend)
			trend = p.Beta*(level-prev) + (1-p.Beta)*trend
			season[j] = p.Gamma*(x-level) + (1-p.Gamma)*s
		}
		if j++; j == m {
			j = 0
		}
	}
	st.level, st.trend = level, trend
	return sse, n
}

// FitHoltWinters picks the smoothing factors from a small grid (Alpha 0.05-0.9, Beta 0-0.1, Gamma
// 0.05-0.5) that minimise the one-step-ahead squared error over history after its first season; it
// returns them with that error and the number of points it covers. Ties go to the earlier grid
// point, so the result is deterministic. history must hold two seasons, at least half known in each
// (otherwise it returns the zero factors and n = 0).
func FitHoltWinters(history []float64, season int) (p HoltWintersParams, sse float64, n int) {
	if !canHoltWinters(history, season) {
		return HoltWintersParams{}, 0, 0
	}
	return fitFrom(history, season, hwInit(history, season))
}

// fitFrom is FitHoltWinters from the initial state init, which it leaves unchanged.
func fitFrom(history []float64, season int, init hwState) (p HoltWintersParams, sse float64, n int) {
	scratch := hwState{season: make([]float64, season)}
	best := math.Inf(1)
	for _, a := range hwAlphas {
		for _, b := range hwBetas {
			for _, g := range hwGammas {
				scratch.level, scratch.trend = init.level, init.trend
				copy(scratch.season, init.season)
				q := HoltWintersParams{Alpha: a, Beta: b, Gamma: g}
				e, k := hwRun(history, season, q, &scratch)
				if e < best {
					best, p, sse, n = e, q, e, k
				}
			}
		}
	}
	return p, sse, n
}

// HoltWintersForecast runs additive Holt-Winters with factors p over history and returns the
// forecasts level + h x trend + season of the horizon steps after it. history must hold two
// seasons, at least half known in each (otherwise it returns nil).
func HoltWintersForecast(history []float64, season, horizon int, p HoltWintersParams) []float64 {
	if horizon <= 0 || !canHoltWinters(history, season) {
		return nil
	}
	st := hwInit(history, season)
	hwRun(history, season, p, &st)
	return hwForecast(st, len(history), horizon)
}

// hwForecast is level + h x trend + the season of each of the horizon steps after n points.
func hwForecast(st hwState, n, horizon int) []float64 {
	out := make([]float64, horizon)
	for h := range out {
		out[h] = st.level + float64(h+1)*st.trend + st.season[(n+h)%len(st.season)]
	}
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func rmse(sse float64, n int) float64 {
	if n == 0 {
		return math.NaN()
	}
	return math.Sqrt(sse / float64(n))
}
