package localrun

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/liatrio/gitpulse/pkg/reconcile"
)

// What a cluster's PingSource does (config/eventing/reconcile.yaml), on one
// machine: every Options.ReconcileInterval the stack sends the recorder a
// dev.liatr.gitpulse.reconcile CloudEvent, at GITPULSE_EVENTS_URL, where
// anyone may also POST one on demand. The recorder runs a pass over the
// GitHubSources in the namespace (kubectl apply one pointing at any GitHub
// API URL: the stack installs eventing-github's own GitHubSource CRD,
// adapter.go).

var reconcileSeq atomic.Int64

// TriggerReconcile sends one reconcile CloudEvent to the recorder and
// returns its answer's status code.
func (s *Stack) TriggerReconcile(ctx context.Context) (int, error) {
	e := cloudevents.NewEvent()
	e.SetID("local-reconcile-" + strconv.FormatInt(reconcileSeq.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36))
	e.SetType(reconcile.EventType)
	e.SetSource("gitpulse-local")
	e.SetTime(time.Now())
	if err := e.SetData(cloudevents.ApplicationJSON, map[string]string{"reconcile": "scheduled"}); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.RecorderURL(), nil)
	if err != nil {
		return 0, err
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// reconcileLoop triggers a pass every interval until the stack stops.
func (s *Stack) reconcileLoop(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stopped:
			return
		case <-t.C:
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-s.stopped:
				case <-ctx.Done():
				}
				cancel()
			}()
			code, err := s.TriggerReconcile(ctx)
			cancel()
			if err != nil || code/100 != 2 {
				s.opts.Logger.Warn("reconcile trigger", "code", code, "err", fmt.Sprint(err))
			}
		}
	}
}
