package v1alpha1

import (
	"context"
	"fmt"
	"math"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/kube"
)

// Validators of the three kinds check what the CRD's schema and CEL rules cannot: rules across
// objects and against the catalog. They fail closed (failurePolicy Fail): a bad policy is worse
// than a delayed one. A failed cache read is an error, never a silent allow.

// WorkloadOptimizerValidator checks an optimizer against the policies covering it and the catalog.
type WorkloadOptimizerValidator struct {
	Client  client.Reader
	Catalog catalog.Provider // read at each request: the watched catalog in force
}

var _ admission.Validator[*kcloudv1alpha1.WorkloadOptimizer] = &WorkloadOptimizerValidator{}

// ValidateCreate refuses caps above a covering policy's cap, a new workload under a deny-mode policy
// whose budget is spent, and a power cap below what the requested accelerators draw idle.
func (v *WorkloadOptimizerValidator) ValidateCreate(ctx context.Context, wo *kcloudv1alpha1.WorkloadOptimizer) (admission.Warnings, error) {
	return v.validate(ctx, wo, true)
}

// ValidateUpdate applies the same rules but the spent budget (the workload already exists). An
// update that leaves the spec as it is (a finalizer removed, a label added) is allowed: it cannot
// break a rule, and an object stored before a rule existed must still be deletable.
func (v *WorkloadOptimizerValidator) ValidateUpdate(ctx context.Context, old, wo *kcloudv1alpha1.WorkloadOptimizer) (admission.Warnings, error) {
	if equality.Semantic.DeepEqual(old.Spec, wo.Spec) {
		return nil, nil
	}
	return v.validate(ctx, wo, false)
}

// ValidateDelete allows deletion.
func (v *WorkloadOptimizerValidator) ValidateDelete(context.Context, *kcloudv1alpha1.WorkloadOptimizer) (admission.Warnings, error) {
	return nil, nil
}

func (v *WorkloadOptimizerValidator) validate(ctx context.Context, wo *kcloudv1alpha1.WorkloadOptimizer, create bool) (admission.Warnings, error) {
	policies := &kcloudv1alpha1.CostPolicyList{}
	if err := v.Client.List(ctx, policies); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading CostPolicies: %w", err))
	}
	cat, _ := v.Catalog.Current()
	if errs := CheckOptimizer(wo, policies.Items, cat, create); len(errs) > 0 {
		return nil, apierrors.NewInvalid(kcloudv1alpha1.GroupVersion.WithKind("WorkloadOptimizer").GroupKind(), wo.Name, errs)
	}
	return nil, nil
}

// CheckOptimizer applies the cross-object rules to an optimizer: its cost cap within the caps of
// the CostPolicies covering it; on creation, no deny-mode policy covering it with its budget spent;
// its power cap at least what the requested accelerators draw idle.
func CheckOptimizer(wo *kcloudv1alpha1.WorkloadOptimizer, policies []kcloudv1alpha1.CostPolicy, cat *catalog.Catalog, create bool) field.ErrorList {
	spec := field.NewPath("spec")
	errs := kube.SelectorErrors(wo.Spec.Selector, spec.Child("selector"))
	for i := range policies {
		cp := &policies[i]
		if !coversOptimizer(cp.Spec.PolicyTarget, wo) {
			continue
		}
		if c := wo.Spec.CostConstraints; c != nil && c.MaxCostPerHour != nil && cp.Spec.MaxCostPerHour != nil && *c.MaxCostPerHour > *cp.Spec.MaxCostPerHour {
			errs = append(errs, field.Invalid(spec.Child("costConstraints", "maxCostPerHour"), *c.MaxCostPerHour,
				fmt.Sprintf("exceeds maxCostPerHour %g of CostPolicy %s, which covers this workload", *cp.Spec.MaxCostPerHour, cp.Name)))
		}
		if create && cp.Spec.Enforcement == kcloudv1alpha1.EnforcementDeny && cp.Spec.Budget != nil &&
			cp.Status.RemainingBudget != nil && *cp.Status.RemainingBudget <= 0 {
			errs = append(errs, field.Forbidden(spec, fmt.Sprintf("CostPolicy %s (enforcement deny) covers this workload and its budget of %g USD per %s is spent (%.2f USD)",
				cp.Name, cp.Spec.Budget.Amount, kube.PeriodOf(cp.Spec.Budget.Period), cp.Status.CurrentSpend)))
		}
	}
	if c := wo.Spec.PowerConstraints; c != nil && c.MaxPowerUsage != nil {
		r := wo.Spec.Resources
		floor, parts := 0.0, []string{}
		for _, want := range []struct {
			n    int32
			kind catalog.AcceleratorKind
		}{{r.GPU, catalog.KindGPU}, {r.NPU, catalog.KindNPU}} {
			if want.n <= 0 {
				continue
			}
			model, idle := lowestIdle(cat, want.kind)
			if model == "" {
				continue
			}
			floor += float64(want.n) * idle
			parts = append(parts, fmt.Sprintf("%d %s x %g W (%s idle, the lowest in the catalog)", want.n, want.kind, idle, model))
		}
		if *c.MaxPowerUsage < floor {
			errs = append(errs, field.Invalid(spec.Child("powerConstraints", "maxPowerUsage"), *c.MaxPowerUsage,
				fmt.Sprintf("is below the least the requested accelerators draw idle: %g W = %s", floor, joinParts(parts))))
		}
	}
	return errs
}

