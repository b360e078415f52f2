package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
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
