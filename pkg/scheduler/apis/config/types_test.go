package config

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/simulator"
)

func TestDecodeDefaults(t *testing.T) {
	args, err := Decode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if args.ModelWeights() != model.DefaultWeights || args.TargetWorkload == "" || !*args.NarrowCandidates || *args.TieBreakSeed != simulator.FirstSeed {
		t.Errorf("defaults: %+v", args)
	}
	args, err = Decode(&runtime.Unknown{Raw: []byte(`{"apiVersion":"kcloud.io/v1alpha1","kind":"KcloudOptimizerArgs","weights":{"power":7},"narrowCandidates":false,"tieBreakSeed":7}`), ContentType: runtime.ContentTypeJSON})
	if err != nil {
		t.Fatal(err)
	}
	if w := args.ModelWeights(); w.Power != 7 || w.Fragmentation != model.DefaultWeights.Fragmentation {
		t.Errorf("partial weights: %+v", w)
	}
	if *args.NarrowCandidates {
		t.Error("narrowCandidates: false was not read")
	}
	if *args.TieBreakSeed != 7 {
		t.Errorf("tieBreakSeed: 7 read as %d", *args.TieBreakSeed)
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{`{"weights":{"cost":-1}}`, "args.weights.cost: Invalid value: -1: must be between 0 and 1000"},
		{`{"weights":{"cost":0,"power":0,"carbon":0,"fragmentation":0,"reserve":0,"spot":0,"green":0}}`, "args.weights: Invalid value"},
		{`{"targetWorkload":"/nonexistent.csv"}`, "args.targetWorkload: Invalid value: \"/nonexistent.csv\": cannot be read"},
		{`{"kind":"Other"}`, `args.kind: Unsupported value: "Other"`},
		{`{"weights":{"cost":"cheap"}}`, "decoding KcloudOptimizer args"},
	} {
		_, err := Decode(&runtime.Unknown{Raw: []byte(tc.raw), ContentType: runtime.ContentTypeJSON})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.raw, err, tc.want)
		}
	}
}

func TestDecodeGang(t *testing.T) {
	args, err := DecodeGang(nil)
	if err != nil {
		t.Fatal(err)
	}
	if *args.GangTimeoutSeconds != 60 {
		t.Errorf("defaults: %+v", args)
	}
	args, err = DecodeGang(&runtime.Unknown{Raw: []byte(`{"apiVersion":"kcloud.io/v1alpha1","kind":"KcloudGangArgs","gangTimeoutSeconds":5}`), ContentType: runtime.ContentTypeJSON})
	if err != nil || *args.GangTimeoutSeconds != 5 {
		t.Errorf("gangTimeoutSeconds 5: %+v, %v", args, err)
	}
	for _, tc := range []struct{ raw, want string }{
		{`{"gangTimeoutSeconds":0}`, "args.gangTimeoutSeconds: Invalid value: 0: must be between 1 and 3600"},
		{`{"kind":"KcloudOptimizerArgs"}`, `args.kind: Unsupported value: "KcloudOptimizerArgs"`},
		{`{"gangTimeoutSeconds":"long"}`, "decoding KcloudGang args"},
	} {
		_, err := DecodeGang(&runtime.Unknown{Raw: []byte(tc.raw), ContentType: runtime.ContentTypeJSON})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.raw, err, tc.want)
		}
	}
}

// A configuration written when gangTimeoutSeconds was KcloudOptimizer's still loads.
func TestDecodeKeepsTheOldGangTimeout(t *testing.T) {
	args, err := Decode(&runtime.Unknown{Raw: []byte(`{"gangTimeoutSeconds":30}`), ContentType: runtime.ContentTypeJSON})
	if err != nil || args.GangTimeoutSeconds == nil || *args.GangTimeoutSeconds != 30 {
		t.Errorf("old gangTimeoutSeconds: %+v, %v", args, err)
	}
}
