package bench

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
	"github.com/liatrio/gitpulse/pkg/eventcount"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// The metrics function's measurements: with N recorder Events alive, a fresh
// process's start-up (first complete /metrics, RSS, CPU, scrape time); then,
// with the process running, a sustained stream of deliveries (CPU per 1,000
// Events, checkpoint writes, exactness). The Event counts the start-up is
// measured at are 10k and 100k, plus 360k (an hour at 100 deliveries/s) with
// GITPULSE_BENCH_FULL=1; the stream lasts GITPULSE_BENCH_SUSTAINED_SECONDS
// (default 60) at GITPULSE_BENCH_SUSTAINED_RATE deliveries/s (default 100).
// GITPULSE_BENCH_EVENTS (a comma-separated list) replaces the sizes.
func benchMetricsGroup(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if os.Getenv("GITPULSE_BENCH_FULL") == "1" {
		sizes = append(sizes, 360_000)
	}
	if v := os.Getenv("GITPULSE_BENCH_EVENTS"); v != "" { // e.g. 360000 alone
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(f); err == nil && n > 0 {
				sizes = append(sizes, n)
			}
		}
	}
	// The recorder groups leave every object they wrote (one PullRequest
	// per delivery, ~21,000). The function keeps object state for its
	// gauges and histograms, so they cost memory and scrape time: one row
	// shows that, then they are deleted so that the rows after it measure
	// what they are about, the Events.
	if objects := countObjects(b); objects > 0 && len(sizes) > 0 {
		b.Run("metrics/with-objects", func(b *testing.B) {
			benchMetricsStartup(b, sizes[0], fmt.Sprintf("metrics %dk Events + %d objects", sizes[0]/1000, objects))
		})
		deleteObjects(b)
	}
	var points []startup
	for _, n := range sizes {
		b.Run(fmt.Sprintf("metrics/events=%dk", n/1000), func(b *testing.B) {
			points = append(points, benchMetricsStartup(b, n, fmt.Sprintf("metrics %dk Events", n/1000)))
		})
	}
	if len(points) >= 2 && points[len(points)-2].events != points[len(points)-1].events {
		// The slope between the two largest sizes, and what it says of an
		// hour at 100 deliveries/s (none when a size is repeated to see
		// its spread).
		lo, hi := points[len(points)-2], points[len(points)-1]
		perEvent := func(a, b float64) float64 { return (b - a) / float64(hi.events-lo.events) }
		rssSlope := perEvent(lo.rssMiB, hi.rssMiB) * 1024 * 1024
		cpuSlope := perEvent(lo.cpuSeconds, hi.cpuSeconds) * 1000
		cpSlope := perEvent(float64(lo.checkpointBytes), float64(hi.checkpointBytes))
		const hour = 360_000
		record("metrics slope (start-up)", "RSS %+.1f B/Event\tCPU %.3f s per 1,000 Events listed\tcheckpoint %+.3f B/Event\t-> at %dk Events: RSS %.1f MiB, checkpoint %d B",
			rssSlope, cpuSlope, cpSlope, hour/1000,
			hi.rssMiB+rssSlope*float64(hour-hi.events)/1024/1024, int(float64(hi.checkpointBytes)+cpSlope*float64(hour-hi.events)))
	}
	b.Run("metrics/sustained", benchMetricsSustained)
}

type startup struct {
	events          int
	rssMiB          float64
	cpuSeconds      float64
	checkpointBytes int
}

// createBenchEvents brings the bench's own recorder Events to total (across
// 1,000 repositories), at concurrency 32.
func createBenchEvents(b *testing.B, total int) {
	have := int(eventsCreated.Load())
	if total <= have {
		return
	}
	l := drive(b, total-have, 32, func(i int) error { return createMetricsEvent(context.Background(), have+i) })
	eventsCreated.Store(int64(total))
	b.Logf("created %d Events at %.0f/s", total-have, l.rate())
}

func createMetricsEvent(ctx context.Context, n int) error {
	ns := stack.Namespace()
	now := metav1.Now()
	repo := fmt.Sprintf("org-%d/repo-%d", n%1000/100, n%1000)
	_, err := stack.Kube.CoreV1().Events(ns).Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: naming.EventName(fmt.Sprintf("metrics-bench-%d", n)), Namespace: ns,
			Annotations: map[string]string{stablev1.AnnotationDeliveryID: fmt.Sprint(n), stablev1.AnnotationRepository: repo}},
		InvolvedObject: corev1.ObjectReference{APIVersion: "stable.liatr.io/v1", Kind: "PullRequest",
			Name: fmt.Sprintf("pr-%d", n%5000), Namespace: ns},
		Reason: stablev1.ReasonPullRequestSynchronized, Message: "bench", Type: corev1.EventTypeNormal, Action: "synchronize",
		ReportingController: stablev1.ReportingController, ReportingInstance: "bench",
		Source:         corev1.EventSource{Component: stablev1.SourceComponent},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}, metav1.CreateOptions{})
	return err
}

