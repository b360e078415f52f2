package pricesource

// The poller writes one ConfigMap beside the catalog's. The namespace is the default of
// --catalog-configmap; the chart renders this Role into the namespace of its operator.catalogConfigMap
// value instead, and a kustomize install with another namespace patches it.
// +kubebuilder:rbac:groups="",namespace=kcloud-system,resources=configmaps,verbs=get;list;watch;create;update;patch
