// Package v1alpha1 contains the kcloud.io/v1alpha1 API: WorkloadOptimizer, CostPolicy and PowerPolicy.
//
// Units are fixed across the API: money is USD (USD per hour for rates), power is watts, energy is kWh,
// carbon intensity is gCO2/kWh.
//
// +kubebuilder:object:generate=true
// +groupName=kcloud.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "kcloud.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme. It is apimachinery's
	// builder, not controller-runtime's (deprecated) scheme.Builder, so that the API package depends
	// on apimachinery only.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// knownTypes are the kinds that each *_types.go file registers in its init.
var knownTypes []runtime.Object

// register adds kinds to the ones addKnownTypes puts in a scheme; the types' files call it from init.
func register(objects ...runtime.Object) {
	knownTypes = append(knownTypes, objects...)
}

// addKnownTypes adds the registered kinds and the group version's meta types (ListOptions and the
// like) to s, as controller-runtime's scheme.Builder did.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, knownTypes...)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