// benchMetricsStartup: with `total` bench Events alive, a fresh metrics
// process (no checkpoint) until its first complete /metrics: the time, its
// RSS and CPU then, the median of 10 scrapes, and the checkpoint's size once
// it has persisted everything.
func benchMetricsStartup(b *testing.B, total int, name string) startup {
	ctx := context.Background()
	stack.KillMetrics()
	createBenchEvents(b, total)
	// A fresh function: forget what an earlier run counted, so it counts all.
	stack.Kube.CoreV1().ConfigMaps(stack.Namespace()).Delete(ctx, "gitpulse-metrics-checkpoint", metav1.DeleteOptions{})
	start := time.Now()
	if err := stack.StartMetrics(ctx); err != nil {
		b.Fatal(err)
	}
	// The recorder benchmarks' own Events are counted too, so "complete"
	// means at least the bench-made ones.
	var body string
	for {
		body = scrape(b)
		if sumCounter(body, "gitpulse_pull_request_events_total") >= float64(total) {
			break
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("/metrics incomplete after 5 minutes: %v of %d", sumCounter(body, "gitpulse_pull_request_events_total"), total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	first := time.Since(start)
	// What the function had to list: the bench's Events and any the
	// recorder groups left (their deliveries' and the data group's).
	counted := sumCounter(body, "gitpulse_pull_request_events_total")
	pid := stack.MetricsPid()
	rss, cpu := rssMiB(pid), cpuSeconds(pid)
	var scrapes []time.Duration
	for k := 0; k < 10; k++ {
		t := time.Now()
		body = scrape(b)
		scrapes = append(scrapes, time.Since(t))
	}
	sort.Slice(scrapes, func(i, j int) bool { return scrapes[i] < scrapes[j] })
	series := strings.Count(body, "\ngitpulse_pull_request_events_total{")
	cp := waitPersisted(b)
	record(name, "first complete /metrics %s (%.0f Events counted)\tRSS %.1f MiB (live heap %.1f MiB, limit %.0f MiB)\tCPU %.2f s (%.3f s per 1,000 Events)\tscrape %s (median of 10, %d repository series, %d bytes)\tcheckpoint %d B",
		first.Round(time.Millisecond), counted, rss, gauge(body, "go_gc_heap_live_bytes")/(1<<20), gauge(body, "go_gc_gomemlimit_bytes")/(1<<20),
		cpu, cpu/float64(total)*1000, scrapes[5].Round(100*time.Microsecond), series, len(body), cp.Bytes)
	b.ReportMetric(first.Seconds(), "s-to-complete")
	b.ReportMetric(rss, "RSS-MiB")
	b.ReportMetric(cpu/float64(total)*1000, "CPU-s/1000-events")
	return startup{events: total, rssMiB: rss, cpuSeconds: cpu, checkpointBytes: cp.Bytes}
}

// countObjects is how many PullRequests, Branches and GitHubDeployments the
// namespace holds.
func countObjects(b *testing.B) int {
	ctx := context.Background()
	gp := versioned.NewForConfigOrDie(stack.ControlPlane.Config()).StableV1()
	ns := stack.Namespace()
	prs, err := gp.PullRequests(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	brs, err := gp.Branches(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	des, err := gp.GitHubDeployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return len(prs.Items) + len(brs.Items) + len(des.Items)
}

// deleteObjects deletes every PullRequest, Branch and GitHubDeployment of the
// namespace and waits until they are gone.
func deleteObjects(b *testing.B) {
	ctx := context.Background()
	gp := versioned.NewForConfigOrDie(stack.ControlPlane.Config()).StableV1()
	ns := stack.Namespace()
	all := metav1.ListOptions{}
	// Tens of thousands of objects can take the API server longer than its
	// request timeout: it answers 504 (or resets the stream) and goes on
	// deleting. So an error is logged, and the deletion asked for again
	// while objects are left.
	deleteAll := func() {
		for _, err := range []error{
			gp.PullRequests(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, all),
			gp.Branches(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, all),
			gp.GitHubDeployments(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, all),
		} {
			if err != nil {
				b.Logf("deleting the objects: %v (asked again while any is left)", err)
			}
		}
	}
	deleteAll()
	asked := time.Now()
	for deadline := time.Now().Add(5 * time.Minute); countObjects(b) > 0; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			b.Fatal("objects still there 5 minutes after their deletion")
		}
		if time.Since(asked) > 30*time.Second {
			deleteAll()
			asked = time.Now()
		}
	}
}

// waitPersisted waits until the running function has nothing pending and
// returns its checkpoint.
func waitPersisted(b *testing.B) eventcount.Summary {
	deadline := time.Now().Add(time.Minute)
	for gauge(scrape(b), "gitpulse_metrics_checkpoint_pending_events") != 0 {
		if time.Now().After(deadline) {
			b.Fatal("checkpoint still pending after a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cm, err := stack.Kube.CoreV1().ConfigMaps(stack.Namespace()).Get(context.Background(), "gitpulse-metrics-checkpoint", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	sum, err := eventcount.Inspect(cm)
	if err != nil {
		b.Fatal(err)
	}
	return sum
}

// benchMetricsSustained: deliveries at a steady rate into the running
// function: its CPU per 1,000 Events on the watch path, checkpoint writes
// by result, whether the counters end exact, and its RSS and checkpoint
// size after.
func benchMetricsSustained(b *testing.B) {
	seconds, rate := envInt("GITPULSE_BENCH_SUSTAINED_SECONDS", 60), envInt("GITPULSE_BENCH_SUSTAINED_RATE", 100)
	n := seconds * rate
	before := scrape(b)
	counted := sumCounter(before, "gitpulse_pull_request_events_total")
	okBefore, errBefore := checkpointWrites(before)
	pid := stack.MetricsPid()
	cpuBefore := cpuSeconds(pid)
	first := int(eventsCreated.Load())

	// A ticker hands out one Event per 1/rate s; 8 writers create them, so
	// a slow request does not slow the stream.
	jobs := make(chan int, rate)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := createMetricsEvent(context.Background(), i); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for i := range n {
		<-tick.C
		jobs <- first + i
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	sent := time.Since(start)
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	eventsCreated.Store(int64(first + n))

	want := counted + float64(n)
	deadline := time.Now().Add(time.Minute)
	var after string
	for {
		after = scrape(b)
		if got := sumCounter(after, "gitpulse_pull_request_events_total"); got >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cp := waitPersisted(b)
	after = scrape(b)
	got := sumCounter(after, "gitpulse_pull_request_events_total")
	cpu := cpuSeconds(pid) - cpuBefore
	okAfter, errAfter := checkpointWrites(after)
	exact := "exact"
	if got != want {
		exact = fmt.Sprintf("NOT exact: %v, want %v", got, want)
	}
	record("metrics sustained", "%d Events in %s (%.0f/s)\tCPU %.2f s (%.3f s per 1,000 Events)\tcheckpoint writes %v ok, %v failed\tcounters %s\tRSS %.1f MiB\tcheckpoint %d B, watermark only: %v",
		n, sent.Round(time.Second), float64(n)/sent.Seconds(), cpu, cpu/float64(n)*1000, okAfter-okBefore, errAfter-errBefore, exact,
		rssMiB(pid), cp.Bytes, cp.Version == 3 && len(cp.CountedUIDs) == 0)
	b.ReportMetric(cpu/float64(n)*1000, "CPU-s/1000-events")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func checkpointWrites(body string) (ok, failed float64) {
	for _, l := range strings.Split(body, "\n") {
		var v float64
		switch {
		case strings.HasPrefix(l, `gitpulse_metrics_checkpoint_writes_total{result="success"} `):
			fmt.Sscanf(l[strings.LastIndex(l, " ")+1:], "%g", &v)
			ok = v
		case strings.HasPrefix(l, `gitpulse_metrics_checkpoint_writes_total{result="error"} `):
			fmt.Sscanf(l[strings.LastIndex(l, " ")+1:], "%g", &v)
			failed = v
		}
	}
	return ok, failed
}

// gauge is the value of an unlabelled sample.
func gauge(body, name string) float64 {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name+" ") {
			var v float64
			fmt.Sscanf(l[len(name)+1:], "%g", &v)
			return v
		}
	}
	return -1
}

// cpuSeconds is the user + system CPU time of a process (/proc/pid/stat,
// in clock ticks of 1/100 s, the value on Linux for every architecture Go
// supports here).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command may contain spaces: fields start after the last ')'.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 13 {
		return -1
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100
}
