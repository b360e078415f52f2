package pricesource

// The poller writes one ConfigMap beside the catalog's, which config/ and the chart put in the
// operator's namespace; the chart adds a Role where the catalog ConfigMap is elsewhere.
// +kubebuilder:rbac:groups="",namespace=kcloud-operator-system,resources=configmaps,verbs=get;list;watch;create;update;patch
