package autoscaler

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kcloudv1alpha1 "kcloud.io/optimizer/api/v1alpha1"
	"kcloud.io/optimizer/internal/events"
	"kcloud.io/optimizer/pkg/model"
)

// Event actions.
const (
	actionAutoscale = "Autoscale"
	actionScale     = "Scale"
)

// Defaults of autoScaling's behaviour when the API server did not fill them in.
const (
	defaultStabilizationWindow = 300 * time.Second
	defaultLead                = 300 * time.Second
)

// Reasons of the ScalingLimited condition when a bound set the count: the bound's field.
const (
	reasonMinReplicas    = "MinReplicas"
	reasonMaxReplicas    = "MaxReplicas"
	reasonMaxCostPerHour = "MaxCostPerHour"
	reasonMaxPowerUsage  = "MaxPowerUsage"
	reasonBudget         = "Budget"
)

// behaviour is autoScaling's mode, stabilization window and lead time, defaulted.
type behaviour struct {
	mode   model.ScalingMode
	window time.Duration
	lead   time.Duration
}

func behaviourOf(as *kcloudv1alpha1.AutoScaling) behaviour {
	b := behaviour{mode: model.ScalingPredictive, window: defaultStabilizationWindow, lead: defaultLead}
	if as.Mode == kcloudv1alpha1.ScalingReactive {
		b.mode = model.ScalingReactive
	}
	if as.StabilizationWindowSeconds != nil {
		b.window = time.Duration(*as.StabilizationWindowSeconds) * time.Second
	}
	if as.LeadSeconds != nil {
		b.lead = time.Duration(*as.LeadSeconds) * time.Second
	}
	return b
}

// decide calls model.DecideReplicas with the histories, the stabilization window and the limits,
// and remembers the Holt-Winters factors it fitted and its recommendation.
func (r *Reconciler) decide(st *state) {
	b := behaviourOf(st.as)
	season := r.seasonSteps()
	// Holt-Winters factors are refitted once per 1/24 season (an hour of a day) and reused between.
	refit := int64(max(1, season/24))
	for i, t := range st.demandTypes {
		if h := st.mem.histories[t]; h.params != nil && st.slot-h.fittedAt < refit {
			st.demands[i].Params = h.params
		}
	}
	d := model.DecideReplicas(model.ScaleInput{
		Now: st.now, CurrentReplicas: st.scale.Spec.Replicas, Mode: b.mode, Metrics: st.demands,
		Step: r.step(), Season: season, Lead: b.lead, StabilizationWindow: b.window, Recent: st.mem.recent, Limits: st.limits,
	})
	for i, t := range st.demandTypes {
		if b.mode == model.ScalingPredictive && st.demands[i].Params == nil && d.Forecasts[i].Method == model.ForecastHoltWinters {
			p := d.Forecasts[i].Params
			h := st.mem.histories[t]
			h.params, h.fittedAt = &p, st.slot
		}
	}
	st.mem.recent = keepRecent(st.mem.recent, st.now, b.window, d.Recommendation)
	st.decision = d
}

// keepRecent is the recommendations of the window ending at now, with this step's replacing an
// earlier one of the same step.
func keepRecent(recent []model.Recommendation, now time.Time, window time.Duration, replicas int32) []model.Recommendation {
	kept := recent[:0:0]
	for _, rec := range recent {
		if now.Sub(rec.At) < window && !rec.At.Equal(now) {
			kept = append(kept, rec)
		}
	}
	return append(kept, model.Recommendation{At: now, Replicas: replicas})
}

// act sets ScalingLimited and writes the scale when the decision differs from the current count.
func (r *Reconciler) act(ctx context.Context, st *state) error {
	d := st.decision
	setScalingLimited(st)
	current := st.scale.Spec.Replicas
	if d.DesiredReplicas == current {
		return nil
	}
	if err := r.writeScale(ctx, st, d.DesiredReplicas); err != nil {
		msg := fmt.Sprintf("setting %d replicas: %v", d.DesiredReplicas, err)
		st.setCondition(kcloudv1alpha1.ConditionAbleToScale, metav1.ConditionFalse, kcloudv1alpha1.ReasonScaleFailed, msg,
			&events.Event{Type: corev1.EventTypeWarning, Reason: kcloudv1alpha1.ReasonScaleFailed, Action: actionAutoscale, Note: msg})
		if apierrors.IsConflict(err) {
			return nil // someone else scaled meanwhile: decide again at the next step
		}
		return fmt.Errorf("scaling: updating the scale of %s: %w", targetName(st), err)
	}
	st.scaled = true
	reason, direction := kcloudv1alpha1.ReasonScaledUp, "up"
	if d.DesiredReplicas < current {
		reason, direction = kcloudv1alpha1.ReasonScaledDown, "down"
	}
	metricScaleEvents.WithLabelValues(st.wo.Namespace, st.wo.Name, direction).Inc()
	ref := st.wo.Spec.TargetRef
	st.events = append(st.events, events.Event{Type: corev1.EventTypeNormal, Reason: reason, Action: actionScale,
		Note: fmt.Sprintf("%s %s from %d to %d replicas: %s", ref.Kind, ref.Name, current, d.DesiredReplicas, d.Reason)})
	log.FromContext(ctx).Info("Scaled target", "workloadOptimizer", klog.KObj(st.wo), "kind", ref.Kind,
		"target", ref.Name, "from", current, "to", d.DesiredReplicas, "reason", d.Reason)
	return nil
}

// setScalingLimited says whether a bound, not demand, set the count (with an event when it starts to).
func setScalingLimited(st *state) {
	d := st.decision
	reason := limitConditionReason(d.Limit)
	if reason == "" {
		st.setCondition(kcloudv1alpha1.ConditionScalingLimited, metav1.ConditionFalse, kcloudv1alpha1.ReasonWithinLimits,
			"the replica count is what demand asks for", nil)
		return
	}
	msg := fmt.Sprintf("%d replicas instead of %d: %s", d.DesiredReplicas, d.Recommendation, d.Reason)
	st.setCondition(kcloudv1alpha1.ConditionScalingLimited, metav1.ConditionTrue, reason, msg,
		&events.Event{Type: corev1.EventTypeNormal, Reason: kcloudv1alpha1.ReasonScaleLimited, Action: actionAutoscale,
			Note: fmt.Sprintf("held to %d replicas by %s: %s", d.DesiredReplicas, d.Limit, d.Reason)})
}

// limitConditionReason is the ScalingLimited reason of a model limit ("" when none held the count).
func limitConditionReason(l model.ScalingLimit) string {
	switch l {
	case model.LimitMinReplicas:
		return reasonMinReplicas
	case model.LimitMaxReplicas:
		return reasonMaxReplicas
	case model.LimitCostCap:
		return reasonMaxCostPerHour
	case model.LimitPowerCap:
		return reasonMaxPowerUsage
	case model.LimitBudget:
		return reasonBudget
	}
	return ""
}
