package integration

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
)

const validationNamespace = "validation"

// A valid WorkloadOptimizer spec that each case breaks in exactly one place.
const validWO = `
apiVersion: kcloud.io/v1alpha1
kind: WorkloadOptimizer
metadata: {name: x, namespace: validation}
spec:
  workloadType: training
  priority: 80
  targetRef: {kind: Deployment, name: trainer}
  resources: {cpu: "16", memory: 64Gi, gpu: 4, npu: 0}
  costConstraints: {maxCostPerHour: 50.0, preferSpot: true, budgetLimit: 1200.0}
  powerConstraints: {maxPowerUsage: 2000.0, preferGreen: true}
  placementPolicy:
    nodeSelector: {accelerator: nvidia-gpu}
    affinity: [{type: gpu_workload, key: gpu.nvidia.com/class, value: compute, weight: 100}]
  autoScaling:
    minReplicas: 1
    maxReplicas: 10
    metrics: [{type: cost, threshold: 80}, {type: power, threshold: 1800}]
`

const validCostPolicy = `
apiVersion: kcloud.io/v1alpha1
kind: CostPolicy
metadata: {name: x}
spec:
  namespaces: [ml]
  maxCostPerHour: 100
  budget: {amount: 1000, period: month, alertThresholds: [80, 100]}
  spotPolicy: prefer
  enforcement: deny
`

const validPowerPolicy = `
apiVersion: kcloud.io/v1alpha1
kind: PowerPolicy
metadata: {name: x}
spec:
  maxPowerWatts: 5000
  energyBudget: {kilowattHours: 800, period: week}
  maxCarbonIntensity: 300
  enforcement: warn
`

