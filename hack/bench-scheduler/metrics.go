package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// fetch saves one of a scheduler's endpoints (metrics, pprof) to a file.
func fetch(port, path, file string) error {
	resp, err := get(port, path, time.Minute)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close() // the copy's error is the one to report
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return f.Close()
}

func get(port, path string, timeout time.Duration) (*http.Response, error) {
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec G402 -- loopback, self-signed
	return client.Get("https://127.0.0.1:" + port + path)
}

func scrape(port string) (map[string]*dto.MetricFamily, error) {
	resp, err := get(port, "/metrics", 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// samples counts the observations of the histogram series matching the labels.
func samples(fam *dto.MetricFamily, match map[string]string) uint64 {
	var n uint64
	for _, m := range fam.GetMetric() {
		if m.Histogram != nil && matches(m, match) {
			n += m.Histogram.GetSampleCount()
		}
	}
	return n
}

// attempts sums scheduler_schedule_attempts_total of one profile by result.
func attempts(fam *dto.MetricFamily, profile string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range fam.GetMetric() {
		if m.Counter == nil || !matches(m, map[string]string{"profile": profile}) {
			continue
		}
		for _, l := range m.Label {
			if l.GetName() == "result" {
				out[l.GetValue()] += m.Counter.GetValue()
			}
		}
	}
	return out
}

func matches(m *dto.Metric, match map[string]string) bool {
	labels := map[string]string{}
	for _, l := range m.Label {
		labels[l.GetName()] = l.GetValue()
	}
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// quantile estimates a quantile of the histogram series matching the labels, summed, by linear
// interpolation inside the bucket.
func quantile(fam *dto.MetricFamily, q float64, match map[string]string) float64 {
	if fam == nil {
		return math.NaN()
	}
	counts := map[float64]float64{}
	total := 0.0
	for _, m := range fam.Metric {
		if !matches(m, match) || m.Histogram == nil {
			continue
		}
		for _, b := range m.Histogram.Bucket {
			counts[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
		total += float64(m.Histogram.GetSampleCount())
	}
	if total == 0 {
		return math.NaN()
	}
	bounds := make([]float64, 0, len(counts))
	for b := range counts {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, b := range bounds {
		if counts[b] >= rank {
			if math.IsInf(b, 1) {
				return prevBound
			}
			return prevBound + (b-prevBound)*(rank-prevCount)/(counts[b]-prevCount)
		}
		prevBound, prevCount = b, counts[b]
	}
	return prevBound
}
