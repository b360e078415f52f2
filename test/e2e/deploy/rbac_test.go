package deploy

import (
	"context"
	"fmt"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// access is one request a ServiceAccount may or may not make.
type access struct {
	verb, group, resource, subresource, namespace, name string
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	if a.name != "" {
		r += " " + a.name
	}
	ns := a.namespace
	if ns == "" {
		ns = "(cluster)"
	}
	return fmt.Sprintf("%s %s in %s", a.verb, r, ns)
}

// operatorAccess is what the operator needs (allowed) and a sample of what it must not do
// (denied), for an installation in namespace ns. kcloud-operator-system is never ns's neighbour.
func operatorAccess(ns string) (allowed, denied []access) {
	const kc = "kcloud.io"
	other := "team-a"
	allowed = []access{
		// Fleet: nodes, namespaces, pods and their owners, read everywhere.
		{verb: "list", resource: "nodes"},
		{verb: "watch", resource: "nodes"},
		// Rebalancer: its reservations are annotations on the destination node.
		{verb: "patch", resource: "nodes"},
		{verb: "get", resource: "namespaces", name: other},
		{verb: "list", resource: "pods"},
		{verb: "watch", resource: "pods", namespace: other},
		{verb: "patch", resource: "pods", namespace: other}, // the link label
		{verb: "create", resource: "pods", subresource: "eviction", namespace: other},
		{verb: "list", group: "apps", resource: "deployments"},
		{verb: "watch", group: "apps", resource: "replicasets"},
		{verb: "get", group: "apps", resource: "statefulsets", namespace: other},
		{verb: "list", group: "batch", resource: "jobs"},
		// Autoscaler: the scale subresource only.
		{verb: "get", group: "apps", resource: "deployments", subresource: "scale", namespace: other},
		{verb: "update", group: "apps", resource: "deployments", subresource: "scale", namespace: other},
		{verb: "patch", group: "apps", resource: "statefulsets", subresource: "scale", namespace: other},
		// Its kinds and their status.
		{verb: "list", group: kc, resource: "workloadoptimizers"},
		{verb: "watch", group: kc, resource: "costpolicies"},
		{verb: "patch", group: kc, resource: "workloadoptimizers", namespace: other},
		{verb: "update", group: kc, resource: "workloadoptimizers", subresource: "status", namespace: other},
		{verb: "patch", group: kc, resource: "costpolicies", subresource: "status"},
		{verb: "update", group: kc, resource: "powerpolicies", subresource: "status"},
		{verb: "update", group: kc, resource: "workloadoptimizers", subresource: "finalizers", namespace: other},
		{verb: "create", group: "events.k8s.io", resource: "events", namespace: other},
		// The catalog ConfigMaps (--catalog-configmap), and the events on them.
		{verb: "watch", resource: "configmaps", namespace: ns},
		{verb: "list", resource: "configmaps", namespace: ns},
		{verb: "create", group: "events.k8s.io", resource: "events", namespace: ns},
		// Authenticated metrics.
		{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews"},
		{verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews"},
		// Webhook certificates: its Secret and its two configurations.
		{verb: "get", resource: "secrets", namespace: ns, name: "kcloud-operator-webhook-certs"},
		{verb: "create", resource: "secrets", namespace: ns},
		{verb: "update", resource: "secrets", namespace: ns, name: "kcloud-operator-webhook-certs"},
		{verb: "watch", resource: "secrets", namespace: ns},
		{verb: "get", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: "kcloud-mutating-webhook-configuration"},
		{verb: "watch", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: "kcloud-mutating-webhook-configuration"},
		{verb: "update", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations", name: "kcloud-validating-webhook-configuration"},
		// Leader election in its namespace.
		{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: ns},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: ns, name: "kcloud-operator.kcloud.io"},
	}
	denied = []access{
		{verb: "get", resource: "secrets", namespace: "kube-system"},
		{verb: "list", resource: "secrets"},
		{verb: "get", resource: "secrets", namespace: other},
		{verb: "delete", resource: "secrets", namespace: ns},
		{verb: "create", resource: "pods", namespace: other},
		{verb: "delete", resource: "pods", namespace: other},
		{verb: "update", resource: "pods", namespace: other},
		{verb: "create", resource: "pods", subresource: "exec", namespace: other},
		{verb: "update", resource: "nodes"},
		{verb: "delete", resource: "nodes"},
		{verb: "update", resource: "configmaps", namespace: other},
		// ConfigMaps only in the catalog's namespace: none cluster-wide, none of other teams'.
		{verb: "list", resource: "configmaps"},
		{verb: "get", resource: "configmaps", namespace: other},
		{verb: "create", group: "apps", resource: "deployments", namespace: other},
		{verb: "update", group: "apps", resource: "deployments", namespace: other},
		{verb: "patch", group: "apps", resource: "deployments", namespace: other},
		{verb: "delete", group: "apps", resource: "deployments", namespace: other},
		{verb: "delete", group: "batch", resource: "jobs", namespace: other},
		{verb: "create", group: kc, resource: "workloadoptimizers", namespace: other},
		{verb: "delete", group: kc, resource: "workloadoptimizers", namespace: other},
		{verb: "delete", group: kc, resource: "costpolicies"},
		{verb: "update", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: "someone-elses-webhook"},
		{verb: "create", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations"},
		{verb: "delete", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations", name: "kcloud-validating-webhook-configuration"},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "kube-system", name: "kube-scheduler"},
		{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: other},
		{verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings"},
		{verb: "escalate", group: "rbac.authorization.k8s.io", resource: "clusterroles"},
		{verb: "update", group: "apiextensions.k8s.io", resource: "customresourcedefinitions"},
		{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: ns},
		{verb: "impersonate", resource: "users"},
	}
	return allowed, denied
}

// schedulerAccess is what kcloud-scheduler needs: kube-scheduler's own (the built-in roles) plus
// the plugin's, and a sample of what it must not do.
func schedulerAccess(ns string) (allowed, denied []access) {
	const kc = "kcloud.io"
	other := "team-a"
	allowed = []access{
		{verb: "watch", resource: "pods"},
		{verb: "watch", resource: "nodes"},
		{verb: "create", resource: "pods", subresource: "binding", namespace: other},
		{verb: "patch", resource: "pods", subresource: "status", namespace: other},
		{verb: "delete", resource: "pods", namespace: other}, // preemption
		{verb: "patch", resource: "pods", namespace: other},  // the GPU-share device index at PreBind
		{verb: "list", resource: "persistentvolumeclaims"},
		{verb: "update", resource: "persistentvolumes"},
		{verb: "list", group: "storage.k8s.io", resource: "storageclasses"},
		{verb: "list", group: "storage.k8s.io", resource: "csinodes"},
		{verb: "list", group: "policy", resource: "poddisruptionbudgets"},
		{verb: "list", group: "apps", resource: "replicasets"},
		{verb: "list", resource: "namespaces"},
		{verb: "create", group: "events.k8s.io", resource: "events", namespace: other},
		{verb: "list", group: kc, resource: "workloadoptimizers"},
		{verb: "watch", group: kc, resource: "costpolicies"},
		{verb: "watch", group: kc, resource: "powerpolicies"},
		{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: ns},
		{verb: "get", group: "coordination.k8s.io", resource: "leases", namespace: ns, name: "kcloud-scheduler"},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: ns, name: "kcloud-scheduler"},
		{verb: "get", resource: "configmaps", namespace: "kube-system", name: "extension-apiserver-authentication"},
		{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews"},
		// The catalog ConfigMap and its price source, watched by name (KcloudOptimizerArgs.catalogConfigMap).
		{verb: "watch", resource: "configmaps", namespace: ns, name: "kcloud-catalog"},
		{verb: "list", resource: "configmaps", namespace: ns, name: "kcloud-catalog-price-source"},
	}
	denied = []access{
		{verb: "update", group: kc, resource: "workloadoptimizers", namespace: other},
		{verb: "patch", group: kc, resource: "costpolicies"},
		{verb: "update", group: kc, resource: "workloadoptimizers", subresource: "status", namespace: other},
		{verb: "delete", group: kc, resource: "powerpolicies"},
		{verb: "get", resource: "secrets", namespace: ns},
		{verb: "list", resource: "secrets"},
		{verb: "create", resource: "pods", namespace: other},
		{verb: "update", resource: "pods", namespace: other},
		{verb: "update", resource: "nodes"},
		{verb: "delete", resource: "nodes"},
		{verb: "get", resource: "configmaps", namespace: other},
		{verb: "get", resource: "configmaps", namespace: ns, name: "kcloud-scheduler-config"},
		{verb: "update", resource: "configmaps", namespace: ns, name: "kcloud-catalog"},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: ns, name: "kcloud-operator.kcloud.io"},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "kube-system", name: "kube-controller-manager"},
		{verb: "update", group: "apps", resource: "deployments", subresource: "scale", namespace: other},
		{verb: "create", group: "apps", resource: "deployments", namespace: other},
		{verb: "update", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: "kcloud-mutating-webhook-configuration"},
		{verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", namespace: ns},
		{verb: "impersonate", resource: "serviceaccounts", namespace: ns},
	}
	return allowed, denied
}

// checkAccess asks the API server, through SubjectAccessReviews, whether the ServiceAccount
// ns/sa may make each request, as it would be authenticated (its user and groups).
func (c *cluster) checkAccess(t *testing.T, ns, sa string, allowed, denied []access) {
	t.Helper()
	user := "system:serviceaccount:" + ns + ":" + sa
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	ask := func(a access) bool {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: groups,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: a.verb, Group: a.group, Resource: a.resource,
				Subresource: a.subresource, Namespace: a.namespace, Name: a.name},
		}}
		res, err := c.cs.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SubjectAccessReview %s: %v", a, err)
		}
		return res.Status.Allowed
	}
	for _, a := range allowed {
		if !ask(a) {
			t.Errorf("%s may not %s; it needs to", user, a)
		}
	}
	for _, a := range denied {
		if ask(a) {
			t.Errorf("%s may %s; it must not", user, a)
		}
	}
	t.Logf("%s: %d needed requests allowed, %d others denied", user, len(allowed), len(denied))
}
