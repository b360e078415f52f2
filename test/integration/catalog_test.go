package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"

	"kcloud.io/optimizer/pkg/catalog"
	"kcloud.io/optimizer/pkg/catalog/watch"
)

// TestWatchedCatalog runs the catalog watch kcloud-scheduler uses against a real API server: a good
// ConfigMap is applied, a bad one refused with a Warning naming the key, line and field while the
// last good prices stay, the price source layers on top, and deleting the ConfigMap returns to
// the defaults.
func TestWatchedCatalog(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ns := "catalog-watch"
	ensureNamespace(t, ns)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := catalog.NewStore(nil)
	rec := events.NewFakeRecorder(16)
	ref := watch.Ref{Namespace: ns, Name: "kcloud-catalog"}
	// Another ConfigMap in the namespace is none of the catalog's business.
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unrelated"}, Data: map[string]string{"prices.csv": "not,a,catalog"}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := watch.Informers(ctx, cs, ref, store, rec); err != nil {
		t.Fatal(err)
	}
	a2 := catalog.NodeFacts{Name: "gpu-1", InstanceType: "a2-highgpu-1g"}
	priceIs := func(what string, want catalog.Price) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			cat, _ := store.Current()
			got, err := cat.Price(a2)
			if err == nil && got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: price %+v (%v), want %+v", what, got, err, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	event := func(what, want string) {
		t.Helper()
		select {
		case e := <-rec.Events:
			if !strings.HasPrefix(e, want) {
				t.Errorf("%s: event %q, want it to start with %q", what, e, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no event, want %q", what, want)
		}
	}
	priceIs("no ConfigMap", catalog.Price{USDPerHour: 3.673385, Source: "instance:gcp:a2-highgpu-1g:us-central1"})

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ref.Name},
		Data: map[string]string{catalog.ConfigMapKeyPrices: "instance_type,capacity_type,region,usd_per_hour\na2-highgpu-1g,,,2.5\n"}}
	if cm, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	priceIs("good ConfigMap", catalog.Price{USDPerHour: 2.5, Source: "configmap"})
	event("good ConfigMap", "Normal CatalogApplied catalog ConfigMap catalog-watch/kcloud-catalog applied")

	cm.Data[catalog.ConfigMapKeyPrices] = "instance_type,capacity_type,region,usd_per_hour\na2-highgpu-1g,,,2,5\n"
	if _, err = cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	event("bad ConfigMap", `Warning CatalogRejected catalog ConfigMap catalog-watch/kcloud-catalog: configmap key "prices.csv" line 2: 5 fields, want 4 to 4`)
	priceIs("after the bad ConfigMap", catalog.Price{USDPerHour: 2.5, Source: "configmap"})
	if ok, _ := store.Valid(); ok {
		t.Errorf("the store says the refused ConfigMap is valid")
	}

	ps := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ref.PriceSource().Name},
		Data: map[string]string{catalog.PriceSourceKey: "node,usd_per_hour,source\ngpu-1,1.75,opencost\n"}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, ps, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	event("price source", "Normal CatalogApplied price-source ConfigMap catalog-watch/kcloud-catalog-price-source applied")
	// The prices.csv row for the instance type is the user's and beats the price source; after the
	// catalog ConfigMap goes, the price source prices the node.
	priceIs("price source under prices.csv", catalog.Price{USDPerHour: 2.5, Source: "configmap"})

	if err := cs.CoreV1().ConfigMaps(ns).Delete(ctx, ref.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	priceIs("catalog ConfigMap deleted", catalog.Price{USDPerHour: 1.75, Source: "opencost"})
	if ok, _ := store.Valid(); !ok {
		t.Errorf("after the delete the store still reports the refused ConfigMap")
	}
	if err := cs.CoreV1().ConfigMaps(ns).Delete(ctx, ref.PriceSource().Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	priceIs("both deleted: the defaults", catalog.Price{USDPerHour: 3.673385, Source: "instance:gcp:a2-highgpu-1g:us-central1"})
}
