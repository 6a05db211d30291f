package metrics_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/testenv"
	"github.com/liatrio/gitpulse/pkg/metrics"
)

const lagFamily = "gitpulse_metrics_event_lag_seconds"

// lagHistogram is the function's lag histogram as Prometheus' parser reads
// it from /metrics.
func lagHistogram(t *testing.T, svc *metrics.Service) (*dto.Histogram, string) {
	t.Helper()
	body, fams := scrape(t, handlerOf(svc))
	f := fams[lagFamily]
	if f == nil || f.GetType() != dto.MetricType_HISTOGRAM || len(f.Metric) != 1 || f.Metric[0].Histogram == nil {
		t.Fatalf("%s is not one histogram in the exposition:\n%s", lagFamily, body)
	}
	return f.Metric[0].Histogram, body
}

// wantLagObservations checks that the histogram holds exactly n
// observations, each within the last finite bucket (a minute: the test's
// Events are counted within seconds of their creation), with consistent
// cumulative buckets and sum.
func wantLagObservations(t *testing.T, svc *metrics.Service, n uint64) {
	t.Helper()
	h, body := lagHistogram(t, svc)
	var prev uint64
	var last *dto.Bucket
	for _, b := range h.Bucket {
		if b.GetCumulativeCount() < prev {
			t.Fatalf("buckets not cumulative at le=%v:\n%s", b.GetUpperBound(), body)
		}
		prev = b.GetCumulativeCount()
		if !math.IsInf(b.GetUpperBound(), 1) { // the parser lists +Inf too
			last = b
		}
	}
	if last == nil {
		t.Fatalf("no finite buckets:\n%s", body)
	}
	if h.GetSampleCount() != n || last.GetCumulativeCount() != n {
		t.Fatalf("%d observations, %d within le=%v; want %d and %d\n%s", h.GetSampleCount(), last.GetCumulativeCount(), last.GetUpperBound(), n, n, body)
	}
	if n > 0 && (h.GetSampleSum() < 0 || h.GetSampleSum() > float64(n)*last.GetUpperBound()) {
		t.Fatalf("sum %v out of range for %d observations", h.GetSampleSum(), n)
	}
}

// TestLag_ObservesEachCountedEventOnce: the lag histogram observes exactly
// the Events a function counts — those its first list counts and those its
// watch counts, none again when the API server restarts under it and its
// watches resume — and a restarted function, whose checkpoint covers what
// was counted, observes only the Events it counts itself.
func TestLag_ObservesEachCountedEventOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx, controlplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.ControlPlane.Stop)
	ns := env.Namespace(t)
	all := prEvents("lag", 35)

	mustCreateEvents(t, env.Kube, ns, all[:10]...) // counted by the first list
	svc := startService(t, env.Config(), metrics.Config{Namespace: ns})
	mustCreateEvents(t, env.Kube, ns, all[10:20]...) // counted by the watch
	waitExact(t, svc, ns, 20)
	wantLagObservations(t, svc, 20)

	env.ControlPlane.Kill()
	time.Sleep(time.Second) // let the watches notice
	if err := env.ControlPlane.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	mustCreateEvents(t, env.Kube, ns, all[20:30]...)
	waitExact(t, svc, ns, 30)
	wantLagObservations(t, svc, 30)
	stop(t, svc)

	again := startService(t, env.Config(), metrics.Config{Namespace: ns})
	waitExact(t, again, ns, 30) // from the checkpoint; its list replays all 30
	wantLagObservations(t, again, 0)
	mustCreateEvents(t, env.Kube, ns, all[30:]...)
	waitExact(t, again, ns, 35)
	wantLagObservations(t, again, uint64(len(all)-30))
	if t.Failed() {
		t.Log(fmt.Sprint(checkpoint(t, env.Kube, ns)))
	}
}
