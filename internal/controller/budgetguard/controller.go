// Package budgetguard evicts the pods that admission let through after a deny-mode budget covering
// them had run out. The pod webhooks fail open (a broken webhook must never stop a cluster from
// running pods), so a pod created while no operator replica answered, or in the moment one died,
// is not refused; the guard judges every new pod at its creation time by the rule the webhook uses
// (accounting.Budgets.Spent) and evicts it, with an event. A spent budget so lets a pod run only
// as long as it takes a replica to see it.
package budgetguard

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	ctrlevent "sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/accounting"
	"kcloud.io/optimizer/pkg/kube"
)

// Reconciler judges one pod at a time.
type Reconciler struct {
	Client   client.Client
	Budgets  *accounting.Budgets
	Recorder events.EventRecorder
	// Exempt are the namespaces the pod webhooks skip (kube-system and the operator's own).
	Exempt []string
}

// retryBlocked is how soon an eviction a PodDisruptionBudget refused is tried again.
const retryBlocked = 10 * time.Second

// Reconcile evicts the pod when it was created after a deny-mode budget covering it had run out.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pod := &corev1.Pod{}
	if err := r.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !r.judged(pod) {
		return reconcile.Result{}, nil
	}
	policies, err := accounting.PoliciesFrom(ctx, r.Client)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	spent, err := r.Budgets.Spent(ctx, policies.For(pod, nil).Limits, pod.CreationTimestamp.Time)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("pod %s/%s: judging its budgets: %w", pod.Namespace, pod.Name, err)
	}
	if len(spent) == 0 {
		return reconcile.Result{}, nil
	}
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace}}
	switch err := r.Client.SubResource("eviction").Create(ctx, pod, ev); {
	case apierrors.IsNotFound(err):
		return reconcile.Result{}, nil
	case apierrors.IsTooManyRequests(err): // a PodDisruptionBudget allows no disruption now
		log.FromContext(ctx).Info("Eviction of a pod created over its budget blocked; retrying", "pod", klog.KObj(pod), "error", err.Error())
		return reconcile.Result{RequeueAfter: retryBlocked}, nil
	case err != nil:
		return reconcile.Result{}, fmt.Errorf("pod %s/%s: evicting: %w", pod.Namespace, pod.Name, err)
	}
	note := fmt.Sprintf("Created at %s after a deny-mode budget had run out, and admission did not refuse it (the pod webhook fails open): %s",
		pod.CreationTimestamp.UTC().Format(time.RFC3339), strings.Join(spent, "; "))
	log.FromContext(ctx).Info("Evicted a pod created over its budget", "pod", klog.KObj(pod), "budgets", spent)
	r.Recorder.Eventf(pod, nil, corev1.EventTypeWarning, kcloudv1alpha1.ReasonEvictedOverBudget, "Evict", "%s", note)
	return reconcile.Result{}, nil
}

// judged reports whether the guard judges the pod: one the pod webhooks would have judged, neither
// going nor ended, nor a node's own (a DaemonSet's or a mirror pod, which their controllers would
// only create again).
func (r *Reconciler) judged(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed ||
		kube.NodeOverhead(pod) || pod.Annotations[kube.AnnotationIgnore] == "true" {
		return false
	}
	for _, ns := range r.Exempt {
		if pod.Namespace == ns {
			return false
		}
	}
	return true
}

// SetupWithManager judges each pod once, when the cache first holds it; a pod's creation time
// never changes, and nor does the verdict except through what the cache learns late.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("budgetguard").
		For(&corev1.Pod{}, builder.WithPredicates(predicate.Funcs{
			UpdateFunc:  func(ctrlevent.UpdateEvent) bool { return false },
			DeleteFunc:  func(ctrlevent.DeleteEvent) bool { return false },
			GenericFunc: func(ctrlevent.GenericEvent) bool { return false },
		})).
		// Every replica, not only the leader: a pod that slipped past admission while the leader
		// died is judged by the replica still running, at once.
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, workers), NeedLeaderElection: ptr.To(false)}).
		Complete(r)
}
