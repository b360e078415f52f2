package main

import (
	"bytes"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestSimulateCSV(t *testing.T) {
	report := filepath.Join(t.TempDir(), "r.html")
	out, err := run(t, "simulate", "--policies", "fgd,kcloud", "--seeds", "1", "--format", "csv", "--report", report)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][0] != "policy" || rows[1][0] != "fgd" || rows[2][0] != "kcloud" || rows[2][1] != "inflate" {
		t.Errorf("csv: %v", rows)
	}
	page, err := os.ReadFile(report)
	if err != nil || !strings.Contains(string(page), "<svg") {
		t.Errorf("report: %v", err)
	}
}

func TestSimulateBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "pods.csv")
	if err := os.WriteFile(bad, []byte("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1,1,0,0\np1,1,1,x,0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"simulate", "--policies", "fgd,magic"}, `unknown policy "magic"; known policies: random, least-allocated`},
		{[]string{"simulate", "--pods", bad}, bad + ":3: column num_gpu"},
		{[]string{"simulate", "--format", "xml"}, `--format "xml": known formats are table, csv, json`},
		{[]string{"simulate", "--mode", "fast"}, `unknown mode "fast"`},
		{[]string{"simulate", "--fleet-scale", "0"}, "--fleet-scale must be positive"},
		{[]string{"simulate", "--nodes", "/nonexistent.csv"}, "reading nodes"},
	} {
		_, err := run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestSimulateReplayTable(t *testing.T) {
	out, err := run(t, "simulate", "--mode", "replay", "--policies", "kcloud", "--seeds", "1", "--fleet-scale", "0.5")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mode replay", "x0.5", "node-hours", "kcloud"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestSimulateDaemonsKeepFigures: with the production DaemonSets on every openb node, kcloud's GPU
// allocation, cost and power on the default trace stay within 0.5 points and 1% of the bare run:
// the daemons take CPU and memory, not GPUs, and wake no node.
func TestSimulateDaemonsKeepFigures(t *testing.T) {
	figures := func(extra ...string) (alloc, cost, power float64) {
		out, err := run(t, append([]string{"simulate", "--policies", "kcloud", "--seeds", "2", "--format", "csv"}, extra...)...)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(rows) != 2 {
			t.Fatalf("csv %v: %v", rows, err)
		}
		col := map[string]int{}
		for i, h := range rows[0] {
			col[h] = i
		}
		num := func(name string) float64 {
			v, err := strconv.ParseFloat(rows[1][col[name]], 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return v
		}
		return num("gpu_alloc_pct_100"), num("cost_usd_per_h_mean"), num("power_kw_mean")
	}
	bareAlloc, bareCost, barePower := figures()
	alloc, cost, power := figures("--daemons")
	t.Logf("bare: alloc %.2f%% cost %.2f USD/h power %.2f kW; with DaemonSets: %.2f%% %.2f USD/h %.2f kW", bareAlloc, bareCost, barePower, alloc, cost, power)
	if math.Abs(alloc-bareAlloc) > 0.5 {
		t.Errorf("GPU allocation %.2f%% with DaemonSets, %.2f%% bare: more than 0.5 points apart", alloc, bareAlloc)
	}
	if math.Abs(cost-bareCost) > 0.01*bareCost || math.Abs(power-barePower) > 0.01*barePower {
		t.Errorf("cost %.2f / %.2f USD/h, power %.2f / %.2f kW (DaemonSets / bare): more than 1%% apart", cost, bareCost, power, barePower)
	}
}