// invalidCases each set one field of a valid object (by path) and name the field and rule the API
// server's refusal must mention.
var invalidCases = []struct {
	name      string
	base      string
	path      []string
	value     any // nil deletes the field
	wantField string
	wantRule  string
}{
	{"unknown workload type", validWO, []string{"spec", "workloadType"}, "gaming", "spec.workloadType", "supported values"},
	{"missing workload type", validWO, []string{"spec", "workloadType"}, nil, "spec.workloadType", "Required"},
	{"priority above 100", validWO, []string{"spec", "priority"}, 101, "spec.priority", "less than or equal to 100"},
	{"priority below 0", validWO, []string{"spec", "priority"}, -1, "spec.priority", "greater than or equal to 0"},
	{"negative gpu count", validWO, []string{"spec", "resources", "gpu"}, -2, "spec.resources.gpu", "greater than or equal to 0"},
	{"negative npu count", validWO, []string{"spec", "resources", "npu"}, -1, "spec.resources.npu", "greater than or equal to 0"},
	{"negative cpu", validWO, []string{"spec", "resources", "cpu"}, "-4", "spec.resources.cpu", "must not be negative"},
	{"negative memory", validWO, []string{"spec", "resources", "memory"}, "-1Gi", "spec.resources.memory", "must not be negative"},
	{"negative hourly cost cap", validWO, []string{"spec", "costConstraints", "maxCostPerHour"}, -5.0, "spec.costConstraints.maxCostPerHour", "greater than or equal to 0"},
	{"negative budget", validWO, []string{"spec", "costConstraints", "budgetLimit"}, -1.0, "spec.costConstraints.budgetLimit", "greater than or equal to 0"},
	{"unknown budget period", validWO, []string{"spec", "costConstraints", "budgetPeriod"}, "decade", "spec.costConstraints.budgetPeriod", "supported values"},
	{"negative power cap", validWO, []string{"spec", "powerConstraints", "maxPowerUsage"}, -100.0, "spec.powerConstraints.maxPowerUsage", "greater than or equal to 0"},
	{"minReplicas above maxReplicas", validWO, []string{"spec", "autoScaling", "minReplicas"}, 11, "spec.autoScaling.minReplicas", "less than or equal to autoScaling.maxReplicas"},
	{"maxReplicas zero", validWO, []string{"spec", "autoScaling", "maxReplicas"}, 0, "spec.autoScaling.maxReplicas", "greater than or equal to 1"},
	{"unknown metric type", validWO, []string{"spec", "autoScaling", "metrics"}, []any{map[string]any{"type": "vibes", "threshold": 1}}, "spec.autoScaling.metrics[0].type", "supported values"},
	{"duplicate metric type", validWO, []string{"spec", "autoScaling", "metrics"}, []any{map[string]any{"type": "power", "threshold": 1}, map[string]any{"type": "power", "threshold": 2}}, "spec.autoScaling.metrics[1]", "Duplicate value"},
	{"gpu utilization above 100 percent", validWO, []string{"spec", "autoScaling", "metrics"}, []any{map[string]any{"type": "gpuUtilization", "threshold": 120}}, "spec.autoScaling.metrics[0].threshold", "at most 100"},
	{"negative threshold", validWO, []string{"spec", "autoScaling", "metrics"}, []any{map[string]any{"type": "latency", "threshold": -3}}, "spec.autoScaling.metrics[0].threshold", "greater than or equal to 0"},
	{"prometheus metric without query", validWO, []string{"spec", "autoScaling", "metrics"}, []any{map[string]any{"type": "prometheus", "threshold": 3}}, "spec.autoScaling.metrics[0].query", "required for a metric of type prometheus"},
	{"query on a non-prometheus metric", validWO, []string{"spec", "autoScaling", "metrics"}, []any{map[string]any{"type": "latency", "threshold": 3, "query": "up"}}, "spec.autoScaling.metrics[0].query", "not allowed for other types"},
	{"cost metric without an hourly cap", validWO, []string{"spec", "costConstraints"}, map[string]any{"preferSpot": true}, "spec.autoScaling.metrics", "costConstraints.maxCostPerHour, which must be set"},
	{"affinity weight out of range", validWO, []string{"spec", "placementPolicy", "affinity"}, []any{map[string]any{"type": "zone", "key": "topology.kubernetes.io/zone", "weight": 101}}, "spec.placementPolicy.affinity[0].weight", "less than or equal to 100"},
	{"affinity key not a label key", validWO, []string{"spec", "placementPolicy", "affinity"}, []any{map[string]any{"type": "zone", "key": "not a key!"}}, "spec.placementPolicy.affinity[0].key", "should match"},
	{"unknown target kind", validWO, []string{"spec", "targetRef", "kind"}, "Pod", "spec.targetRef.kind", "supported values"},
	{"target without name", validWO, []string{"spec", "targetRef", "name"}, nil, "spec.targetRef.name", "Required"},

	{"cost policy without any limit", validCostPolicy, []string{"spec"}, map[string]any{"namespaces": []any{"ml"}}, "spec", "at least one of maxCostPerHour, budget or spotPolicy"},
	{"cost policy zero budget", validCostPolicy, []string{"spec", "budget", "amount"}, 0, "spec.budget.amount", "greater than 0"},
	{"cost policy unknown period", validCostPolicy, []string{"spec", "budget", "period"}, "fortnight", "spec.budget.period", "supported values"},
	{"cost policy alert threshold above 100", validCostPolicy, []string{"spec", "budget", "alertThresholds"}, []any{80, 150}, "spec.budget.alertThresholds[1]", "less than or equal to 100"},
	{"cost policy duplicate alert threshold", validCostPolicy, []string{"spec", "budget", "alertThresholds"}, []any{80, 80}, "spec.budget.alertThresholds[1]", "Duplicate value"},
	{"cost policy unknown spot policy", validCostPolicy, []string{"spec", "spotPolicy"}, "sometimes", "spec.spotPolicy", "supported values"},
	{"cost policy unknown enforcement", validCostPolicy, []string{"spec", "enforcement"}, "shout", "spec.enforcement", "supported values"},
	{"cost policy bad namespace name", validCostPolicy, []string{"spec", "namespaces"}, []any{"Not_A_Namespace"}, "spec.namespaces[0]", "should match"},
	{"cost policy negative cap", validCostPolicy, []string{"spec", "maxCostPerHour"}, -1, "spec.maxCostPerHour", "greater than or equal to 0"},

	{"power policy without any limit", validPowerPolicy, []string{"spec"}, map[string]any{"preferGreen": false}, "spec", "at least one of maxPowerWatts, energyBudget, maxCarbonIntensity or preferGreen"},
	{"power policy negative cap", validPowerPolicy, []string{"spec", "maxPowerWatts"}, -10, "spec.maxPowerWatts", "greater than or equal to 0"},
	{"power policy zero energy budget", validPowerPolicy, []string{"spec", "energyBudget", "kilowattHours"}, 0, "spec.energyBudget.kilowattHours", "greater than 0"},
	{"power policy carbon limit out of range", validPowerPolicy, []string{"spec", "maxCarbonIntensity"}, 5000, "spec.maxCarbonIntensity", "less than or equal to 2000"},
	{"power policy unknown enforcement", validPowerPolicy, []string{"spec", "enforcement"}, "pray", "spec.enforcement", "supported values"},
}

