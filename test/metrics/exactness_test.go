package metrics_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/testenv"
	"github.com/liatrio/gitpulse/pkg/eventcount"
	"github.com/liatrio/gitpulse/pkg/metrics"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// prEvents returns n pull request Events with distinct deliveries, cycling
// through three actions, so per-action expectations are known.
func prEvents(prefix string, n int) []eventSpec {
	actions := []string{"opened", "synchronize", "closed"}
	out := make([]eventSpec, n)
	for i := range out {
		out[i] = eventSpec{delivery: fmt.Sprintf("%s-%03d", prefix, i), kind: "PullRequest", repository: "acme/api", action: actions[i%3]}
	}
	return out
}

func wantByAction(n int) map[string]float64 {
	want := map[string]float64{}
	for i := range n {
		want[[]string{"opened", "synchronize", "closed"}[i%3]]++
	}
	return want
}

// waitExact waits until svc reports exactly n pull request Events in ns,
// split by action as prEvents makes them, and keeps reporting n for a
// while after (a late double count would show up there).
func waitExact(t *testing.T, svc *metrics.Service, ns string, n int) {
	t.Helper()
	want := wantByAction(n)
	check := func() (bool, string) {
		_, f := scrape(t, handlerOf(svc))
		got := countsByAction(f, "gitpulse_pull_request_events_total", ns)
		total := counterSum(f, "pull_requests_total", nil)
		ok := total == float64(n) && len(got) == len(want)
		for a, v := range want {
			ok = ok && got[a] == v
		}
		return ok, fmt.Sprintf("pull_requests_total=%v by action=%v, want %d %v", total, got, n, want)
	}
	eventually(t, 45*time.Second, fmt.Sprintf("exactly %d Events counted", n), check)
	time.Sleep(500 * time.Millisecond) // several checkpoint intervals and re-reads
	if ok, msg := check(); !ok {
		t.Fatalf("count moved after reaching %d: %s", n, msg)
	}
}

