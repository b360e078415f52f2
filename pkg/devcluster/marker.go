package devcluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The local cluster says so in a ConfigMap of its own, so that commands which write example
// objects (kcloud run) can tell it from a cluster someone else runs, whatever kubeconfig points
// at it.
const (
	MarkerNamespace = "kube-public"
	MarkerName      = "kcloud-local-cluster"
)

// markLocal writes the marker ConfigMap, naming the state directory.
func markLocal(ctx context.Context, cs kubernetes.Interface, stateDir string) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: MarkerNamespace, Name: MarkerName,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "kcloud-dev"}},
		Data: map[string]string{
			"stateDir":  stateDir,
			"startedBy": "kcloud dev up",
		},
	}
	// The API server creates kube-public soon after it starts, maybe not yet.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: MarkerNamespace}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", MarkerNamespace, err)
	}
	_, err := cs.CoreV1().ConfigMaps(MarkerNamespace).Create(ctx, cm, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("writing the local cluster's marker ConfigMap %s/%s: %w", MarkerNamespace, MarkerName, err)
	}
	return nil
}

// IsLocal tells whether the cluster behind cs was started by kcloud dev up (it holds the marker).
// A cluster that does not let us read it is not the local one.
func IsLocal(ctx context.Context, cs kubernetes.Interface) (bool, error) {
	_, err := cs.CoreV1().ConfigMaps(MarkerNamespace).Get(ctx, MarkerName, metav1.GetOptions{})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return false, nil
	}
	return false, fmt.Errorf("reading ConfigMap %s/%s: %w", MarkerNamespace, MarkerName, err)
}
