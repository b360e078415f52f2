package simulator

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/model"
)

// testReplica is a replica at 2 USD/h drawing 100 W idle and 300 W at full load.
var testReplica = ReplicaType{InstanceType: "test", Devices: 1, Economics: model.Economics{
	PricePerHour: 2, HostIdleWatts: 50, HostMaxWatts: 100, Device: model.PowerCurve{{Utilization: 0, Watts: 50}, {Utilization: 1, Watts: 200}},
}}

// TestSimulateAutoscaleTimeline follows one step of load through the policies with hour-long steps and
// a one-step lead: reactive sees the rise one step late and its replica is ready one step after that.
func TestSimulateAutoscaleTimeline(t *testing.T) {
	w := AutoscaleWorkload{Name: "w", Demand: []float64{1, 1, 1, 3, 3, 3, 1, 1}}
	cfg := AutoscaleConfig{Step: time.Hour, Season: 24, Lead: time.Hour, Stabilization: 0, Warmup: 2, History: 8,
		ReplicaTarget: 1, Replica: testReplica}
	tests := []struct {
		policy string
		want   AutoscaleResult
	}{
		// 3 replicas for the 6 scored hours (demand 1 3 3 3 1 1 in hours 2..7), all serving: 3 x
		// 300 W for the 3 hours of load 3, 3 x (100 + 200 x 1/3) W for the 3 of load 1.
		{AutoscaleFixedAtMax, AutoscaleResult{Policy: AutoscaleFixedAtMax, Workload: "w", Workloads: 1, Steps: 6,
			ReplicaHours: 18, CostUSD: 36, EnergyKWh: (3*900 + 3*3*(100+200.0/3)) / 1000, PeakCostPerHour: 6, PeakPowerWatts: 900}},
		// Hours 2..7 against the observation of the hour before: 1 ready; 1 ready,
		// short by 2; 3 asked, 1 ready and 2 starting at idle, short by 2; 3 ready at full load; 3 ready
		// for a load of 1; down to 1 at once.
		{AutoscaleReactive, AutoscaleResult{Policy: AutoscaleReactive, Workload: "w", Workloads: 1, Steps: 6,
			ReplicaHours: 1 + 1 + 3 + 3 + 3 + 1, CostUSD: 24, SLOViolationMinutes: 120, UnservedReplicaHours: 4, ScaleEvents: 2,
			EnergyKWh: (300 + 300 + (300 + 2*100) + 900 + 3*(100+200.0/3) + 300) / 1000, PeakCostPerHour: 6, PeakPowerWatts: 900}},
	}
	for _, tc := range tests {
		t.Run(tc.policy, func(t *testing.T) {
			got := simulateAutoscale(w, tc.policy, &cfg)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDLRMWorkloadsPeakPerStep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dlrm.csv")
	csv := `instance_sn,role,app_name,cpu_request,cpu_limit,gpu_request,gpu_limit,rdma_request,rdma_limit,memory_request,memory_limit,disk_request,disk_limit,max_instance_per_node,creation_time,scheduled_time,deletion_time
i0,HN,a,8,8,1,1,0,0,40,40,0,0,8,,,
i1,HN,a,8,8,1,1,0,0,40,40,0,0,8,100,,250
i2,HN,a,8,8,1,1,0,0,40,40,0,0,8,250,,
i3,HN,b,8,8,1,1,0,0,40,40,0,0,8,,,650
i4,CN,b,8,8,0,0,0,0,40,40,0,0,8,,,
`
	if err := os.WriteFile(path, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := DLRMWorkloads(path, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Steps of 300 s up to the last time (650 s): three. i2 replaces i1 at 250 s: no peak of 3.
	want := []AutoscaleWorkload{{Name: "a", Demand: []float64{2, 2, 2}}, {Name: "b", Demand: []float64{1, 1, 1}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestAutoscaleOnTheDLRMTrace compares the policies on the real trace with a cost cap that binds for
// the largest apps, and checks what must hold: predictive has no more SLO-violation minutes than
// reactive, fixed-at-max costs the most, and no app ever costs more per hour than the cap.
func TestAutoscaleOnTheDLRMTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("replays a month of 156 apps")
	}
	trace := filepath.Join("..", "..", "..", "shared", "data", "traces", "alibaba_dlrm_inference_instances.csv")
	if _, err := os.Stat(trace); err != nil {
		t.Skipf("shared data folder not present: %v", err)
	}
	workloads, err := DLRMWorkloads(trace, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	replica, err := CatalogReplicaType(catalog.Default(), "g5.4xlarge")
	if err != nil {
		t.Fatal(err)
	}
	costCap := 100.0 // USD/h: about 61 replicas, below the peak of the largest apps
	totals, perWorkload, err := RunAutoscale(workloads, AutoscaleConfig{
		Step: 5 * time.Minute, Season: 288, Lead: 10 * time.Minute, Stabilization: 15 * time.Minute,
		Warmup: 576, History: 576, Refit: 12, Replica: replica, MaxCostPerHour: &costCap,
	})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]AutoscaleResult{}
	for _, r := range totals {
		by[r.Policy] = r
		t.Logf("%-12s replica-h %.0f cost %.0f USD energy %.0f kWh SLO-violation %.0f min events %d capped steps %d",
			r.Policy, r.ReplicaHours, r.CostUSD, r.EnergyKWh, r.SLOViolationMinutes, r.ScaleEvents, r.CappedSteps)
	}
	fixed, reactive, predictive := by[AutoscaleFixedAtMax], by[AutoscaleReactive], by[AutoscalePredictive]
	if predictive.SLOViolationMinutes > reactive.SLOViolationMinutes {
		t.Errorf("predictive: %.0f SLO-violation minutes, more than reactive's %.0f", predictive.SLOViolationMinutes, reactive.SLOViolationMinutes)
	}
	if fixed.CostUSD <= reactive.CostUSD || fixed.CostUSD <= predictive.CostUSD {
		t.Errorf("fixed-at-max costs %.0f USD, not the most (reactive %.0f, predictive %.0f)", fixed.CostUSD, reactive.CostUSD, predictive.CostUSD)
	}
	capped := 0
	for _, r := range perWorkload {
		if r.PeakCostPerHour > costCap+1e-9 {
			t.Errorf("%s %s: %.2f USD/h above the %.0f USD/h cap", r.Policy, r.Workload, r.PeakCostPerHour, costCap)
		}
		capped += r.CappedSteps
	}
	if capped == 0 {
		t.Errorf("the %.0f USD/h cap never bound: the test checks nothing", costCap)
	}
	if fixed.Workloads != len(workloads) || fixed.Steps != len(workloads[0].Demand)-576 || math.IsNaN(predictive.EnergyKWh) {
		t.Errorf("totals cover %d workloads and %d steps", fixed.Workloads, fixed.Steps)
	}
}
