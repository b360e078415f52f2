package deploy

import (
	"context"
	"slices"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestMakeInstallDeploy runs the product description's "Kubernetes 배포" steps on a fresh cluster:
// `make install` (the CRDs), `make deploy` (config/default: the operator, its webhooks, the
// scheduler, RBAC, in a namespace that enforces Pod Security "restricted"), then its checks. Every
// object kustomize renders must be in the cluster, every pod admitted and Running, and both
// ServiceAccounts limited to what they need.
func TestMakeInstallDeploy(t *testing.T) {
	c := startCluster(t)
	const ns = "kcloud-operator-system"

	checkCRDListing(t, c.run(t, "make -s install\nkubectl get crd | grep kcloud.io"))
	if _, err := c.cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); err == nil {
		t.Errorf("make install created namespace %s; it installs the CRDs only", ns)
	}

	c.run(t, "make -s deploy")
	out := c.run(t, "kubectl get pods -n kcloud-operator-system\nkubectl get crd | grep kcloud.io")
	checkCRDListing(t, out)

	objs := kustomize(t, "config/default")
	c.checkExist(t, objs)
	deps := checkPodSecurity(t, objs)
	if got := mapsKeys(deps); !slices.Equal(got, []string{"kcloud-operator", "kcloud-scheduler"}) {
		t.Fatalf("config/default Deployments %v", got)
	}
	checkOperatorDeployment(t, deps["kcloud-operator"])
	want := map[string]int32{"kcloud-operator": 2, "kcloud-scheduler": 2}
	c.waitRunning(t, ns, want)
	nsObj, err := c.cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nsObj.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace %s labels %v: want Pod Security restricted enforced", ns, nsObj.Labels)
	}
	// The pods were created under enforcement; a privileged one is refused.
	c.enforceRestricted(t, ns, want)
	for _, wh := range append(byKind(objs, "MutatingWebhookConfiguration"), byKind(objs, "ValidatingWebhookConfiguration")...) {
		checkWebhookTargets(t, wh, ns, "kcloud-webhook-service")
	}
	c.checkNoWildcard(t, objs)
	allowed, denied := operatorAccess(ns)
	c.checkAccess(t, ns, "kcloud-operator", allowed, denied)
	allowed, denied = schedulerAccess(ns)
	c.checkAccess(t, ns, "kcloud-scheduler", allowed, denied)

	// Applying again changes nothing and fails nothing (server-side apply is idempotent).
	c.run(t, "make -s deploy")

	t.Run("binaries as the ServiceAccounts", func(t *testing.T) {
		c.runAsServiceAccounts(t, ns, "kcloud-operator", "kcloud-scheduler")
		// A later `make deploy` leaves the CA bundle the operator injected alone: the manifests do
		// not carry the field, and server-side apply keeps another manager's fields.
		c.run(t, "make -s deploy")
		for _, name := range []string{"kcloud-validating-webhook-configuration"} {
			v, err := c.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range v.Webhooks {
				if len(w.ClientConfig.CABundle) == 0 {
					t.Errorf("%s webhook %s lost its CA bundle to make deploy", name, w.Name)
				}
			}
		}
	})

	// `make undeploy` removes it all, the CRDs and the namespace included.
	c.run(t, "make -s undeploy")
	ctx := context.Background()
	for _, crd := range kcloudCRDs {
		if _, err := c.dyn.Resource(crdGVR).Get(ctx, crd, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("CRD %s after make undeploy: %v", crd, err)
		}
	}
	if _, err := c.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s after make undeploy: %v", ns, err)
	}
	if _, err := c.cs.RbacV1().ClusterRoles().Get(ctx, "kcloud-operator", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRole kcloud-operator after make undeploy: %v", err)
	}
}
