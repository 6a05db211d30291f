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
		_, f := scrape(t, svc.Handler())
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

// checkpointUIDs reads the checkpoint ConfigMap's counted UID set.
func checkpointUIDs(t *testing.T, kube kubernetes.Interface, ns string) map[string]int64 {
	t.Helper()
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(context.Background(), metrics.CheckpointName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uids, err := eventcount.CountedUIDs(cm)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int64, len(uids))
	for uid, at := range uids {
		out[string(uid)] = at
	}
	return out
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
	if got := len(checkpointUIDs(t, env.Kube, ns)); got != 60 {
		t.Errorf("checkpoint holds %d counted UIDs, want 60", got)
	}
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
	if got := len(checkpointUIDs(t, env.Kube, ns)); got != 40 {
		t.Errorf("checkpoint holds %d counted UIDs, want 40", got)
	}
}

// TestCounters_ForgetDeletedEventsButKeepTheirCounts: expired Events leave
// the UID set (it stays bounded) while their counts stay.
func TestCounters_ForgetDeletedEventsButKeepTheirCounts(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	all := prEvents("expire", 6)
	mustCreateEvents(t, env.Kube, ns, all...)

	now := time.Now()
	clock := func() time.Time { return now }
	cm := env.Kube.CoreV1().ConfigMaps(ns)
	counter := eventcount.New(eventcount.Options{ConfigMaps: cm, Name: metrics.CheckpointName, Grace: time.Minute, Now: clock})
	if err := counter.Load(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := env.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range list.Items {
		counter.Observe(ev.UID, eventcount.Key{Kind: "PullRequest", Namespace: ns, Repository: "acme/api", Action: ev.Action})
	}
	counter.MarkSynced()
	if err := counter.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Two Events expire.
	for _, ev := range list.Items[:2] {
		counter.Forget(ev.UID)
	}
	if err := counter.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(checkpointUIDs(t, env.Kube, ns)); got != 6 {
		t.Fatalf("within the grace period: %d UIDs, want 6", got)
	}
	now = now.Add(2 * time.Minute)
	if err := counter.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(checkpointUIDs(t, env.Kube, ns)); got != 4 {
		t.Fatalf("after the grace period: %d UIDs, want 4", got)
	}
	var total uint64
	for _, v := range counter.Counts() {
		total += v
	}
	if total != 6 {
		t.Fatalf("counts after pruning = %d, want 6", total)
	}
	// A re-observation of a live Event still does not count it again.
	if counter.Observe(list.Items[3].UID, eventcount.Key{Kind: "PullRequest", Namespace: ns, Repository: "acme/api", Action: "opened"}) {
		t.Fatal("a live, already counted Event was counted again")
	}
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
		body, f := scrape(t, svc.Handler())
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
		body, f := scrape(t, first.Handler())
		return counterSum(f, "pull_requests_total", nil) == 1, body
	})
	mustCreateEvents(t, env.Kube, ns, eventSpec{delivery: "cap-2", kind: "PullRequest", repository: "acme/b", action: "opened"})
	eventually(t, 30*time.Second, "both counted", func() (bool, string) {
		body, f := scrape(t, first.Handler())
		return counterSum(f, "pull_requests_total", nil) == 2, body
	})
	stop(t, first)

	second := startService(t, env.Config(), metrics.Config{Namespace: ns, MaxRepositories: 2})
	mustCreateEvents(t, env.Kube, ns, eventSpec{delivery: "cap-3", kind: "PullRequest", repository: "acme/c", action: "opened"})
	eventually(t, 30*time.Second, "acme/c gets the free slot", func() (bool, string) {
		body, f := scrape(t, second.Handler())
		byRepo := func(r string) float64 {
			return counterSum(f, "gitpulse_pull_request_events_total", map[string]string{"namespace": ns, "repository": r})
		}
		return byRepo("acme/a") == 1 && byRepo("other") == 1 && byRepo("acme/c") == 1, body
	})
}
