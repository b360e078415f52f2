// +kubebuilder:webhookconfiguration:mutating=true,name=kcloud-mutating-webhook-configuration
// +kubebuilder:webhookconfiguration:mutating=false,name=kcloud-validating-webhook-configuration
package v1alpha1

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/pkg/catalog"
)

// Paths of the pod webhooks (the kinds' paths are controller-runtime's defaults).
const (
	PathMutatePod   = "/mutate--v1-pod"
	PathValidatePod = "/validate--v1-pod"
)

// Names of the generated webhook configurations (config/webhook/manifests.yaml); the certificate
// rotator keeps their caBundle current.
const (
	MutatingConfiguration   = "kcloud-mutating-webhook-configuration"
	ValidatingConfiguration = "kcloud-validating-webhook-configuration"
)

// The pod webhooks fail open with a 2-second timeout, skip kube-system, the operator's own
// namespace and cluster services' (the operator's --pod-webhook-skip-namespaces names the same;
// the chart replaces them with webhook.skipNamespaces), pods of other schedulers, pods opted out with kcloud.io/ignore=true and the kubelet's
// static pods: a broken pod webhook must never stop a cluster from running pods. The kinds'
// validation fails closed, but the apiserver does not call it for an update that leaves the spec
// as it is or for an object being deleted (matchConditions), so a finalizer can be removed and a
// namespace deleted while the operator is down.
//
// +kubebuilder:webhook:path=/mutate--v1-pod,mutating=true,failurePolicy=ignore,sideEffects=None,groups="",resources=pods,verbs=create,versions=v1,name=mpod.kcloud.io,admissionReviewVersions=v1,timeoutSeconds=2,reinvocationPolicy=IfNeeded,patch=`{"namespaceSelector":{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system","kcloud-operator-system","cert-manager","gpu-operator","nvidia-gpu-operator","monitoring","kepler"]}]},"matchConditions":[{"name":"default-or-kcloud-scheduler","expression":"!has(object.spec.schedulerName) || object.spec.schedulerName in ['default-scheduler', 'kcloud-scheduler']"},{"name":"not-opted-out","expression":"!has(object.metadata.annotations) || !('kcloud.io/ignore' in object.metadata.annotations) || object.metadata.annotations['kcloud.io/ignore'] != 'true'"},{"name":"not-a-static-pod","expression":"!request.userInfo.username.startsWith('system:node:')"}]}`
// +kubebuilder:webhook:path=/validate--v1-pod,mutating=false,failurePolicy=ignore,sideEffects=None,groups="",resources=pods,verbs=create,versions=v1,name=vpod.kcloud.io,admissionReviewVersions=v1,timeoutSeconds=2,patch=`{"namespaceSelector":{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system","kcloud-operator-system","cert-manager","gpu-operator","nvidia-gpu-operator","monitoring","kepler"]}]},"matchConditions":[{"name":"not-opted-out","expression":"!has(object.metadata.annotations) || !('kcloud.io/ignore' in object.metadata.annotations) || object.metadata.annotations['kcloud.io/ignore'] != 'true'"},{"name":"not-a-static-pod","expression":"!request.userInfo.username.startsWith('system:node:')"}]}`
// +kubebuilder:webhook:path=/validate-kcloud-io-v1alpha1-workloadoptimizer,mutating=false,failurePolicy=fail,sideEffects=None,groups=kcloud.io,resources=workloadoptimizers,verbs=create;update,versions=v1alpha1,name=vworkloadoptimizer.kcloud.io,admissionReviewVersions=v1,timeoutSeconds=5,patch=`{"matchConditions":[{"name":"spec-changed","expression":"request.operation != 'UPDATE' || (!has(object.metadata.deletionTimestamp) && (!has(object.spec) || !has(oldObject.spec) || object.spec != oldObject.spec))"}]}`
// +kubebuilder:webhook:path=/validate-kcloud-io-v1alpha1-costpolicy,mutating=false,failurePolicy=fail,sideEffects=None,groups=kcloud.io,resources=costpolicies,verbs=create;update,versions=v1alpha1,name=vcostpolicy.kcloud.io,admissionReviewVersions=v1,timeoutSeconds=5,patch=`{"matchConditions":[{"name":"spec-changed","expression":"request.operation != 'UPDATE' || (!has(object.metadata.deletionTimestamp) && (!has(object.spec) || !has(oldObject.spec) || object.spec != oldObject.spec))"}]}`
// +kubebuilder:webhook:path=/validate-kcloud-io-v1alpha1-powerpolicy,mutating=false,failurePolicy=fail,sideEffects=None,groups=kcloud.io,resources=powerpolicies,verbs=create;update,versions=v1alpha1,name=vpowerpolicy.kcloud.io,admissionReviewVersions=v1,timeoutSeconds=5,patch=`{"matchConditions":[{"name":"spec-changed","expression":"request.operation != 'UPDATE' || (!has(object.metadata.deletionTimestamp) && (!has(object.spec) || !has(oldObject.spec) || object.spec != oldObject.spec))"}]}`

// Deps are what the webhooks read beyond the manager's cache.
type Deps struct {
	Catalog  catalog.Provider
	Offers   Offers
	Cheapest Cheapest
	Spent    Spent
}

// Setup registers every webhook on the manager's webhook server.
func Setup(mgr ctrl.Manager, d Deps) error {
	c := mgr.GetClient()
	srv := mgr.GetWebhookServer()
	srv.Register(PathMutatePod, &admission.Webhook{Handler: &PodMutator{Client: c, Catalog: d.Catalog, Offers: d.Offers}})
	srv.Register(PathValidatePod, admission.WithValidator[*corev1.Pod](mgr.GetScheme(), &PodValidator{Client: c, Cheapest: d.Cheapest, Spent: d.Spent}))
	if err := ctrl.NewWebhookManagedBy(mgr, &kcloudv1alpha1.WorkloadOptimizer{}).
		WithValidator(&WorkloadOptimizerValidator{Client: c, Catalog: d.Catalog}).Complete(); err != nil {
		return fmt.Errorf("WorkloadOptimizer webhook: %w", err)
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &kcloudv1alpha1.CostPolicy{}).WithValidator(&CostPolicyValidator{Client: c}).Complete(); err != nil {
		return fmt.Errorf("CostPolicy webhook: %w", err)
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &kcloudv1alpha1.PowerPolicy{}).WithValidator(&PowerPolicyValidator{Catalog: d.Catalog}).Complete(); err != nil {
		return fmt.Errorf("PowerPolicy webhook: %w", err)
	}
	return nil
}
