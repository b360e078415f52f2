package catalog

import (
	"kcloud.io/optimizer/pkg/model"

	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWithConfigMap(t *testing.T) {
	base := Default()
	c, err := base.WithConfigMap(map[string]string{
		ConfigMapKeyPrices: `instance_type,capacity_type,region,usd_per_hour
# negotiated discount
p4d.24xlarge,on-demand,,21.96
p4d.24xlarge,on-demand,us-west-2,23.10
p4d.24xlarge,spot,us-east-1,7.5
on-prem-dgx,,,0
`,
		ConfigMapKeyDevices: `model,idle_watts,max_watts,price_per_hour_usd,spot_discount
Tesla-T4,10,80,,
G2,,,1.9,0.3
`,
		ConfigMapKeyCarbon: "region,g_per_kwh\non-prem-seoul,436\nus-east-1,300\n",
		ConfigMapKeySettings: `default_region,on-prem-seoul
host_usd_per_vcpu_hour,0.02
host_max_watts_per_gib,0.5
green_g_per_kwh,11
`,
	})
	if err != nil {
		t.Fatalf("WithConfigMap: %v", err)
	}

	prices := []struct {
		name string
		n    NodeFacts
		want Price
	}{
		{"any-region row", NodeFacts{Name: "a", InstanceType: "p4d.24xlarge", Region: "us-east-1"}, Price{21.96, "configmap"}},
		{"region row beats any-region row", NodeFacts{Name: "a", InstanceType: "P4D.24xlarge", Region: "us-west-2"}, Price{23.10, "configmap"}},
		{"spot row", NodeFacts{Name: "a", InstanceType: "p4d.24xlarge", Region: "us-east-1", CapacityType: CapacitySpot}, Price{7.5, "configmap"}},
		{"no spot row for the region: instance table", NodeFacts{Name: "a", InstanceType: "p4d.24xlarge", Region: "us-west-2", CapacityType: CapacitySpot}, Price{6.289, "instance:aws:p4d.24xlarge:spot (us-east-1 list price)"}},
		{"zero price", NodeFacts{Name: "a", InstanceType: "on-prem-dgx"}, Price{0, "configmap"}},
		{"device price and host rate", NodeFacts{Name: "a", AcceleratorModel: "G2", AcceleratorCount: 8, CPUMilli: 96000, MemoryMiB: 786432, CapacityType: CapacitySpot}, Price{(8*1.9 + 96*0.02 + 768*0.004237) * 0.3, "device:G2 x8 + host:spot"}},
	}
	for _, tt := range prices {
		got, err := c.Price(tt.n)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, got, approx); diff != "" {
			t.Errorf("%s: Price (-want +got):\n%s", tt.name, diff)
		}
	}

	t4, _ := c.Device("T4")
	// The Boavizta T4 curve 8/22/53/71 rescaled onto 10..80 W keeps its shape.
	wantCurve := model.PowerCurve{{Utilization: 0, Watts: 10}, {Utilization: 0.1, Watts: 10 + 70*14.0/63}, {Utilization: 0.5, Watts: 10 + 70*45.0/63}, {Utilization: 1, Watts: 80}}
	if diff := cmp.Diff(wantCurve, t4.Curve, approx); diff != "" {
		t.Errorf("T4 curve (-want +got):\n%s", diff)
	}
	if t4.IdleWatts != 10 || t4.MaxWatts != 80 || t4.PricePerHourUSD != 0.35 || !strings.HasSuffix(t4.Source, "power overridden by configmap") {
		t.Errorf("T4 = %+v", t4)
	}

	if g, src := c.CarbonIntensity(NodeFacts{}); g != 436 || src != "configmap" {
		t.Errorf("carbon of the new default region = %g, %q", g, src)
	}
	if g, _ := c.CarbonIntensity(NodeFacts{Region: "us-east-1"}); g != 300 {
		t.Errorf("carbon of us-east-1 = %g, want 300", g)
	}
	if g, _ := c.CarbonIntensity(NodeFacts{Green: true}); g != 11 {
		t.Errorf("green carbon = %g, want 11", g)
	}
	if got := c.HostPower(NodeFacts{CPUMilli: 1000, MemoryMiB: 1024}); got.MaxWatts != 2.984+0.5 || !strings.Contains(got.Source, "configmap") {
		t.Errorf("HostPower = %+v", got)
	}

	// The base catalog is unchanged.
	if p, _ := base.Price(NodeFacts{Name: "a", InstanceType: "p4d.24xlarge"}); p.USDPerHour != 32.7726 {
		t.Errorf("base catalog price changed: %v", p)
	}
	if d, _ := base.Device("T4"); d.MaxWatts != 71 {
		t.Errorf("base catalog T4 changed: %v", d.MaxWatts)
	}
	if g, _ := base.CarbonIntensity(NodeFacts{}); g != 415.755 {
		t.Errorf("base catalog carbon changed: %g", g)
	}
	if c2, err := base.WithConfigMap(nil); err != nil || c2 == base {
		t.Errorf("WithConfigMap(nil) = %p, %v; want a copy", c2, err)
	}
}

