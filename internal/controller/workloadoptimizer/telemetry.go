package workloadoptimizer

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/cluster"
	"kcloud.io/optimizer/internal/events"
)

// telemetryFresh sets TelemetryFresh from how the running pods' power was found: measured, measured
// once but too long ago, or never; and from the last read of telemetry. A Warning event marks each turn
// to False (or a new reason for it). Without telemetry the condition is absent.
func telemetryFresh(st *state, tel cluster.TelemetryState, was *metav1.Condition) {
	wo := st.wo
	if !tel.Configured {
		meta.RemoveStatusCondition(&wo.Status.Conditions, kcloudv1alpha1.ConditionTelemetryFresh)
		return
	}
	var measured, stale, modelled []string
	var sources []string
	for _, rp := range st.running {
		switch {
		case rp.fig.PowerSource != cluster.SourceCatalog:
			measured = append(measured, rp.pod.Name)
			sources = append(sources, rp.fig.PowerSource)
		case !rp.fig.PowerStale.IsZero():
			stale = append(stale, fmt.Sprintf("%s (last measured %s)", rp.pod.Name, rp.fig.PowerStale.UTC().Format(time.RFC3339)))
		default:
			modelled = append(modelled, rp.pod.Name)
		}
	}
	n := len(st.running)
	c := metav1.Condition{Type: kcloudv1alpha1.ConditionTelemetryFresh, ObservedGeneration: wo.Generation}
	switch {
	case n == 0:
		c.Status, c.Reason = metav1.ConditionUnknown, kcloudv1alpha1.ReasonNoRunningPods
		c.Message = "no pod of the workload runs, so none is measured"
	case tel.Err != nil && len(measured) < n:
		c.Status, c.Reason = metav1.ConditionFalse, kcloudv1alpha1.ReasonTelemetryFailing
		c.Message = fmt.Sprintf("reading measured power from Prometheus fails (%v); %d of %d running pod(s) use the catalog power model: %s",
			tel.Err, n-len(measured), n, names(append(stale, modelled...)))
	case len(stale) > 0:
		c.Status, c.Reason = metav1.ConditionFalse, kcloudv1alpha1.ReasonMeasuredPowerStale
		c.Message = fmt.Sprintf("%d running pod(s) have had no power reading for over %v and use the catalog power model: %s",
			len(stale), tel.StaleAfter, names(stale))
	case len(measured) == 0:
		c.Status, c.Reason = metav1.ConditionUnknown, kcloudv1alpha1.ReasonNotMeasured
		c.Message = fmt.Sprintf("no exporter reports the workload's %d running pod(s); their power is the catalog model", n)
	default:
		c.Status, c.Reason = metav1.ConditionTrue, kcloudv1alpha1.ReasonMeasuredPowerFresh
		c.Message = fmt.Sprintf("%d of %d running pod(s) measured (%s)", len(measured), n, cluster.CombineSources(sources))
		if len(modelled) > 0 {
			c.Message += "; no exporter reports the others, which use the catalog power model: " + names(modelled)
		}
	}
	meta.SetStatusCondition(&wo.Status.Conditions, c)
	if c.Status == metav1.ConditionFalse && (was == nil || was.Status != metav1.ConditionFalse || was.Reason != c.Reason) {
		st.events = append(st.events, events.Event{Type: corev1.EventTypeWarning, Reason: c.Reason, Action: "MeasurePower", Note: c.Message})
	}
}

// names lists at most five pods, and how many more there are.
func names(pods []string) string {
	if len(pods) > 5 {
		pods = append(pods[:5:5], fmt.Sprintf("and %d more", len(pods)-5))
	}
	return strings.Join(pods, ", ")
}