func joinParts(p []string) string {
	out := ""
	for i, s := range p {
		if i > 0 {
			out += " + "
		}
		out += s
	}
	return out
}

// lowestIdle is the device of a kind that draws least when idle.
func lowestIdle(cat *catalog.Catalog, kind catalog.AcceleratorKind) (string, float64) {
	best, idle := "", math.Inf(1)
	for _, d := range cat.Devices() {
		if d.Kind == kind && d.IdleWatts < idle {
			best, idle = d.Model, d.IdleWatts
		}
	}
	return best, idle
}

// coversOptimizer reports whether a policy covers the pods of an optimizer: its namespace is in the
// policy's, and the policy's selector matches what the optimizer's pods carry (the link label and
// the optimizer's own selector labels).
func coversOptimizer(t kcloudv1alpha1.PolicyTarget, wo *kcloudv1alpha1.WorkloadOptimizer) bool {
	if len(t.Namespaces) > 0 && !slices.Contains(t.Namespaces, wo.Namespace) {
		return false
	}
	if t.Selector == nil {
		return true
	}
	podLabels := labels.Set{kube.LabelOptimizer: wo.Name}
	if wo.Spec.Selector != nil {
		for k, val := range wo.Spec.Selector.MatchLabels {
			podLabels[k] = val
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(t.Selector)
	return err == nil && sel.Matches(podLabels)
}

// CostPolicyValidator refuses a CostPolicy whose spot rule contradicts another's over the same pods.
type CostPolicyValidator struct {
	Client client.Reader
}

var _ admission.Validator[*kcloudv1alpha1.CostPolicy] = &CostPolicyValidator{}

// ValidateCreate checks for conflicts.
func (v *CostPolicyValidator) ValidateCreate(ctx context.Context, cp *kcloudv1alpha1.CostPolicy) (admission.Warnings, error) {
	return v.validate(ctx, cp)
}

// ValidateUpdate checks a changed spec; an update that leaves it as it is is allowed.
func (v *CostPolicyValidator) ValidateUpdate(ctx context.Context, old, cp *kcloudv1alpha1.CostPolicy) (admission.Warnings, error) {
	if equality.Semantic.DeepEqual(old.Spec, cp.Spec) {
		return nil, nil
	}
	return v.validate(ctx, cp)
}

// ValidateDelete allows deletion.
func (v *CostPolicyValidator) ValidateDelete(context.Context, *kcloudv1alpha1.CostPolicy) (admission.Warnings, error) {
	return nil, nil
}

func (v *CostPolicyValidator) validate(ctx context.Context, cp *kcloudv1alpha1.CostPolicy) (admission.Warnings, error) {
	if errs := kube.SelectorErrors(cp.Spec.Selector, field.NewPath("spec", "selector")); len(errs) > 0 {
		return nil, apierrors.NewInvalid(kcloudv1alpha1.GroupVersion.WithKind("CostPolicy").GroupKind(), cp.Name, errs)
	}
	if cp.Spec.SpotPolicy != kcloudv1alpha1.SpotRequire && cp.Spec.SpotPolicy != kcloudv1alpha1.SpotAvoid {
		return nil, nil
	}
	list := &kcloudv1alpha1.CostPolicyList{}
	if err := v.Client.List(ctx, list); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading CostPolicies: %w", err))
	}
	if errs := CheckSpotConflicts(cp, list.Items); len(errs) > 0 {
		return nil, apierrors.NewInvalid(kcloudv1alpha1.GroupVersion.WithKind("CostPolicy").GroupKind(), cp.Name, errs)
	}
	return nil, nil
}

// CheckSpotConflicts refuses a spot rule that contradicts another policy's over common pods.
func CheckSpotConflicts(cp *kcloudv1alpha1.CostPolicy, others []kcloudv1alpha1.CostPolicy) field.ErrorList {
	rule := cp.Spec.SpotPolicy
	var errs field.ErrorList
	for i := range others {
		other := &others[i]
		if other.Name == cp.Name || !Overlap(cp.Spec.PolicyTarget, other.Spec.PolicyTarget) {
			continue
		}
		if (rule == kcloudv1alpha1.SpotRequire && other.Spec.SpotPolicy == kcloudv1alpha1.SpotAvoid) ||
			(rule == kcloudv1alpha1.SpotAvoid && other.Spec.SpotPolicy == kcloudv1alpha1.SpotRequire) {
			errs = append(errs, field.Invalid(field.NewPath("spec", "spotPolicy"), rule,
				fmt.Sprintf("conflicts with CostPolicy %s (spotPolicy %s), which covers some of the same pods: no node could satisfy both", other.Name, other.Spec.SpotPolicy)))
		}
	}
	return errs
}

// Overlap reports whether two policy targets may cover a common pod: their namespaces meet (empty is
// every namespace) and their selectors do not require different values of one label.
func Overlap(a, b kcloudv1alpha1.PolicyTarget) bool {
	if len(a.Namespaces) > 0 && len(b.Namespaces) > 0 && !slices.ContainsFunc(a.Namespaces, func(n string) bool { return slices.Contains(b.Namespaces, n) }) {
		return false
	}
	if a.Selector == nil || b.Selector == nil {
		return true
	}
	for k, va := range a.Selector.MatchLabels {
		if vb, ok := b.Selector.MatchLabels[k]; ok && va != vb {
			return false
		}
	}
	return true
}

// PowerPolicyValidator refuses a deny-mode carbon limit no grid in the catalog meets, and warns on
// an energy budget the power cap makes unreachable within the period.
type PowerPolicyValidator struct {
	Catalog catalog.Provider // read at each request: the watched catalog in force
}

var _ admission.Validator[*kcloudv1alpha1.PowerPolicy] = &PowerPolicyValidator{}

// ValidateCreate checks the policy against the catalog.
func (v *PowerPolicyValidator) ValidateCreate(_ context.Context, pp *kcloudv1alpha1.PowerPolicy) (admission.Warnings, error) {
	return v.validate(pp)
}

// ValidateUpdate checks a changed spec against the catalog; an update that leaves it as it is is
// allowed.
func (v *PowerPolicyValidator) ValidateUpdate(_ context.Context, old, pp *kcloudv1alpha1.PowerPolicy) (admission.Warnings, error) {
	if equality.Semantic.DeepEqual(old.Spec, pp.Spec) {
		return nil, nil
	}
	return v.validate(pp)
}

// ValidateDelete allows deletion.
func (v *PowerPolicyValidator) ValidateDelete(context.Context, *kcloudv1alpha1.PowerPolicy) (admission.Warnings, error) {
	return nil, nil
}

func (v *PowerPolicyValidator) validate(pp *kcloudv1alpha1.PowerPolicy) (admission.Warnings, error) {
	if errs := kube.SelectorErrors(pp.Spec.Selector, field.NewPath("spec", "selector")); len(errs) > 0 {
		return nil, apierrors.NewInvalid(kcloudv1alpha1.GroupVersion.WithKind("PowerPolicy").GroupKind(), pp.Name, errs)
	}
	var warnings admission.Warnings
	if c := pp.Spec.MaxCarbonIntensity; c != nil {
		cleanest, region := math.Inf(1), ""
		cat, _ := v.Catalog.Current()
		for _, r := range cat.Regions() {
			g, _ := cat.CarbonIntensity(catalog.NodeFacts{Region: r})
			if g > 0 && g < cleanest {
				cleanest, region = g, r
			}
		}
		if region != "" && *c < cleanest {
			msg := fmt.Sprintf("is below every grid in the catalog (the cleanest, %s, is %g gCO2/kWh): covered pods could run nowhere", region, cleanest)
			if pp.Spec.Enforcement == kcloudv1alpha1.EnforcementDeny {
				return nil, apierrors.NewInvalid(kcloudv1alpha1.GroupVersion.WithKind("PowerPolicy").GroupKind(), pp.Name,
					field.ErrorList{field.Invalid(field.NewPath("spec", "maxCarbonIntensity"), *c, msg)})
			}
			warnings = append(warnings, "spec.maxCarbonIntensity "+msg)
		}
	}
	return warnings, nil
}