// stop stops a Service gracefully (final checkpoint written).
func stop(t *testing.T, svc *metrics.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// crash stops a Service without its final checkpoint write, as a SIGKILL
// would: whatever it counted since its last flush is lost.
func crash(svc *metrics.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = svc.Stop(ctx)
}

// checkpoint reads the checkpoint ConfigMap.
func checkpoint(t *testing.T, kube kubernetes.Interface, ns string) eventcount.Summary {
	t.Helper()
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(context.Background(), metrics.CheckpointName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := eventcount.Inspect(cm)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// wantWatermarkOnly fails unless the checkpoint is version 3 with a
// watermark and no per-Event state.
func wantWatermarkOnly(t *testing.T, sum eventcount.Summary) {
	t.Helper()
	if sum.Version != 3 || sum.Watermark == 0 || len(sum.CountedUIDs) != 0 {
		t.Errorf("checkpoint: version %d, watermark %d, %d UIDs; want version 3 with a watermark and no UIDs",
			sum.Version, sum.Watermark, len(sum.CountedUIDs))
	}
}

// TestCounters_CountEachEventOnceAcrossRestarts is the exactness proof: 60
// Events, created before, between, and during restarts of the function
// (one graceful, one crash while Events are being created, with the next
// instance already running), end up counted exactly 60 times, and a fresh
// process re-listing all 60 still says 60.
func TestCounters_CountEachEventOnceAcrossRestarts(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	all := prEvents("restart", 60)
	cfg := metrics.Config{Namespace: ns}

	// 20 Events seen by the first instance, which then stops gracefully.
	first := startService(t, env.Config(), cfg)
	mustCreateEvents(t, env.Kube, ns, all[:20]...)
	waitExact(t, first, ns, 20)
	stop(t, first)

	// 10 Events while nothing runs: counted when the function comes back.
	mustCreateEvents(t, env.Kube, ns, all[20:30]...)

	// The second instance never persists (hour-long interval) and crashes
	// while the remaining 30 Events are being created; the third starts
	// before it dies (a rollout's overlap) and must count what the second
	// lost, the Events created during the handover, and nothing twice.
	second := startService(t, env.Config(), metrics.Config{Namespace: ns, CheckpointInterval: time.Hour})
	waitExact(t, second, ns, 30)

	var wg sync.WaitGroup
	created := make(chan int, 30)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, e := range all[30:] {
			if _, err := createEvent(context.Background(), env.Kube, ns, e); err != nil {
				t.Errorf("creating Event %s: %v", e.delivery, err)
				return
			}
			created <- i
			time.Sleep(15 * time.Millisecond)
		}
	}()
	for range 10 {
		<-created
	}
	third := startService(t, env.Config(), cfg)
	crash(second)
	wg.Wait()
	waitExact(t, third, ns, 60)
	stop(t, third)

	// A fresh process re-lists all 60 live Events: none is counted again.
	fourth := startService(t, env.Config(), cfg)
	waitExact(t, fourth, ns, 60)
	stop(t, fourth)
	wantWatermarkOnly(t, checkpoint(t, env.Kube, ns))
}

// TestCounters_OverlappingInstancesMergeWithoutDoubleCounting runs two
// instances on one namespace, both flushing, while Events arrive: the
// checkpoint's resourceVersion precondition makes the second writer merge.
func TestCounters_OverlappingInstancesMergeWithoutDoubleCounting(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	cfg := metrics.Config{Namespace: ns, CheckpointInterval: 20 * time.Millisecond}
	a := startService(t, env.Config(), cfg)
	b := startService(t, env.Config(), cfg)
	all := prEvents("overlap", 40)
	mustCreateEvents(t, env.Kube, ns, all...)
	waitExact(t, a, ns, 40)
	waitExact(t, b, ns, 40)
	stop(t, a)
	stop(t, b)

	c := startService(t, env.Config(), cfg)
	waitExact(t, c, ns, 40)
	wantWatermarkOnly(t, checkpoint(t, env.Kube, ns))
}

// TestCounters_ExpiredEventsKeepTheirCounts: Events that expire (deleted,
// as the API server's event TTL does) stay counted, across a restart, and
// nothing about them remains in the checkpoint.
func TestCounters_ExpiredEventsKeepTheirCounts(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	all := prEvents("expire", 7)
	mustCreateEvents(t, env.Kube, ns, all[:6]...)
	first := startService(t, env.Config(), metrics.Config{Namespace: ns})
	waitExact(t, first, ns, 6)
	for _, e := range all[:2] {
		if err := env.Kube.CoreV1().Events(ns).Delete(ctx, naming.EventName(e.delivery), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitExact(t, first, ns, 6)
	stop(t, first)

	second := startService(t, env.Config(), metrics.Config{Namespace: ns})
	mustCreateEvents(t, env.Kube, ns, all[6])
	waitExact(t, second, ns, 7)
	stop(t, second)
	wantWatermarkOnly(t, checkpoint(t, env.Kube, ns))
}

// TestCounters_SustainedLoadAcrossRestartsKeepsACheckpointOfConstantSize is
// the sustained-load scenario (100k+ Events) at reduced scale: Events arrive
// continuously from several writers while the function crashes (its last
// increments unflushed) and later restarts gracefully; every checkpoint write
// succeeds, the counters end exact, and the checkpoint is no larger after
// 1,200 Events than after 200 (it holds counter values and a watermark,
// nothing per Event).
func TestCounters_SustainedLoadAcrossRestartsKeepsACheckpointOfConstantSize(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	const total = 1200
	all := prEvents("sustained", total)
	cfg := metrics.Config{Namespace: ns, CheckpointInterval: 50 * time.Millisecond}

	first := startService(t, env.Config(), cfg)
	mustCreateEvents(t, env.Kube, ns, all[:200]...)
	waitExact(t, first, ns, 200)
	eventually(t, 30*time.Second, "200 Events persisted", func() (bool, string) {
		body, f := scrape(t, handlerOf(first))
		return counterSum(f, "gitpulse_metrics_checkpoint_pending_events", nil) == 0, body
	})
	small := checkpoint(t, env.Kube, ns).Bytes

	// Four writers create the other 1,000 Events without pause.
	created := make(chan struct{}, total)
	var wg sync.WaitGroup
	next := make(chan eventSpec)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range next {
				if _, err := createEvent(context.Background(), env.Kube, ns, e); err != nil {
					t.Errorf("creating Event %s: %v", e.delivery, err)
				}
				created <- struct{}{}
			}
		}()
	}
	go func() {
		for _, e := range all[200:] {
			next <- e
		}
		close(next)
	}()
	waitCreated := func(n int) {
		for range n {
			<-created
		}
	}
	writeErrors := func(svc *metrics.Service) float64 {
		_, f := scrape(t, handlerOf(svc))
		return counterSum(f, "gitpulse_metrics_checkpoint_writes_total", map[string]string{"result": "error"})
	}

	waitCreated(300)
	if n := writeErrors(first); n != 0 {
		t.Errorf("first instance: %v failed checkpoint writes", n)
	}
	crash(first) // mid-stream, with unflushed increments
	second := startService(t, env.Config(), cfg)
	waitCreated(400)
	if n := writeErrors(second); n != 0 {
		t.Errorf("second instance: %v failed checkpoint writes", n)
	}
	stop(t, second) // graceful, mid-stream
	third := startService(t, env.Config(), cfg)
	waitCreated(300)
	wg.Wait()
	waitExact(t, third, ns, total)
	if n := writeErrors(third); n != 0 {
		t.Errorf("third instance: %v failed checkpoint writes", n)
	}
	stop(t, third)

	sum := checkpoint(t, env.Kube, ns)
	wantWatermarkOnly(t, sum)
	// One counter per action; 1,200 needs one digit more than 200 in each.
	if sum.Bytes > small+3+2 {
		t.Errorf("checkpoint grew with the Events: %d bytes after 200, %d after %d", small, sum.Bytes, total)
	}
	t.Logf("checkpoint: %d bytes after 200 Events, %d after %d", small, sum.Bytes, total)
}

// TestCounters_ResumeAfterAPIServerRestart kills the API server (and etcd)
// under a running function: the informers' watches fail, are counted as
// restarts, resume, and Events from before and after are each counted once.
func TestCounters_ResumeAfterAPIServerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx, controlplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.ControlPlane.Stop)
	ns := env.Namespace(t)
	svc := startService(t, env.Config(), metrics.Config{Namespace: ns})
	all := prEvents("apiserver", 20)
	mustCreateEvents(t, env.Kube, ns, all[:10]...)
	waitExact(t, svc, ns, 10)

	env.ControlPlane.Kill()
	time.Sleep(time.Second) // let the watches notice
	if err := env.ControlPlane.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	mustCreateEvents(t, env.Kube, ns, all[10:]...)
	waitExact(t, svc, ns, 20)
	eventually(t, 45*time.Second, "watch restarts reported", func() (bool, string) {
		body, f := scrape(t, handlerOf(svc))
		return counterSum(f, "gitpulse_metrics_watch_restarts_total", map[string]string{"resource": "events"}) >= 1, body
	})
	stop(t, svc)
	again := startService(t, env.Config(), metrics.Config{Namespace: ns})
	waitExact(t, again, ns, 20)
}

