package autoscaler

import (
	"bytes"
	"context"
	"fmt"
	"text/template"
	"time"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/telemetry"
)

// Querier reads PromQL at an instant and over a range; *telemetry.Prometheus is one.
type Querier interface {
	QueryAt(ctx context.Context, promQL string, at time.Time) (float64, error)
	QueryRange(ctx context.Context, promQL string, start, end time.Time, step time.Duration) ([]telemetry.Sample, error)
}

// Default PromQL of the latency and throughput metrics, as text/template over QueryArgs. They follow
// the Prometheus client libraries' usual HTTP server metrics, with the namespace and pod labels that
// Prometheus's Kubernetes service discovery gives a scraped pod:
//   - throughput: the workload's total requests per second (threshold: per replica);
//   - latency: the 95th percentile request latency in milliseconds over the workload's pods.
//
// kcloud-operator's --autoscale-throughput-query and --autoscale-latency-query replace them.
const (
	DefaultThroughputQuery = `sum(rate(http_requests_total{namespace="{{.Namespace}}",pod=~"{{.Target}}-.*"}[2m]))`
	DefaultLatencyQuery    = `1000 * histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{.Namespace}}",pod=~"{{.Target}}-.*"}[2m])))`
)

// QueryArgs are what a query template may use.
type QueryArgs struct {
	Namespace string // the optimizer's (and its target's) namespace
	Name      string // the WorkloadOptimizer's name
	Target    string // spec.targetRef.name
}

// Queries are the PromQL templates of the latency and throughput metrics.
type Queries struct {
	Throughput, Latency string
	throughput, latency *template.Template
}

// Parse checks the templates, filling empty ones with the defaults.
func (q *Queries) Parse() error {
	if q.Throughput == "" {
		q.Throughput = DefaultThroughputQuery
	}
	if q.Latency == "" {
		q.Latency = DefaultLatencyQuery
	}
	var err error
	if q.throughput, err = template.New("throughput").Option("missingkey=error").Parse(q.Throughput); err != nil {
		return fmt.Errorf("throughput query template: %w", err)
	}
	if q.latency, err = template.New("latency").Option("missingkey=error").Parse(q.Latency); err != nil {
		return fmt.Errorf("latency query template: %w", err)
	}
	// Fail at start-up on a template that names an unknown field, not at the first reconcile.
	for _, t := range []*template.Template{q.throughput, q.latency} {
		if err := t.Execute(&bytes.Buffer{}, QueryArgs{}); err != nil {
			return fmt.Errorf("%s query template: %w", t.Name(), err)
		}
	}
	return nil
}

// For returns the PromQL of a metric for a workload: the spec's query for a prometheus metric, the
// template for latency and throughput, and "" for metrics that are not read through PromQL.
func (q *Queries) For(m kcloudv1alpha1.ScalingMetric, args QueryArgs) (string, error) {
	var t *template.Template
	switch m.Type {
	case kcloudv1alpha1.MetricPrometheus:
		return m.Query, nil
	case kcloudv1alpha1.MetricThroughput:
		t = q.throughput
	case kcloudv1alpha1.MetricLatency:
		t = q.latency
	default:
		return "", nil
	}
	if t == nil {
		if err := q.Parse(); err != nil {
			return "", err
		}
		return q.For(m, args)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, args); err != nil {
		return "", fmt.Errorf("%s query: %w", m.Type, err)
	}
	return b.String(), nil
}

// demandQuery reads back the demand the operator itself exported (kcloud_autoscaler_demand), for
// metrics whose history cannot be rebuilt from their own query (a per-replica value times the
// replicas of the time): it exists when Prometheus scrapes the operator.
func demandQuery(args QueryArgs, metric kcloudv1alpha1.MetricType) string {
	return fmt.Sprintf(`max(kcloud_autoscaler_demand{namespace=%q,name=%q,metric=%q})`, args.Namespace, args.Name, string(metric))
}
