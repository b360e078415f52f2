// Package nodeeconomics makes a node's price and power visible: for each node it exports whether
// the catalog prices and powers it (kcloud_node_priced, kcloud_node_powered) and its price, and
// emits a Warning event on the node when it turns unpriced or unpowered, naming the reason and how
// to give it a figure. It reads the economics the rest of the operator uses (cluster.Fleet).
package nodeeconomics

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	k8sevents "k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/internal/events"
	"kcloud.io/optimizer/internal/metrics"
)

// Event reasons on nodes.
const (
	ReasonNodeUnpriced  = "NodeUnpriced"
	ReasonNodeUnpowered = "NodeUnpowered"
	ReasonNodePriced    = "NodePriced"
)

// Reconciler reports one node's economics.
type Reconciler struct {
	Client   client.Client
	Fleet    *cluster.Fleet
	Recorder k8sevents.EventRecorder

	mu   sync.Mutex
	last map[string]state // what was last reported per node, so events mark changes only
}

// state is what a node's economics say is missing.
type state struct{ unpriced, unpowered, err string }

// Reconcile exports the node's figures and records an event when what is missing changes.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	node := &corev1.Node{}
	if err := r.Client.Get(ctx, req.NamespacedName, node); err != nil {
		if apierrors.IsNotFound(err) {
			metrics.ForgetNode(req.Name)
			r.remember(req.Name, nil)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("reading node %s: %w", req.Name, err)
	}
	e := r.Fleet.Node(node)
	now := state{unpriced: e.Econ.Unpriced, unpowered: e.Econ.Unpowered}
	if e.Err != nil {
		now = state{err: e.Err.Error()}
	}
	metrics.NodePriced.WithLabelValues(node.Name).Set(flag(now.unpriced == "" && now.err == ""))
	metrics.NodePowered.WithLabelValues(node.Name).Set(flag(now.unpowered == "" && now.err == ""))
	if now.unpriced == "" && now.err == "" {
		metrics.NodePrice.WithLabelValues(node.Name).Set(e.Econ.PricePerHour)
	} else {
		metrics.NodePrice.DeleteLabelValues(node.Name)
	}
	before := r.remember(node.Name, &now)
	evs := transitions(before, now)
	events.Record(r.Recorder, node, nil, evs)
	if len(evs) > 0 {
		log.FromContext(ctx).Info("Node economics changed", "node", klog.KObj(node), "unpriced", now.unpriced, "unpowered", now.unpowered, "error", now.err)
	}
	return reconcile.Result{RequeueAfter: time.Minute}, nil
}

// transitions are the events of a change from before (nil: never seen) to now. A node first seen
// with everything known gets none.
func transitions(before *state, now state) []events.Event {
	var was state
	if before != nil {
		was = *before
	}
	var evs []events.Event
	if now.err != "" && now.err != was.err {
		evs = append(evs, events.Event{Type: corev1.EventTypeWarning, Reason: ReasonNodeUnpriced, Action: "Price", Note: now.err})
	}
	if now.unpriced != "" && now.unpriced != was.unpriced {
		evs = append(evs, events.Event{Type: corev1.EventTypeWarning, Reason: ReasonNodeUnpriced, Action: "Price",
			Note: now.unpriced + "; pods under a cost cap or budget will not be placed here"})
	}
	if now.unpowered != "" && now.unpowered != was.unpowered {
		evs = append(evs, events.Event{Type: corev1.EventTypeWarning, Reason: ReasonNodeUnpowered, Action: "Price",
			Note: now.unpowered + "; pods under a power cap or energy budget will not be placed here"})
	}
	if before != nil && (was.unpriced != "" || was.err != "") && now.unpriced == "" && now.err == "" {
		evs = append(evs, events.Event{Type: corev1.EventTypeNormal, Reason: ReasonNodePriced, Action: "Price", Note: "the node has a price again"})
	}
	return evs
}

// remember stores what was reported for a node (nil: forget it) and returns what was before.
func (r *Reconciler) remember(name string, s *state) *state {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]state{}
	}
	var before *state
	if b, ok := r.last[name]; ok {
		before = &b
	}
	if s == nil {
		delete(r.last, name)
	} else {
		r.last[name] = *s
	}
	return before
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// SetupWithManager reconciles a node when it appears and when its labels, annotations or
// allocatable change (what prices it), not on every status heartbeat; Reconcile requeues each node
// every minute so that a change of the catalog shows within a minute too.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("nodeeconomics").
		For(&corev1.Node{}, builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			before, after := e.ObjectOld.(*corev1.Node), e.ObjectNew.(*corev1.Node)
			return !maps.Equal(before.Labels, after.Labels) || !maps.Equal(before.Annotations, after.Annotations) ||
				!equality.Semantic.DeepEqual(before.Status.Allocatable, after.Status.Allocatable)
		}})).
		Complete(r)
}
