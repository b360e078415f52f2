// Package config holds the arguments of the kcloud scheduler plugins, as they appear under
// pluginConfig in a KubeSchedulerConfiguration (apiVersion kubescheduler.config.k8s.io/v1), one
// kind per plugin (KcloudGPUShare takes none):
//
//	pluginConfig:
//	- name: KcloudOptimizer
//	  args:
//	    apiVersion: kcloud.io/v1alpha1
//	    kind: KcloudOptimizerArgs
//	    weights: {cost: 2, power: 0, carbon: 0, fragmentation: 98, reserve: 5, spot: 5, green: 5}
//	- name: KcloudGang
//	  args:
//	    apiVersion: kcloud.io/v1alpha1
//	    kind: KcloudGangArgs
//	    gangTimeoutSeconds: 60
package config

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"

	"k8s.io/apimachinery/pkg/runtime"

	"kcloud.io/optimizer/pkg/catalog/watch"
	"kcloud.io/optimizer/pkg/model"
	"kcloud.io/optimizer/pkg/traces"
)

// Version of the arguments, the only one so far, and the kinds.
const (
	APIVersion = "kcloud.io/v1alpha1"
	Kind       = "KcloudOptimizerArgs"
	GangKind   = "KcloudGangArgs"
)

// Weights of the node score; see model.Weights. Omitted fields take model.DefaultWeights.
type Weights struct {
	Cost          *float64 `json:"cost,omitempty"`
	Power         *float64 `json:"power,omitempty"`
	Carbon        *float64 `json:"carbon,omitempty"`
	Fragmentation *float64 `json:"fragmentation,omitempty"`
	Reserve       *float64 `json:"reserve,omitempty"`
	Spot          *float64 `json:"spot,omitempty"`
	Green         *float64 `json:"green,omitempty"`
}

// KcloudOptimizerArgs configure the KcloudOptimizer plugin (limits and the node score).
type KcloudOptimizerArgs struct {
	APIVersion string  `json:"apiVersion,omitempty"`
	Kind       string  `json:"kind,omitempty"`
	Weights    Weights `json:"weights,omitempty"`
	// TargetWorkload is the trace whose typical pods define GPU fragmentation (a file path, or one of
	// the embedded traces such as embedded:openb_pod_list_default.csv).
	TargetWorkload string `json:"targetWorkload,omitempty"`
	// GangTimeoutSeconds is accepted, so that configurations written before the gang plugin had
	// its own args still load, and ignored (the plugin logs so).
	//
	// Deprecated: set KcloudGangArgs.GangTimeoutSeconds.
	GangTimeoutSeconds *int32 `json:"gangTimeoutSeconds,omitempty"`
	// CatalogConfigMap names a ConfigMap (namespace/name) whose data overrides the catalog's prices,
	// device power and carbon (see pkg/catalog and docs/CATALOG.md), and beside it the price source
	// ConfigMap <name>-price-source; both are watched, and a change applies without a restart. A
	// missing ConfigMap means the defaults. Empty: the embedded catalog only. kcloud-operator's
	// --catalog-configmap must name the same one.
	CatalogConfigMap string `json:"catalogConfigMap,omitempty"`
	// NarrowCandidates (default true) lets PreFilter offer only the nodes worth filtering: running
	// nodes with room and a few empty nodes of each shape (see docs/designs/scheduler.md). Placements
	// are the same either way; false filters and scores every node, which the benchmark and the
	// differential test compare against.
	NarrowCandidates *bool `json:"narrowCandidates,omitempty"`
	// TieBreakSeed (default 42, the simulator's first seed) seeds the order in which nodes tied on
	// the best score win (model.TieRank over each node's capacity, occupancy and economics), so
	// that the scheduler breaks ties as `kcloud simulate` does with the same seed.
	TieBreakSeed *int64 `json:"tieBreakSeed,omitempty"`
}

// DefaultTieBreakSeed is TieBreakSeed's default: the first seed of `kcloud simulate`
// (simulator.FirstSeed).
const DefaultTieBreakSeed = 42

// SetDefaults fills what the user left out.
func (a *KcloudOptimizerArgs) SetDefaults() {
	d := model.DefaultWeights
	def := func(p **float64, v float64) {
		if *p == nil {
			*p = &v
		}
	}
	def(&a.Weights.Cost, d.Cost)
	def(&a.Weights.Power, d.Power)
	def(&a.Weights.Carbon, d.Carbon)
	def(&a.Weights.Fragmentation, d.Fragmentation)
	def(&a.Weights.Reserve, d.Reserve)
	def(&a.Weights.Spot, d.Spot)
	def(&a.Weights.Green, d.Green)
	if a.TargetWorkload == "" {
		a.TargetWorkload = traces.OpenbDefaultPods
	}
	if a.NarrowCandidates == nil {
		narrow := true
		a.NarrowCandidates = &narrow
	}
	if a.TieBreakSeed == nil {
		seed := int64(DefaultTieBreakSeed)
		a.TieBreakSeed = &seed
	}
}

