package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSimulateAutoscaleCSV(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "dlrm.csv")
	rows := `instance_sn,role,app_name,cpu_request,cpu_limit,gpu_request,gpu_limit,rdma_request,rdma_limit,memory_request,memory_limit,disk_request,disk_limit,max_instance_per_node,creation_time,scheduled_time,deletion_time
i0,HN,a,8,8,1,1,0,0,40,40,0,0,8,,,
i1,HN,a,8,8,1,1,0,0,40,40,0,0,8,1800,,2400
i2,HN,b,8,8,1,1,0,0,40,40,0,0,8,,,3600
`
	if err := os.WriteFile(trace, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "simulate-autoscale", "--trace", trace, "--season", "30m", "--warmup", "10m", "--history", "1h",
		"--refit", "5m", "--format", "csv", "--per-workload")
	if err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// Header, three totals, three policies x two apps.
	if len(got) != 10 || got[0][0] != "policy" || got[1][0] != "fixed-at-max" || got[1][2] != "2" || got[4][1] != "a" {
		t.Errorf("csv:\n%s", out)
	}
	if _, err := run(t, "simulate-autoscale", "--trace", trace, "--season", "7m"); err == nil || !strings.Contains(err.Error(), "whole number") {
		t.Errorf("season of 7m with 5m steps: err = %v", err)
	}
	if _, err := run(t, "simulate-autoscale"); err == nil || !strings.Contains(err.Error(), "--trace is required") {
		t.Errorf("no trace: err = %v", err)
	}
}
