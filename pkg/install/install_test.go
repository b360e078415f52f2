package install

import (
	"testing"

	"kcloud.io/optimizer/config"
)

func TestEmbeddedManifests(t *testing.T) {
	crds, err := Objects(config.CRDs, "crd/bases/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	samples, err := Objects(config.Samples, "samples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range append(crds, samples...) {
		kinds[o.GetKind()]++
	}
	if kinds["CustomResourceDefinition"] != 3 || kinds["WorkloadOptimizer"] != 3 || kinds["CostPolicy"] != 1 || kinds["PowerPolicy"] != 1 {
		t.Errorf("embedded manifests: %v", kinds)
	}
}
