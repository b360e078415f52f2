package simulator

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"kcloud.io/optimizer/pkg/traces"
)

// DLRMWorkloads reads the Alibaba DLRM inference instance trace and returns one workload per app
// with GPU instances: its demand at each step is the most GPUs its instances hold at any moment of
// the step (so capacity that covers the demand covers the whole step). Instances are read by
// traces.ReadPods (an empty creation time is before the window, an empty deletion time after it);
// their app comes from the app_name column. CPU-only instances (the trace's CN role) are left out.
// Workloads come in the order of their first instance in the file.
func DLRMWorkloads(path string, step time.Duration) ([]AutoscaleWorkload, error) {
	if step <= 0 {
		return nil, fmt.Errorf("step must be positive, got %s", step)
	}
	pods, err := traces.ReadPods(path)
	if err != nil {
		return nil, err
	}
	apps, err := readColumn(path, "instance_sn", "app_name")
	if err != nil {
		return nil, err
	}
	type event struct {
		at   int64
		gpus int
	}
	var end int64
	for _, p := range pods {
		end = max(end, p.Created, p.Deleted)
	}
	events := map[string][]event{}
	var order []string
	for _, p := range pods {
		if p.NumGPU == 0 {
			continue
		}
		app, ok := apps[p.Name]
		if !ok {
			return nil, fmt.Errorf("%s: instance %s has no app_name", path, p.Name)
		}
		start, stop := p.Created, p.Deleted
		if start == traces.NoTime {
			start = 0
		}
		if stop == traces.NoTime {
			stop = end + 1 // still running when the trace ends
		}
		if stop <= start {
			continue
		}
		if _, seen := events[app]; !seen {
			order = append(order, app)
		}
		events[app] = append(events[app], event{start, p.NumGPU}, event{stop, -p.NumGPU})
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%s: no GPU instances", path)
	}
	sec := int64(step / time.Second)
	if sec <= 0 || step%time.Second != 0 {
		return nil, fmt.Errorf("step must be a whole number of seconds, got %s", step)
	}
	steps := int(end/sec) + 1
	out := make([]AutoscaleWorkload, 0, len(order))
	for _, app := range order {
		ev := events[app]
		// Departures before arrivals at the same instant, so a replacement is no momentary peak.
		slices.SortFunc(ev, func(a, b event) int {
			if a.at != b.at {
				return int(a.at - b.at)
			}
			return a.gpus - b.gpus
		})
		demand := make([]float64, steps)
		cur, k := 0, 0
		for i := range demand {
			lo, hi := int64(i)*sec, int64(i+1)*sec
			for k < len(ev) && ev[k].at <= lo {
				cur += ev[k].gpus
				k++
			}
			peak := cur
			for k < len(ev) && ev[k].at < hi {
				cur += ev[k].gpus
				peak = max(peak, cur)
				k++
			}
			demand[i] = float64(peak)
		}
		out = append(out, AutoscaleWorkload{Name: app, Demand: demand})
	}
	return out, nil
}

// readColumn maps each value of the key column of a CSV file to the value column of its row.
func readColumn(path, key, value string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read only: closing has nothing to report
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: reading header: %w", path, err)
	}
	ki, vi := slices.Index(header, key), slices.Index(header, value)
	if ki < 0 || vi < 0 {
		return nil, fmt.Errorf("%s: want columns %s and %s (header: %s)", path, key, value, strings.Join(header, ","))
	}
	out := map[string]string{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if ki < len(rec) && vi < len(rec) {
			out[strings.TrimSpace(rec[ki])] = strings.TrimSpace(rec[vi])
		}
	}
}