func parseObject(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		t.Fatalf("parsing: %v", err)
	}
	return obj
}

// TestValidObjectsAccepted guards the table below: each base object must be valid, or every invalid
// case would pass for the wrong reason.
func TestValidObjectsAccepted(t *testing.T) {
	ensureNamespace(t, validationNamespace)
	for _, doc := range []string{validWO, validCostPolicy, validPowerPolicy} {
		obj := parseObject(t, doc)
		obj.SetName("valid-" + strings.ToLower(obj.GetKind()))
		if err := k8sClient.Create(context.Background(), obj, client.DryRunAll); err != nil {
			t.Errorf("valid %s refused: %v", obj.GetKind(), err)
		}
	}
}

func TestInvalidObjectsRefused(t *testing.T) {
	ensureNamespace(t, validationNamespace)
	for _, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			obj := parseObject(t, tc.base)
			if tc.value == nil {
				unstructured.RemoveNestedField(obj.Object, tc.path...)
			} else if err := unstructured.SetNestedField(obj.Object, jsonValue(tc.value), tc.path...); err != nil {
				t.Fatalf("setting %v: %v", tc.path, err)
			}
			err := k8sClient.Create(context.Background(), obj, client.DryRunAll)
			if err == nil {
				t.Fatalf("invalid object accepted; want a refusal naming %s", tc.wantField)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			msg := err.Error()
			t.Logf("refused: %s", msg)
			if !strings.Contains(msg, tc.wantField+":") {
				t.Errorf("message does not name field %q: %s", tc.wantField, msg)
			}
			if !strings.Contains(msg, tc.wantRule) {
				t.Errorf("message does not state the rule %q: %s", tc.wantRule, msg)
			}
		})
	}
}

// jsonValue converts Go literals to the types unstructured objects hold.
func jsonValue(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = jsonValue(x[i])
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	}
	return v
}

// TestStatusValidatedAndStoredObjectKept checks that an invalid update (spec or status) is refused
// and leaves the stored object as it was.
func TestStatusValidatedAndStoredObjectKept(t *testing.T) {
	ctx := context.Background()
	ensureNamespace(t, validationNamespace)
	wo := &kcloudv1alpha1.WorkloadOptimizer{}
	if err := yaml.Unmarshal([]byte(validWO), wo); err != nil {
		t.Fatal(err)
	}
	wo.Name = "kept"
	if err := k8sClient.Create(ctx, wo); err != nil {
		t.Fatalf("create: %v", err)
	}
	stored := wo.DeepCopy()

	bad := stored.DeepCopy()
	bad.Spec.AutoScaling.MinReplicas = 20
	err := k8sClient.Update(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), "spec.autoScaling.minReplicas:") {
		t.Fatalf("invalid spec update: want refusal naming spec.autoScaling.minReplicas, got %v", err)
	}

	badStatus := stored.DeepCopy()
	badStatus.Status.OptimizationScore = 1.5
	err = k8sClient.Status().Update(ctx, badStatus)
	if err == nil || !strings.Contains(err.Error(), "status.optimizationScore:") {
		t.Fatalf("invalid status update: want refusal naming status.optimizationScore, got %v", err)
	}

	got := &kcloudv1alpha1.WorkloadOptimizer{}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(wo), got); err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.ResourceVersion != stored.ResourceVersion || got.Spec.AutoScaling.MinReplicas != 1 || got.Status.OptimizationScore != 0 {
		t.Errorf("stored object changed by refused updates: rv %s→%s, minReplicas %d, score %v",
			stored.ResourceVersion, got.ResourceVersion, got.Spec.AutoScaling.MinReplicas, got.Status.OptimizationScore)
	}
}