// TestCap_ReplayedEventsDoNotTakeRepositorySlots: Events counted by an
// earlier process (here into repository="other") are replayed by the next
// one's list; they must not claim repository slots that new Events need.
func TestCap_ReplayedEventsDoNotTakeRepositorySlots(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	// Admission is first come: acme/a must be counted before acme/b exists.
	mustCreateEvents(t, env.Kube, ns, eventSpec{delivery: "cap-1", kind: "PullRequest", repository: "acme/a", action: "opened"})
	first := startService(t, env.Config(), metrics.Config{Namespace: ns, MaxRepositories: 1})
	eventually(t, 30*time.Second, "acme/a counted", func() (bool, string) {
		body, f := scrape(t, handlerOf(first))
		return counterSum(f, "pull_requests_total", nil) == 1, body
	})
	mustCreateEvents(t, env.Kube, ns, eventSpec{delivery: "cap-2", kind: "PullRequest", repository: "acme/b", action: "opened"})
	eventually(t, 30*time.Second, "both counted", func() (bool, string) {
		body, f := scrape(t, handlerOf(first))
		return counterSum(f, "pull_requests_total", nil) == 2, body
	})
	stop(t, first)

	second := startService(t, env.Config(), metrics.Config{Namespace: ns, MaxRepositories: 2})
	mustCreateEvents(t, env.Kube, ns, eventSpec{delivery: "cap-3", kind: "PullRequest", repository: "acme/c", action: "opened"})
	eventually(t, 30*time.Second, "acme/c gets the free slot", func() (bool, string) {
		body, f := scrape(t, handlerOf(second))
		byRepo := func(r string) float64 {
			return counterSum(f, "gitpulse_pull_request_events_total", map[string]string{"namespace": ns, "repository": r})
		}
		return byRepo("acme/a") == 1 && byRepo("other") == 1 && byRepo("acme/c") == 1, body
	})
}
