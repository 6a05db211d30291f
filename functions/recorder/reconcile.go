package recorder

import (
	"context"
	"fmt"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/liatrio/gitpulse/pkg/function"
	"github.com/liatrio/gitpulse/pkg/reconcile"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

// The reconcile trigger, which recovers what deliveries missed: a
// CloudEvent of type reconcile.EventType, or the PingSource's
// dev.knative.sources.ping, runs one bounded pass over the namespace's
// GitHubSources instead of being recorded. Kept apart from function.go, which only hands such an
// event here.

// startReconcile builds the function's Reconciler (unless
// GITPULSE_RECONCILE=off), on the recorder's core client kube and a
// dynamic client from the runtime's configuration, with the
// GITPULSE_RECONCILE_* settings of env.
func (f *Function) startReconcile(env *Env, rt *function.Runtime, kube kubernetes.Interface, rec *recorder.Recorder) error {
	log := rt.Logger
	if env.Reconcile == "off" {
		log.Info("reconcile passes disabled", "env", EnvReconcile)
		return nil
	}
	opts := reconcile.Options{
		Kube: kube, Recorder: rec, Namespace: rt.Namespace, Logger: log.With("component", "reconcile"),
		Budget: env.ReconcileBudget, MaxRequests: env.ReconcileMaxRequests, MinRemaining: env.ReconcileMinRemaining,
		Window: env.ReconcileWindow, Retention: env.ReconcileRetention, RedeliverAfter: env.ReconcileRedeliverAfter,
		FullResync: env.ReconcileFullResync,
	}
	var err error
	if opts.Dynamic, err = dynamic.NewForConfig(rt.RESTConfig); err != nil {
		return fmt.Errorf("building the dynamic client: %w", err)
	}
	r, err := reconcile.New(opts)
	if err != nil {
		return err
	}
	f.reconciler.Store(r)
	return nil
}

// handleReconcile runs one pass and answers 2xx when its slice is done.
// GitHub's failures are the pass's report (logs, the cursor ConfigMaps'
// figures), not a failed event; only an API server failure answers 503, so
// the Broker retries.
func (f *Function) handleReconcile(ctx context.Context, e event.Event) (*event.Event, error) {
	r := f.reconciler.Load()
	if r == nil {
		if f.rec.Load() == nil {
			return nil, cehttp.NewResult(http.StatusServiceUnavailable, "recorder not started")
		}
		return nil, nil // disabled: acknowledged, nothing to do
	}
	_, err := r.Pass(ctx)
	return nil, function.Answer(f.log.Load().With("trigger", e.ID(), "type", e.Type()), err)
}
