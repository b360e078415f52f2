package nodeview

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kcloud.io/optimizer/pkg/catalog"
)

// A node's cached facts hold for one catalog generation: the same node object is priced again
// once the user's ConfigMap changes the catalog.
func TestFactsFollowTheCatalog(t *testing.T) {
	store := catalog.NewStore(nil)
	s := New(store)
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", ResourceVersion: "7", Labels: map[string]string{catalog.LabelInstanceType: "a2-highgpu-1g"}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("12"), corev1.ResourceMemory: resource.MustParse("85Gi"), catalog.ResourceNVIDIAGPU: resource.MustParse("1"),
		}},
	}
	if got := s.Facts(node).Econ.PricePerHour; got != 3.673385 {
		t.Fatalf("price before the ConfigMap = %g, want the GCP list price 3.673385", got)
	}
	if _, err := store.Update(&corev1.ConfigMap{Data: map[string]string{catalog.ConfigMapKeyPrices: "a2-highgpu-1g,,,2.5\n"}}); err != nil {
		t.Fatal(err)
	}
	if got := s.Facts(node).Econ.PricePerHour; got != 2.5 {
		t.Errorf("price after the ConfigMap = %g, want its 2.5", got)
	}
	heartbeat := node.DeepCopy()
	heartbeat.ResourceVersion = "8"
	if got := s.Facts(heartbeat).Econ.PricePerHour; got != 2.5 {
		t.Errorf("price of the next object = %g, want 2.5", got)
	}
}
