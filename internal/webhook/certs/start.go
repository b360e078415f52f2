package certs

import (
	"context"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Start is a manager.Runnable: it calls Ensure every CheckInterval (sooner while a serving
// certificate waits for a new CA to be trusted, with a backoff after errors) and, when the client
// can watch, as soon as the Secret or a named configuration changes, e.g. another replica
// rotated or a re-applied manifest emptied a caBundle. It returns when ctx ends.
func (r *Rotator) Start(ctx context.Context) error {
	trigger := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	if wc, ok := r.c.(client.WithWatch); ok {
		for _, w := range r.watches() {
			wg.Go(func() { r.watchLoop(ctx, wc, w, trigger) })
		}
	}
	var backoff time.Duration
	for {
		if ctx.Err() != nil {
			return nil
		}
		var wait time.Duration
		if err := r.Ensure(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			backoff = min(max(2*backoff, time.Second), r.o.CheckInterval)
			wait = backoff
			r.o.Logger.Error(err, "Ensuring webhook certificates", "retryIn", wait)
		} else {
			backoff = 0
			wait = r.nextCheck()
		}
		if wait <= 0 {
			continue
		}
		t := r.o.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		case <-trigger:
			t.Stop()
		}
	}
}

// watchTarget is one watched object: a list type and the options selecting it.
type watchTarget struct {
	what string
	list func() client.ObjectList
	opts []client.ListOption
}

func (r *Rotator) watches() []watchTarget {
	byName := func(n string) client.MatchingFields { return client.MatchingFields{"metadata.name": n} }
	ws := []watchTarget{{
		what: "secret " + r.o.Namespace + "/" + r.o.SecretName,
		list: func() client.ObjectList { return &corev1.SecretList{} },
		opts: []client.ListOption{client.InNamespace(r.o.Namespace), byName(r.o.SecretName)},
	}}
	for _, n := range r.o.MutatingWebhookConfigurations {
		ws = append(ws, watchTarget{
			what: "mutatingwebhookconfiguration " + n,
			list: func() client.ObjectList { return &admissionregistrationv1.MutatingWebhookConfigurationList{} },
			opts: []client.ListOption{byName(n)},
		})
	}
	for _, n := range r.o.ValidatingWebhookConfigurations {
		ws = append(ws, watchTarget{
			what: "validatingwebhookconfiguration " + n,
			list: func() client.ObjectList { return &admissionregistrationv1.ValidatingWebhookConfigurationList{} },
			opts: []client.ListOption{byName(n)},
		})
	}
	return ws
}

// watchLoop signals trigger on every event of w and re-establishes the watch when it ends (API
// servers close watches after a timeout). A new watch starts with the object's current state,
// so nothing that happened in between is missed. Reconnects are paced in real time: this is
// connection handling, not a certificate decision, and a fake clock must not stall it.
func (r *Rotator) watchLoop(ctx context.Context, wc client.WithWatch, w watchTarget, trigger chan<- struct{}) {
	for {
		wi, err := wc.Watch(ctx, w.list(), w.opts...)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.o.Logger.V(1).Info("Watch failed; polling continues", "watch", w.what, "error", err.Error())
		} else {
			r.drain(ctx, wi, trigger)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// drain forwards w's events to trigger until w ends, reports an error, or ctx ends.
func (r *Rotator) drain(ctx context.Context, w watch.Interface, trigger chan<- struct{}) {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type == watch.Error {
				return
			}
			if ev.Type == watch.Bookmark {
				continue
			}
			select {
			case trigger <- struct{}{}:
			default: // an Ensure is already due
			}
		}
	}
}
