package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// daily is a day-shaped series: base + a sine with the given amplitude and period, plus slope per
// step, over n steps.
func daily(n, period int, base, amplitude, slope float64) []float64 {
	out := make([]float64, n)
	for t := range out {
		out[t] = base + slope*float64(t) + amplitude*math.Sin(2*math.Pi*float64(t)/float64(period))
	}
	return out
}

func withGaps(s []float64, every int) []float64 {
	out := append([]float64(nil), s...)
	for i := 3; i < len(out); i += every {
		out[i] = math.NaN()
	}
	return out
}

func TestForecastDetail(t *testing.T) {
	nan := math.NaN()
	const season = 24
	seasonal := daily(4*season, season, 100, 30, 0)
	trending := daily(4*season, season, 100, 30, 0.5)
	tests := []struct {
		name       string
		history    []float64
		season     int
		horizon    int
		wantMethod ForecastMethod
		want       []float64
		tolerance  float64
	}{
		{"seasonal series follows the season", seasonal, season, season, ForecastHoltWinters,
			daily(5*season, season, 100, 30, 0)[4*season:], 1},
		{"seasonal series with a trend", trending, season, 6, ForecastHoltWinters,
			daily(4*season+6, season, 100, 30, 0.5)[4*season:], 1},
		{"every seventh point missing", withGaps(seasonal, 7), season, 6, ForecastHoltWinters,
			daily(4*season+6, season, 100, 30, 0)[4*season:], 1.5},
		{"less than two seasons: line through the last window", daily(30, 1000, 10, 0, 2), season, 3, ForecastLinear,
			[]float64{70, 72, 74}, 1e-9},
		{"season of one step: line", []float64{1, 2, 3, 4}, 1, 2, ForecastLinear, []float64{5, 6}, 1e-9},
		{"line with a gap", []float64{1, 2, nan, 4}, 0, 1, ForecastLinear, []float64{5}, 1e-9},
		{"constant series", []float64{7, 7, nan, 7}, season, 3, ForecastConstant, []float64{7, 7, 7}, 0},
		{"constant with two seasons", daily(2*season, season, 5, 0, 0), season, 2, ForecastConstant, []float64{5, 5}, 0},
		{"one known point in the window holds it", append(daily(10, 1000, 1, 0, 1), nan, nan, nan, 20, nan, nan), 24, 2,
			ForecastConstant, []float64{20, 20}, 0},
		{"nothing known", []float64{nan, nan}, season, 3, ForecastNone, nil, 0},
		{"empty history", nil, season, 3, ForecastNone, nil, 0},
		{"no horizon", seasonal, season, 0, ForecastNone, nil, 0},
		{"first season mostly missing: line", append(withGaps(make([]float64, season), 1), seasonal[:season]...), season, 1,
			ForecastLinear, LinearForecast(append(withGaps(make([]float64, season), 1), seasonal[:season]...), LinearWindow(season), 1), 1e-9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ForecastDetail(tc.history, tc.season, tc.horizon)
			if got.Method != tc.wantMethod {
				t.Errorf("method = %s, want %s", got.Method, tc.wantMethod)
			}
			if diff := cmp.Diff(tc.want, got.Values, cmpopts.EquateApprox(0, tc.tolerance)); diff != "" {
				t.Errorf("forecast (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(got.Values, Forecast(tc.history, tc.season, tc.horizon)); diff != "" {
				t.Errorf("Forecast differs from ForecastDetail:\n%s", diff)
			}
		})
	}
}

// TestFitHoltWintersPrefersTheSeason checks that the fit beats a seasonless model on a noisy seasonal
// series: its in-sample error is close to the noise, far below the season's amplitude.
func TestFitHoltWintersPrefersTheSeason(t *testing.T) {
	const season = 288
	rng := rand.New(rand.NewPCG(1, 2))
	h := daily(2*season, season, 50, 20, 0)
	for i := range h {
		h[i] += rng.NormFloat64()
	}
	p, sse, n := FitHoltWinters(h, season)
	if n != season {
		t.Fatalf("error counted over %d points, want the second season's %d", n, season)
	}
	if r := rmse(sse, n); r > 2 {
		t.Errorf("one-step RMSE %.2f with %+v, want about the noise (1)", r, p)
	}
	if _, _, n := FitHoltWinters(h[:season], season); n != 0 {
		t.Errorf("fitted one season: n = %d", n)
	}
}

func TestHoltWintersForecastNeedsTwoSeasons(t *testing.T) {
	if got := HoltWintersForecast(daily(47, 24, 1, 1, 0), 24, 3, HoltWintersParams{Alpha: 0.5}); got != nil {
		t.Errorf("forecast from 47 points of a 24-step season: %v", got)
	}
}

// BenchmarkForecastTwoDays is the per-reconcile cost: two days of 5-minute points, a 15-minute
// horizon, fit included.
func BenchmarkForecastTwoDays(b *testing.B) {
	const season = 288
	rng := rand.New(rand.NewPCG(3, 4))
	h := daily(2*season, season, 40, 15, 0.01)
	for i := range h {
		h[i] = math.Round(h[i] + 2*rng.NormFloat64())
	}
	for b.Loop() {
		Forecast(h, season, 4)
	}
}

// TestForecastWithParamsReusesTheFit: the fitted factors reproduce the fitted forecast.
func TestForecastWithParamsReusesTheFit(t *testing.T) {
	h := withGaps(daily(3*48, 48, 20, 5, 0.01), 11)
	fitted := ForecastDetail(h, 48, 5)
	reused := ForecastWithParams(h, 48, 5, fitted.Params)
	if diff := cmp.Diff(fitted, reused); diff != "" {
		t.Errorf("reused factors (-fitted +reused):\n%s", diff)
	}
	if other := ForecastWithParams(h, 48, 5, HoltWintersParams{Alpha: 1}); cmp.Equal(other.Values, fitted.Values) {
		t.Errorf("other factors gave the same forecast %v", other.Values)
	}
}
