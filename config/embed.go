// Package config embeds the generated CRDs and the samples, so that the CLI can install and apply
// them without a checkout (`kcloud run`).
package config

import "embed"

// CRDs are the generated CustomResourceDefinitions (crd/bases).
//
//go:embed crd/bases/*.yaml
var CRDs embed.FS

// Samples are the spec's WorkloadOptimizer examples and the policy samples (samples).
//
//go:embed samples/*.yaml
var Samples embed.FS

// SchedulerConfig is the example KubeSchedulerConfiguration of kcloud-scheduler (scheduler).
//
//go:embed scheduler/kcloud-scheduler-config.yaml
var SchedulerConfig []byte

// Webhooks are the generated admission webhook configurations (webhook).
//
//go:embed webhook/manifests.yaml
var Webhooks []byte

// CatalogConfigMap is the catalog ConfigMap (namespace/name) that SchedulerConfig's KcloudOptimizer
// args name, and that kcloud-operator is given with --catalog-configmap wherever the CLI starts it.
const CatalogConfigMap = "kcloud-operator-system/kcloud-catalog"
