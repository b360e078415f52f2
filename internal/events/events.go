// Package events holds events as values: a reconcile collects them while it works and records them
// once its status is written, so that a failed write records nothing it did not do.
package events

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// Event is one event to record: its type (Normal or Warning), reason, action and note.
type Event struct {
	Type, Reason, Action, Note string
}

// Record records evs on regarding (related may be nil).
func Record(r events.EventRecorder, regarding, related runtime.Object, evs []Event) {
	for _, e := range evs {
		r.Eventf(regarding, related, e.Type, e.Reason, e.Action, "%s", e.Note)
	}
}
