package recorder

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/liatrio/gitpulse/pkg/reconcile"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

// The reconcile trigger (issue 13): a CloudEvent of type
// reconcile.EventType, or the PingSource's dev.knative.sources.ping,
// runs one bounded pass over the namespace's GitHubSources instead of
// being recorded. Kept apart from function.go, which only hands such an
// event here.

// startReconcile builds the function's Reconciler (unless
// GITPULSE_RECONCILE=off).
func (f *Function) startReconcile(cfg map[string]string, restCfg *rest.Config, kube kubernetes.Interface, rec *recorder.Recorder, namespace string, log *slog.Logger) error {
	opts := reconcile.Options{Kube: kube, Recorder: rec, Namespace: namespace, Logger: log.With("component", "reconcile")}
	enabled, err := reconcile.OptionsFromEnv(cfg, &opts)
	if err != nil {
		return fmt.Errorf("reconcile configuration: %w", err)
	}
	if !enabled {
		log.Info("reconcile passes disabled", "env", reconcile.EnvReconcile)
		return nil
	}
	if opts.Dynamic, err = dynamic.NewForConfig(restCfg); err != nil {
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
	if _, err := r.Pass(ctx); err != nil {
		slog.Error("reconcile pass failed", "trigger", e.ID(), "err", err)
		return nil, cehttp.NewResult(recorder.StatusCode(err), "%s", recorder.PublicReason(recorder.StatusCode(err)))
	}
	return nil, nil
}
