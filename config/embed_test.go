package config

import (
	"strings"
	"testing"
)

// The CLI gives kcloud-operator CatalogConfigMap; the scheduler reads its configuration's: they must
// be the same ConfigMap, or the two binaries would price with different catalogs.
func TestSchedulerConfigNamesTheCatalogConfigMap(t *testing.T) {
	if want := "catalogConfigMap: " + CatalogConfigMap; !strings.Contains(string(SchedulerConfig), want) {
		t.Errorf("scheduler/kcloud-scheduler-config.yaml has no %q", want)
	}
}
