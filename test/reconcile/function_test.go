package reconcile_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	recorderfn "github.com/liatrio/gitpulse/functions/recorder"
	"github.com/liatrio/gitpulse/internal/functest"
	"github.com/liatrio/gitpulse/pkg/function"
	"github.com/liatrio/gitpulse/pkg/reconcile"
)

// The recorder function runs a pass for a CloudEvent of type
// dev.liatr.gitpulse.reconcile (any source) and for the PingSource's
// dev.knative.sources.ping, answering 2xx once the slice is done.
func TestFunction_ReconcileEventRunsAPass(t *testing.T) {
	for _, tt := range []struct{ name, typ, source string }{
		{"gitpulse's own trigger", reconcile.EventType, "make-run"},
		{"the PingSource's ping", reconcile.PingEventType, "/apis/v1/namespaces/gitpulse/pingsources/gitpulse-reconcile"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.source("widgets", repo, w.hook)
			w.outage.Store(true)
			id, _ := w.deliverPR(1, "opened", time.Now().Add(-time.Minute).Truncate(time.Second))
			w.outage.Store(false)

			kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
			if err := w.env.ControlPlane.WriteKubeconfig(kubeconfig); err != nil {
				t.Fatal(err)
			}
			srv := functest.CloudEvents(t, recorderfn.New(),
				map[string]string{function.EnvKubeconfig: kubeconfig, function.EnvNamespace: w.ns, function.EnvLogLevel: "warn"})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := cloudevents.NewClientHTTP()
			if err != nil {
				t.Fatal(err)
			}
			e := cloudevents.NewEvent()
			e.SetID("trigger-1")
			e.SetType(tt.typ)
			e.SetSource(tt.source)
			_ = e.SetData(cloudevents.ApplicationJSON, map[string]string{"reconcile": "now"})
			res := c.Send(cloudevents.ContextWithTarget(ctx, srv.URL), e)
			if !cloudevents.IsACK(res) {
				t.Fatalf("the function answered %v", res)
			}
			w.gh.Wait()
			if w.gh.Redeliveries(id) != 1 || !w.hasEvent(id) {
				t.Fatalf("after the trigger: %d redeliveries, recorded %v", w.gh.Redeliveries(id), w.hasEvent(id))
			}
		})
	}
}
