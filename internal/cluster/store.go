package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Store hands out the cache's own objects, read-only and uncopied. Listing through the client copies
// every object into the list (a 20,000-pod list is tens of megabytes of garbage per snapshot and per
// policy), so the operator gives the fleet the informers' indexers instead.
type Store interface {
	// Objects returns the objects of a namespace, of every namespace when it is empty.
	Objects(namespace string) ([]any, error)
	// Object returns the object of a key (namespace/name, or name when cluster-scoped).
	Object(key string) (any, bool, error)
}

// IndexerStore reads an informer's indexer; it refuses to answer before the informer has synced,
// so nothing is computed from half a fleet.
type IndexerStore struct {
	Indexer toolscache.Indexer
	Synced  func() bool
}

// ErrNotSynced is returned by an IndexerStore whose informer has not synced yet.
var ErrNotSynced = errors.New("the cache has not synced yet")

// Objects implements Store.
func (s IndexerStore) Objects(namespace string) ([]any, error) {
	if s.Synced != nil && !s.Synced() {
		return nil, ErrNotSynced
	}
	if namespace == "" {
		return s.Indexer.List(), nil
	}
	return s.Indexer.ByIndex(toolscache.NamespaceIndex, namespace)
}

// Object implements Store.
func (s IndexerStore) Object(key string) (any, bool, error) {
	if s.Synced != nil && !s.Synced() {
		return nil, false, ErrNotSynced
	}
	return s.Indexer.GetByKey(key)
}

// node returns a node from the cache, read-only.
func (f *Fleet) node(ctx context.Context, name string) (*corev1.Node, error) {
	if f.nodeStore != nil {
		o, ok, err := f.nodeStore.Object(name)
		if err != nil {
			return nil, err
		}
		n, isNode := o.(*corev1.Node)
		if !ok || !isNode {
			return nil, apierrors.NewNotFound(corev1.Resource("nodes"), name)
		}
		return n, nil
	}
	n := &corev1.Node{}
	if err := f.reader.Get(ctx, client.ObjectKey{Name: name}, n, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	return n, nil
}

// EachPod calls fn with every pod of a namespace (every namespace when empty). fn must not keep or
// modify the pod beyond reading it.
func (f *Fleet) EachPod(ctx context.Context, namespace string, fn func(*corev1.Pod)) error {
	if f.pods != nil {
		objs, err := f.pods.Objects(namespace)
		if err != nil {
			return fmt.Errorf("listing pods: %w", err)
		}
		for _, o := range objs {
			if pod, ok := o.(*corev1.Pod); ok {
				fn(pod)
			}
		}
		return nil
	}
	list := &corev1.PodList{}
	opts := []client.ListOption{client.UnsafeDisableDeepCopy}
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := f.reader.List(ctx, list, opts...); err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	for i := range list.Items {
		fn(&list.Items[i])
	}
	return nil
}

// nodesByName returns every node, sorted by name. The nodes are the cache's: read-only.
func (f *Fleet) nodesByName(ctx context.Context) ([]*corev1.Node, error) {
	var out []*corev1.Node
	if f.nodeStore != nil {
		objs, err := f.nodeStore.Objects("")
		if err != nil {
			return nil, fmt.Errorf("listing nodes: %w", err)
		}
		out = make([]*corev1.Node, 0, len(objs))
		for _, o := range objs {
			if n, ok := o.(*corev1.Node); ok {
				out = append(out, n)
			}
		}
	} else {
		list := &corev1.NodeList{}
		if err := f.reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("listing nodes: %w", err)
		}
		out = make([]*corev1.Node, len(list.Items))
		for i := range list.Items {
			out[i] = &list.Items[i]
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