// Validate returns every problem, each naming its field.
func (a *KcloudOptimizerArgs) Validate() error {
	var errs field.ErrorList
	p := field.NewPath("args")
	errs = append(errs, validateType(p, a.APIVersion, a.Kind, Kind)...)
	w := p.Child("weights")
	total := 0.0
	for name, v := range map[string]*float64{"cost": a.Weights.Cost, "power": a.Weights.Power, "carbon": a.Weights.Carbon,
		"fragmentation": a.Weights.Fragmentation, "reserve": a.Weights.Reserve, "spot": a.Weights.Spot, "green": a.Weights.Green} {
		if v == nil {
			continue
		}
		if *v < 0 || *v > 1000 {
			errs = append(errs, field.Invalid(w.Child(name), *v, "must be between 0 and 1000"))
		}
		total += *v
	}
	if total == 0 {
		errs = append(errs, field.Invalid(w, a.Weights, "at least one weight must be positive"))
	}
	if _, err := watch.ParseRef(a.CatalogConfigMap); err != nil {
		errs = append(errs, field.Invalid(p.Child("catalogConfigMap"), a.CatalogConfigMap, "want namespace/name"))
	}
	if a.TargetWorkload != "" {
		if _, err := traces.ReadPods(a.TargetWorkload); err != nil {
			errs = append(errs, field.Invalid(p.Child("targetWorkload"), a.TargetWorkload, fmt.Sprintf("cannot be read: %v", err)))
		}
	}
	return errs.ToAggregate()
}

// ModelWeights returns the weights for pkg/model; call after SetDefaults.
func (a *KcloudOptimizerArgs) ModelWeights() model.Weights {
	return model.Weights{Cost: *a.Weights.Cost, Power: *a.Weights.Power, Carbon: *a.Weights.Carbon,
		Fragmentation: *a.Weights.Fragmentation, Reserve: *a.Weights.Reserve, Spot: *a.Weights.Spot, Green: *a.Weights.Green}
}

// Decode reads the plugin's args from the scheduler configuration, defaults and validates them.
func Decode(obj runtime.Object) (*KcloudOptimizerArgs, error) {
	args := &KcloudOptimizerArgs{}
	if err := frameworkruntime.DecodeInto(obj, args); err != nil {
		return nil, fmt.Errorf("decoding KcloudOptimizer args: %w", err)
	}
	args.SetDefaults()
	if err := args.Validate(); err != nil {
		return nil, fmt.Errorf("KcloudOptimizer args: %w", err)
	}
	return args, nil
}

// validateType checks the args' apiVersion and kind, either of which may be left out.
func validateType(p *field.Path, apiVersion, kind, want string) field.ErrorList {
	var errs field.ErrorList
	if apiVersion != "" && apiVersion != APIVersion {
		errs = append(errs, field.NotSupported(p.Child("apiVersion"), apiVersion, []string{APIVersion}))
	}
	if kind != "" && kind != want {
		errs = append(errs, field.NotSupported(p.Child("kind"), kind, []string{want}))
	}
	return errs
}

// KcloudGangArgs configure the KcloudGang plugin.
type KcloudGangArgs struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	// GangTimeoutSeconds is how long the first pods of a gang wait for the rest before all are rejected.
	GangTimeoutSeconds *int32 `json:"gangTimeoutSeconds,omitempty"`
}

// SetDefaults fills what the user left out.
func (a *KcloudGangArgs) SetDefaults() {
	if a.GangTimeoutSeconds == nil {
		t := int32(60)
		a.GangTimeoutSeconds = &t
	}
}

// Validate returns every problem, each naming its field.
func (a *KcloudGangArgs) Validate() error {
	p := field.NewPath("args")
	errs := validateType(p, a.APIVersion, a.Kind, GangKind)
	if a.GangTimeoutSeconds != nil && (*a.GangTimeoutSeconds < 1 || *a.GangTimeoutSeconds > 3600) {
		errs = append(errs, field.Invalid(p.Child("gangTimeoutSeconds"), *a.GangTimeoutSeconds, "must be between 1 and 3600"))
	}
	return errs.ToAggregate()
}

// DecodeGang reads the gang plugin's args from the scheduler configuration, defaults and validates them.
func DecodeGang(obj runtime.Object) (*KcloudGangArgs, error) {
	args := &KcloudGangArgs{}
	if err := frameworkruntime.DecodeInto(obj, args); err != nil {
		return nil, fmt.Errorf("decoding KcloudGang args: %w", err)
	}
	args.SetDefaults()
	if err := args.Validate(); err != nil {
		return nil, fmt.Errorf("KcloudGang args: %w", err)
	}
	return args, nil
}
