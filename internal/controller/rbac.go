// Package controller holds the kcloud-operator's reconcilers, one sub-package per kind.
//
// The markers below declare every permission the operator needs; `make manifests` turns them into
// config/rbac/role.yaml. They live in one place so that least privilege can be reviewed at a glance.
package controller

// +kubebuilder:rbac:groups=kcloud.io,resources=workloadoptimizers;costpolicies;powerpolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=kcloud.io,resources=workloadoptimizers/status;costpolicies/status;powerpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kcloud.io,resources=workloadoptimizers/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=nodes;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=pods/eviction,verbs=create
// ConfigMaps only where the catalog lives: the operator's namespace here (the price source's rule in
// internal/pricesource adds writing), a Role of the chart's where the catalog is elsewhere.
// +kubebuilder:rbac:groups="",namespace=kcloud-operator-system,resources=configmaps,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;replicasets,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments/scale;statefulsets/scale;replicasets/scale,verbs=get;update;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch
// Leader election: the Lease lives in the operator's namespace (the chart's release namespace).
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=kcloud-operator-system,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// The certificate rotator reads, watches (by metadata.name) and updates its own two webhook
// configurations only (internal/webhook/v1alpha1 MutatingConfiguration, ValidatingConfiguration).
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,resourceNames=kcloud-mutating-webhook-configuration,verbs=get;list;watch;update
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,resourceNames=kcloud-validating-webhook-configuration,verbs=get;list;watch;update
// +kubebuilder:rbac:groups="",namespace=kcloud-operator-system,resources=secrets,verbs=get;list;watch;create;update
