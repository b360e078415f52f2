package catalog

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestEmbeddedCopiesAreVerbatim compares the copied data files with the shared data folder that sits
// beside the checkout (../shared/data) on development machines and CI; data/SOURCES.md says they are
// verbatim copies. It is skipped where that folder is absent.
func TestEmbeddedCopiesAreVerbatim(t *testing.T) {
	shared := filepath.Join("..", "..", "..", "shared", "data")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("shared data folder not present: %v", err)
	}
	copies := map[string]string{
		"gpu_power_curve_boavizta.csv":               "power",
		"gpu_tdp_mlco2.csv":                          "power",
		"openb_gpu_model_power_map.csv":              "power",
		"aws_gpu_instance_power_teads_ccf.csv":       "power",
		"aws_gpu_instances_pricing_vantage_2023.csv": "pricing",
		"gcp_gpu_instances_pricing_cyclenerd.csv":    "pricing",
		"gcp_gpu_attach_pricing_skypilot.csv":        "pricing",
		"cloud_region_carbon_intensity_mlco2.csv":    "carbon",
		"grid_emissions_factors_aws_ccf.csv":         "carbon",
		"grid_emissions_factors_gcp_ccf.csv":         "carbon",
	}
	// Files written for this package (data/SOURCES.md describes them and names their upstream rows).
	writtenByUs := map[string]bool{"devices.csv": true, "instances_2026.csv": true, "aws_spot_2026.csv": true}
	entries, err := dataFS.ReadDir("data")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := copies[e.Name()]; !ok && !writtenByUs[e.Name()] {
			t.Errorf("data/%s is neither a listed copy nor a file we wrote: add it to data/SOURCES.md and here", e.Name())
		}
	}
	for name, dir := range copies {
		embedded, err := dataFS.ReadFile("data/" + name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		orig, err := os.ReadFile(filepath.Join(shared, dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(embedded, orig) {
			t.Errorf("data/%s differs from %s/%s", name, dir, name)
		}
	}
}
