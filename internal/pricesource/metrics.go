package pricesource

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// sourceOpenCost is the source label of the metrics below; a label, so that a second price source
// adds series instead of metrics.
const sourceOpenCost = "opencost"

// Registered in controller-runtime's registry, beside internal/metrics' gauges, so the manager's
// metrics endpoint serves them; kept here because only the poller sets them.
var (
	sourceUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_price_source_up",
		Help: "1 when the last poll of the price source's Prometheus series succeeded, 0 when a query failed (the last written prices stay).",
	}, []string{"source"})
	sourceNodes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kcloud_price_source_nodes",
		Help: "Nodes priced in the price-source ConfigMap as last written or confirmed.",
	}, []string{"source"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(sourceUp, sourceNodes)
}
