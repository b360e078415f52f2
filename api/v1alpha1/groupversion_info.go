// Package v1alpha1 contains the kcloud.io/v1alpha1 API: WorkloadOptimizer, CostPolicy and PowerPolicy.
//
// Units are fixed across the API: money is USD (USD per hour for rates), power is watts, energy is kWh,
// carbon intensity is gCO2/kWh.
//
// +kubebuilder:object:generate=true
// +groupName=kcloud.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "kcloud.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
