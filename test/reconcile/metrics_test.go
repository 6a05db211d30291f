package reconcile_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/liatrio/gitpulse/pkg/function"
	"github.com/liatrio/gitpulse/pkg/metrics"
	"github.com/liatrio/gitpulse/pkg/reconcile"
)

// The metrics function exports what passes did, read from the cursor
// ConfigMaps: passes by result, redeliveries, objects reconciled, GitHub's
// budget, and the age of the oldest failed delivery not yet recovered.
func TestMetrics_ReconcileFiguresFromTheCursors(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, w.hook)
	w.gh.SetPullRequest(repo, apiPR(9, "open", false, time.Now().Add(-time.Hour)))
	w.gh.SetPullRequest(repo, apiPR(10, "closed", true, time.Now().Add(-2*time.Hour))) // merged 48h after opening
	w.outage.Store(true)
	for i := 1; i <= 2; i++ {
		w.deliverPR(i, "opened", time.Now().Add(-time.Minute).Truncate(time.Second))
	}
	r := w.reconciler()
	w.pass(r) // redelivers into the outage: still unrecovered
	handler := w.metricsHandler(t)
	w.pass(r) // a second pass sees the failed redeliveries: unrecovered
	value := func(name string, labels ...string) (float64, bool) {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, function.MetricsPath, nil))
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
		if err != nil {
			t.Fatalf("exposition does not parse: %v", err)
		}
		return find(fams[name], labels...)
	}
	eventually := func(name string, want func(float64) bool, labels ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			v, ok := value(name, labels...)
			if ok && want(v) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s%v = %v (present %v)", name, labels, v, ok)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	eq := func(n float64) func(float64) bool { return func(v float64) bool { return v == n } }
	eventually("gitpulse_reconcile_passes_total", eq(2), "scope", repo, "result", "ok")
	eventually("gitpulse_reconcile_redeliveries_requested_total", eq(2), "scope", repo)
	eventually("gitpulse_reconcile_objects_reconciled_total", eq(2), "scope", repo)
	eventually("gitpulse_reconcile_unrecovered_deliveries", eq(2), "scope", repo)
	eventually("gitpulse_reconcile_oldest_unrecovered_delivery_age_seconds", func(v float64) bool { return v > 0 && v < 600 }, "scope", repo)
	eventually("gitpulse_reconcile_github_api_remaining", func(v float64) bool { return v > 4900 && v < 5000 }, "scope", repo)

	// Recovered: the age falls to 0.
	w.outage.Store(false)
	w.pass(w.reconciler(func(o *reconcile.Options) { o.RedeliverAfter = time.Nanosecond }))
	w.pass(r)
	eventually("gitpulse_reconcile_unrecovered_deliveries", eq(0), "scope", repo)
	eventually("gitpulse_reconcile_oldest_unrecovered_delivery_age_seconds", eq(0), "scope", repo)

	// Backfilled pull requests count in the state gauges and the merge-time
	// histogram; their Reconciled Events are not deliveries: the delivery
	// counter holds the two redelivered "opened" only.
	eventually("gitpulse_pull_requests", eq(1), "repository", repo, "state", "merged")
	eventually("gitpulse_pull_requests", eq(3), "repository", repo, "state", "open")
	eventually("gitpulse_pull_request_events_total", eq(2), "repository", repo, "action", "opened")
	if v, ok := value("gitpulse_pull_request_events_total", "repository", repo, "action", "other"); ok {
		t.Errorf("Reconciled Events counted as deliveries: action=other %v", v)
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, function.MetricsPath, nil))
	if !strings.Contains(rec.Body.String(), `gitpulse_pull_request_merge_duration_seconds_count{namespace="`+w.ns+`",repository="`+repo+`"} 1`) {
		t.Errorf("the backfilled merged pull request is not in the merge-time histogram")
	}
}

// find is the value of the family's sample whose labels include the
// given name/value pairs.
func find(f *dto.MetricFamily, labels ...string) (float64, bool) {
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			ok := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					ok = true
				}
			}
			if !ok {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// The metrics function exports the errors passes met, by resource and
// reason, and the degraded pass result, read from the cursor ConfigMaps
// (the exposition parsed with Prometheus's own parser).
func TestMetrics_ReconcileErrorsByResourceAndReason(t *testing.T) {
	w := newWorld(t)
	reviewsOverREST(w)
	w.source("widgets", repo, w.hook)
	w.history()
	w.gh.FailOn(http.MethodGet, "/pulls/3/reviews", http.StatusNotFound, -1)
	w.gh.FailOn(http.MethodGet, "/branches", http.StatusBadGateway, 1)
	w.gh.FailOn(http.MethodGet, "/deliveries", http.StatusForbidden, 1)
	now := time.Now()
	r := w.reconciler(func(o *reconcile.Options) { o.Now = func() time.Time { return now } })
	w.pass(r)
	now = now.Add(2 * time.Minute) // past the backoff: the reviews fail again, the rest passes
	w.pass(r)
	handler := w.metricsHandler(t)
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"gitpulse_reconcile_errors_total", []string{"scope", repo, "resource", "reviews", "reason", "not_found"}, 2},
		{"gitpulse_reconcile_errors_total", []string{"scope", repo, "resource", "branches", "reason", "server_error"}, 1},
		{"gitpulse_reconcile_errors_total", []string{"scope", repo, "resource", "deliveries", "reason", "forbidden"}, 1},
		{"gitpulse_reconcile_passes_total", []string{"scope", repo, "result", "degraded"}, 2},
		{"gitpulse_reconcile_passes_total", []string{"scope", repo, "result", "ok"}, 0},
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, function.MetricsPath, nil))
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
		if err != nil {
			t.Fatalf("exposition does not parse: %v", err)
		}
		var wrong []string
		for _, s := range want {
			if v, ok := find(fams[s.name], s.labels...); !ok || v != s.value {
				wrong = append(wrong, fmt.Sprintf("%s%v = %v (present %v), want %v", s.name, s.labels, v, ok, s.value))
			}
		}
		if n := len(fams["gitpulse_reconcile_errors_total"].GetMetric()); n != 3 && len(wrong) == 0 {
			wrong = append(wrong, fmt.Sprintf("%d error series, want 3", n))
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(strings.Join(wrong, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricsHandler starts the real metrics function on the world's namespace
// and answers /metrics as it does.
func (w *world) metricsHandler(t *testing.T) http.Handler {
	t.Helper()
	clients, err := metrics.NewClients(w.env.Config(), w.ns)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := metrics.New(metrics.Options{Config: metrics.Config{Namespace: w.ns, CheckpointInterval: time.Second, MaxRepositories: 10},
		Clients: clients, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// As the test's own context was: until the test ends.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	if err := svc.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return function.MetricsHandler(svc.Handler(), svc.Ready, svc.Alive)
}
