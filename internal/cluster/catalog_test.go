package cluster

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"kcloud.io/optimizer/pkg/catalog"
)

// A new catalog generation reprices a node at the same resource version, and makes a snapshot that
// is young by the clock stale: the user's prices changed.
func TestFleetFollowsTheCatalog(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	nodeIdx := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	podIdx := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	node := a100Node("a", true, false)
	if err := nodeIdx.Add(node); err != nil {
		t.Fatal(err)
	}
	store := catalog.NewStore(nil)
	f := New(nil, Options{Catalog: store, Clock: clk, Pods: IndexerStore{Indexer: podIdx}, Nodes: IndexerStore{Indexer: nodeIdx}})
	ctx := context.Background()

	// The embedded AWS list price of p4d.24xlarge.
	if got := f.Node(node).Econ.PricePerHour; got != 32.7726 {
		t.Fatalf("price before the ConfigMap = %g, want 32.7726", got)
	}
	before, err := f.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(&corev1.ConfigMap{Data: map[string]string{catalog.ConfigMapKeyPrices: "p4d.24xlarge,,,21.96\n"}}); err != nil {
		t.Fatal(err)
	}
	if got := f.Node(node).Econ.PricePerHour; got != 21.96 {
		t.Errorf("price after the ConfigMap = %g, want its 21.96", got)
	}
	after, err := f.Snapshot(ctx) // the clock has not moved
	if err != nil {
		t.Fatal(err)
	}
	if after == before || after.Econ[0].PricePerHour != 21.96 {
		t.Errorf("snapshot after the ConfigMap: rebuilt %v, price %g, want a rebuilt one at 21.96", after != before, after.Econ[0].PricePerHour)
	}
	if again, _ := f.Snapshot(ctx); again != after {
		t.Errorf("the next snapshot was rebuilt though neither the clock nor the catalog moved")
	}
}