func TestWithConfigMapMalformed(t *testing.T) {
	tests := []struct {
		name string
		data map[string]string
		want []string
	}{
		{
			name: "price not a number",
			data: map[string]string{ConfigMapKeyPrices: "instance_type,capacity_type,region,usd_per_hour\np4d.24xlarge,on-demand,,21.96\np5.48xlarge,on-demand,,lots\n"},
			want: []string{`configmap key "prices.csv" line 3`, `usd_per_hour "lots" is not a number`},
		},
		{
			name: "price row too short, after a comment",
			data: map[string]string{ConfigMapKeyPrices: "# header-less\np4d.24xlarge,on-demand\n"},
			want: []string{`configmap key "prices.csv" line 2`, "2 fields, want 4 to 4"},
		},
		{
			name: "unknown capacity type",
			data: map[string]string{ConfigMapKeyPrices: "p4d.24xlarge,reserved,,20\n"},
			want: []string{`configmap key "prices.csv" line 1`, `capacity_type "reserved"`},
		},
		{
			name: "negative price",
			data: map[string]string{ConfigMapKeyPrices: "p4d.24xlarge,spot,,-2\n"},
			want: []string{`configmap key "prices.csv" line 1`, "negative"},
		},
		{
			name: "max watts too large",
			data: map[string]string{ConfigMapKeyDevices: "Y1,,1e306,,,nvidia.com/gpu\n"},
			want: []string{`configmap key "devices.csv" line 1`, `max_watts "1e306" is too large: at most 1e+09`},
		},
		{
			name: "pue too large",
			data: map[string]string{ConfigMapKeySettings: "energy_usd_per_kwh,0.12\npue,1e200\n"},
			want: []string{`configmap key "settings.csv" line 2`, `pue "1e200" is too large: at most 1e+09`},
		},
		{
			name: "wrong header",
			data: map[string]string{ConfigMapKeyPrices: "instance_type,region,capacity_type,usd_per_hour\n"},
			want: []string{`configmap key "prices.csv" line 1`, "header"},
		},
		{
			name: "unknown device model lists the known ones",
			data: map[string]string{ConfigMapKeyDevices: "model,idle_watts,max_watts,price_per_hour_usd\nT4,8,70,0.3\nR100,100,1000,\n"},
			want: []string{`configmap key "devices.csv" line 3`, `"R100"`, "known models: A10, A100, A100-80GB,"},
		},
		{
			name: "idle above max",
			data: map[string]string{ConfigMapKeyDevices: "L4,90,,\n"},
			want: []string{`configmap key "devices.csv" line 1`, "idle_watts 90 must be below max_watts 72"},
		},
		{
			name: "spot discount above 1",
			data: map[string]string{ConfigMapKeyDevices: "L4,,,,1.5\n"},
			want: []string{`configmap key "devices.csv" line 1`, "spot_discount"},
		},
		{
			name: "carbon not a number",
			data: map[string]string{ConfigMapKeyCarbon: "region,g_per_kwh\n\nus-east-1,dirty\n"},
			want: []string{`configmap key "carbon.csv" line 3`, "not a number"},
		},
		{
			name: "unbalanced quote",
			data: map[string]string{ConfigMapKeyCarbon: "region,g_per_kwh\n\"us-east-1,300\n"},
			want: []string{`configmap key "carbon.csv" line`},
		},
		{
			name: "unknown setting",
			data: map[string]string{ConfigMapKeySettings: "host_usd_per_core,0.1\n"},
			want: []string{`configmap key "settings.csv" line 1`, `unknown setting "host_usd_per_core"`},
		},
		{
			name: "unknown key",
			data: map[string]string{"price.csv": "p4d.24xlarge,on-demand,,20\n"},
			want: []string{`configmap key "price.csv"`, "known keys: carbon.csv, devices.csv, discounts.csv, onprem.csv, prices.csv, settings.csv"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Default().WithConfigMap(tt.data)
			if err == nil {
				t.Fatalf("no error; catalog %p", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
