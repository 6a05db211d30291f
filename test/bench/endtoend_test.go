package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"

	"github.com/liatrio/gitpulse/internal/eventingstack"
	"github.com/liatrio/gitpulse/internal/ghwebhook"
	"github.com/liatrio/gitpulse/internal/localrun"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// The end-to-end group: signed pull_request "opened" webhooks at the webhook
// entry — the real GitHubSource receive adapter — through the real Broker
// (ingress, in-memory channel, filter, Trigger) to the recorder, the
// PullRequest it writes and the metrics function counting its Event, at
// fixed rates (GITPULSE_BENCH_E2E_RATES, default 10,100,300 deliveries/s)
// for GITPULSE_BENCH_E2E_SECONDS each (default 30), every delivery a new
// pull request. It runs on a stack of its own (`make run`'s, with eventing),
// started for the group and stopped after it: a fresh API server, and only
// one Knative Eventing per machine (it waits for the machine-wide lock).
//
// What is observed, all on this process's clock:
//
//   - the send: just before the request to the adapter;
//   - every hop between Knative's processes and to the recorder: they all
//     reach each other through the stack's in-process proxy (no cluster
//     DNS here), a tunnel per connection that follows HTTP's turns on it
//     and reports each request with its CloudEvent id, arrival and answer
//     (eventingstack.Proxy.Observe) — so retries, the recorder's answers
//     and dead-lettering are seen per delivery;
//   - the object written: a watch on the PullRequests. An object's own
//     timestamps cannot say it: creationTimestamp and managedFields times
//     are whole seconds. The watch is also what every consumer (the
//     metrics function's informers included) sees; its delivery on
//     loopback adds about a millisecond;
//   - the Event: a watch on the recorder's Events (resourceVersion and the
//     recorder's eventTime, microseconds);
//   - counted: /metrics polled (pollInterval: 20 ms at 10/s, 50 ms at
//     100/s, 100 ms at 300/s; a scrape costs the function about as much CPU
//     as a few deliveries, so the poll is sparser where the CPU is scarce).
//     The function counts Events in the order its watch delivers them,
//     resourceVersion order, so the k-th Event of a rate (by
//     resourceVersion) is counted when the counter has grown by k; its time
//     is interpolated between the poll that first shows it and the one
//     before, the Events counted in between spread evenly over the interval
//     (one alone: the midpoint, so within half an interval). The function's
//     own gitpulse_metrics_event_lag_seconds over the same Events is printed
//     beside it.
func benchEndToEnd(b *testing.B) {
	stopFirstStack()
	rates := envInts("GITPULSE_BENCH_E2E_RATES", []int{10, 100, 300})
	seconds := envInt("GITPULSE_BENCH_E2E_SECONDS", 30)
	dir, err := os.MkdirTemp("", "gitpulse-bench-e2e-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	startCtx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	s, err := localrun.Start(startCtx, localrun.Options{Root: stack.Root(), BinDir: stack.BinDir(), Eventing: true, Dir: dir,
		Env: []string{"GITPULSE_LOG_LEVEL=warn"},
		EventingWaiting: func() {
			fmt.Fprintln(os.Stderr, "bench end-to-end: waiting for another Knative Eventing on this machine to stop ...")
		}})
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	o := observeStack(ctx, b, s)
	o.recorderLog = filepath.Join(dir, "gitpulse-recorder.log")
	defer s.Eventing().Proxy().Observe(nil)
	for _, rate := range rates {
		b.Run(fmt.Sprintf("%d-per-s", rate), func(b *testing.B) { runEndToEnd(ctx, b, s, o, rate, seconds) })
	}
}

// pollInterval is how often /metrics is read while rate deliveries a
// second flow: rate/2 ms, within 20 and 100 ms.
func pollInterval(rate int) time.Duration {
	return min(max(time.Duration(rate)*time.Millisecond/2, 20*time.Millisecond), 100*time.Millisecond)
}

// e2eInFlight bounds the sender's requests in flight.
const e2eInFlight = 500

// e2eRepositories is how many repositories the deliveries spread over
// (the metrics function's series, and so its scrape, stay small).
const e2eRepositories = 50

// e2eObserver collects what the group observes of one stack.
type e2eObserver struct {
	s *localrun.Stack
	// recorderLog is the recorder process's log: its refusals, with
	// their reasons (refusals the in-flight bound in front of it answers
	// 503 are not in it).
	recorderLog string

	mu      sync.Mutex
	hops    map[string][]eventingstack.Hop // by CloudEvent id = delivery id
	objects map[string]time.Time           // PullRequest name -> first seen
	events  map[string]seenEvent           // Event name -> ...
	polls   []countPoll
	every   atomic.Int64 // the poll interval, ns
	err     error
}

type seenEvent struct {
	rv      uint64
	written time.Time // the recorder's eventTime
}

// countPoll is one read of /metrics: the pull request Events counted,
// read between start and end.
type countPoll struct {
	start, end time.Time
	counted    float64
}

func (p countPoll) mid() time.Time { return p.start.Add(p.end.Sub(p.start) / 2) }

func observeStack(ctx context.Context, b *testing.B, s *localrun.Stack) *e2eObserver {
	o := &e2eObserver{s: s, hops: map[string][]eventingstack.Hop{}, objects: map[string]time.Time{}, events: map[string]seenEvent{}}
	o.every.Store(int64(pollInterval(1)))
	s.Eventing().Proxy().Observe(func(h eventingstack.Hop) {
		if h.ID == "" {
			return
		}
		o.mu.Lock()
		o.hops[h.ID] = append(o.hops[h.ID], h)
		o.mu.Unlock()
	})
	ns := s.Namespace()
	// The objects' metadata is enough (their names): a cheaper watch for
	// the API server and this process, which share the cores measured.
	prs := metadata.NewForConfigOrDie(s.ControlPlane.Config()).Resource(stablev1.SchemeGroupVersion.WithResource("pullrequests")).Namespace(ns)
	events := s.Kube.CoreV1().Events(ns)
	selector := fields.OneTermEqualSelector("reportingComponent", stablev1.ReportingController).String()
	prList, err := prs.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		b.Fatal(err)
	}
	evList, err := events.List(ctx, metav1.ListOptions{Limit: 1, FieldSelector: selector})
	if err != nil {
		b.Fatal(err)
	}
	go o.watch(ctx, prList.ResourceVersion, func(ctx context.Context, rv string) (watch.Interface, error) {
		return prs.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
	}, func(obj any, at time.Time) {
		pr := obj.(*metav1.PartialObjectMetadata)
		if _, seen := o.objects[pr.Name]; !seen {
			o.objects[pr.Name] = at
		}
	})
	go o.watch(ctx, evList.ResourceVersion, func(ctx context.Context, rv string) (watch.Interface, error) {
		return events.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true, FieldSelector: selector})
	}, func(obj any, _ time.Time) {
		ev := obj.(*corev1.Event)
		rv, _ := strconv.ParseUint(ev.ResourceVersion, 10, 64)
		o.events[ev.Name] = seenEvent{rv: rv, written: ev.EventTime.Time}
	})
	go o.pollCounted(ctx)
	return o
}

// watch follows one resource from rv, watching again from the last
// resourceVersion seen whenever a watch ends, and hands each ADDED object
// to added (under o.mu) with the time it arrived.
func (o *e2eObserver) watch(ctx context.Context, rv string, start func(context.Context, string) (watch.Interface, error), added func(obj any, at time.Time)) {
	for ctx.Err() == nil {
		w, err := start(ctx, rv)
		if err != nil {
			o.fail(err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			at := time.Now()
			if ev.Type == watch.Error {
				o.fail(fmt.Errorf("watch: %v", ev.Object))
				break
			}
			if m, err := meta.Accessor(ev.Object); err == nil {
				rv = m.GetResourceVersion()
			}
			if ev.Type == watch.Added {
				o.mu.Lock()
				added(ev.Object, at)
				o.mu.Unlock()
			}
		}
		w.Stop()
	}
}

func (o *e2eObserver) fail(err error) {
	o.mu.Lock()
	if o.err == nil {
		o.err = err
	}
	o.mu.Unlock()
}

func (o *e2eObserver) pollCounted(ctx context.Context) {
	client := &http.Client{Timeout: 5 * time.Second}
	next := time.Now()
	for {
		next = next.Add(time.Duration(o.every.Load()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		start := time.Now()
		fams, err := scrapeFamilies(client, o.s.MetricsURL())
		if err != nil {
			continue // the function is up for the whole group; a miss only widens the interval
		}
		p := countPoll{start: start, end: time.Now(), counted: familySum(fams["gitpulse_pull_request_events_total"])}
		o.mu.Lock()
		o.polls = append(o.polls, p)
		o.mu.Unlock()
	}
}

func scrapeFamilies(client *http.Client, url string) (map[string]*dto.MetricFamily, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(bytes.NewReader(body))
}

func familySum(f *dto.MetricFamily) float64 {
	var sum float64
	for _, m := range f.GetMetric() {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// counted is the newest poll's count.
func (o *e2eObserver) counted() float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.polls) == 0 {
		return 0
	}
	return o.polls[len(o.polls)-1].counted
}

// countedAt is when the count reached n: between the poll that first shows
// it and the one before, the counts in between spread evenly.
func (o *e2eObserver) countedAt(n float64) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := sort.Search(len(o.polls), func(i int) bool { return o.polls[i].counted >= n })
	if i == len(o.polls) {
		return time.Time{}, false
	}
	if i == 0 {
		return o.polls[0].mid(), true
	}
	prev, this := o.polls[i-1], o.polls[i]
	frac := (n - prev.counted - 0.5) / (this.counted - prev.counted)
	return prev.mid().Add(time.Duration(frac * float64(this.mid().Sub(prev.mid())))), true
}

// hop kinds, by the Service host asked for.
const (
	hopIngress = iota
	hopChannel
	hopFilter
	hopRecorder
	hopDeadLetter
	hopKinds
)

func (o *e2eObserver) hopKind(host string) int {
	r := o.s.Routing()
	switch {
	case strings.HasPrefix(host, "broker-ingress."):
		return hopIngress
	case strings.Contains(host, "-kn-channel."):
		return hopChannel
	case strings.HasPrefix(host, "broker-filter."):
		return hopFilter
	case host == r.FunctionHost:
		return hopRecorder
	case host == r.DeadLetterHost:
		return hopDeadLetter
	}
	return -1
}

// e2eDelivery is what the group learns of one delivery.
type e2eDelivery struct {
	id, object string
	sent       time.Time
	answer     int // the adapter's; -1: none within GitHub's 10 s
	answerTook time.Duration
	// first[k] is the first hop of kind k (zero Start when none);
	// attempts counts the recorder's, codes its answers.
	first     [hopKinds]eventingstack.Hop
	attempts  int
	codes     []int
	seen      time.Time // the object
	event     seenEvent
	hasEvent  bool
	countedAt time.Time
}

// runEndToEnd sends rate deliveries a second for seconds and prints what
// they took.
func runEndToEnd(ctx context.Context, b *testing.B, s *localrun.Stack, o *e2eObserver, rate, seconds int) {
	n := rate * seconds
	run := seq.Add(1)
	now := time.Now().UTC()
	ds := make([]*e2eDelivery, n)
	bodies := make([]ghwebhook.Delivery, n)
	for i := range ds {
		repo := ghwebhook.Repo(fmt.Sprintf("e2e-%d/repo-%d", run, i%e2eRepositories))
		id := fmt.Sprintf("e2e-%d-%d", run, i)
		bodies[i] = ghwebhook.Delivery{Event: "pull_request", ID: id, Body: ghwebhook.PullRequest{Repo: repo, Number: i + 1,
			Action: "opened", User: "u", Title: "t", Head: "h", HeadSHA: "abc", CreatedAt: now, UpdatedAt: now}.Payload()}
		ds[i] = &e2eDelivery{id: id, object: naming.PullRequestName(string(repo), repo.ID(), int64(i+1)), answer: -1}
	}
	// Wait for the previous rate's last counts, then take the baseline.
	o.every.Store(int64(pollInterval(rate)))
	time.Sleep(3 * pollInterval(rate))
	counted0 := o.counted()
	lag0 := scrapeLag(b, s)
	deadLetters0 := len(s.DeadLetter().Events())
	queued0, bounded0 := s.RecorderQueue().Queued(), s.RecorderQueue().Refused()
	cpu0 := e2eCPU(b, s)
	logFrom := fileSize(o.recorderLog)
	api0 := apiserverLatency(b, s)

	// GitHub waits 10 s for a webhook's answer, then marks the delivery
	// failed (and never retries it by itself): so does this sender.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	url, secret := s.WebhookURL(), []byte(s.Secret())
	var wg sync.WaitGroup
	var late time.Duration
	// At most e2eInFlight sends at once: this process also runs the
	// stack's proxies and shares their file descriptors. When the path
	// stalls, the sender falls behind (late) instead.
	inFlight := make(chan struct{}, e2eInFlight)
	start := time.Now()
	for i, d := range ds {
		at := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		inFlight <- struct{}{}
		late = max(late, time.Since(at))
		wg.Add(1)
		go func() {
			defer func() { <-inFlight; wg.Done() }()
			req, err := ghwebhook.Request(ctx, url, secret, bodies[i])
			if err != nil {
				return
			}
			d.sent = time.Now()
			resp, err := client.Do(req)
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			d.answer, d.answerTook = resp.StatusCode, time.Since(d.sent)
		}()
	}
	wg.Wait()
	sendWall := time.Since(start)
	client.CloseIdleConnections() // a new client per rate: hold no descriptors past it

	// Until every accepted delivery is an object whose Event is counted,
	// or dead-lettered, or the Broker's retries (~15 s) are long over.
	deadline := time.Now().Add(90 * time.Second)
	for {
		done := o.settle(ds, counted0)
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * pollInterval(rate))
	o.settle(ds, counted0)
	cpu := e2eCPU(b, s).minus(cpu0)
	api := apiserverLatency(b, s).minus(api0)
	lag := scrapeLag(b, s).minus(lag0)
	if o.err != nil {
		b.Logf("end-to-end: an observer failed (figures may miss deliveries): %v", o.err)
	}

	// Latencies over the deliveries that made it; what did not, counted.
	var object, metrics, adapterAnswer, recorderAnswer []time.Duration
	parts := make([][]time.Duration, 6)
	answers, recorderCodes := map[int]int{}, map[int]int{}
	var attempts, retried, extraAttempts, noObject, notCounted int
	for _, d := range ds {
		answers[d.answer]++
		for _, c := range d.codes {
			recorderCodes[c]++
		}
		attempts += d.attempts
		if d.attempts > 1 {
			retried++
			extraAttempts += d.attempts - 1
		}
		if d.answer/100 == 2 {
			adapterAnswer = append(adapterAnswer, d.answerTook)
		}
		if d.seen.IsZero() {
			if d.answer/100 == 2 {
				noObject++
			}
			continue
		}
		object = append(object, d.seen.Sub(d.sent))
		if d.countedAt.IsZero() {
			notCounted++
		} else {
			metrics = append(metrics, d.countedAt.Sub(d.sent))
		}
		f := d.first
		if f[hopRecorder].Start.IsZero() || f[hopFilter].Start.IsZero() || f[hopChannel].Start.IsZero() || f[hopIngress].Start.IsZero() {
			continue
		}
		recorderAnswer = append(recorderAnswer, f[hopRecorder].Took)
		parts[0] = append(parts[0], f[hopIngress].Start.Sub(d.sent))              // adapter: parse, check, send
		parts[1] = append(parts[1], f[hopChannel].Start.Sub(f[hopIngress].Start)) // broker ingress
		parts[2] = append(parts[2], f[hopFilter].Start.Sub(f[hopChannel].Start))  // in-memory channel dispatcher
		parts[3] = append(parts[3], f[hopRecorder].Start.Sub(f[hopFilter].Start)) // broker filter (Trigger)
		parts[4] = append(parts[4], d.seen.Sub(f[hopRecorder].Start))             // recorder, object write, watch
		if !d.countedAt.IsZero() && d.hasEvent {
			parts[5] = append(parts[5], d.countedAt.Sub(d.event.written)) // Event create, metrics watch, count
		}
	}
	dead := s.DeadLetter().Events()[deadLetters0:]
	deadLettered := len(dead)
	refusals := refusalsSince(o.recorderLog, logFrom)

	ms := func(ds []time.Duration, p float64) string { return fmtMs(pctOf(ds, p)) }
	line := fmt.Sprintf("end-to-end %d/s   object p50 %sms p99 %sms   metrics p50 %sms p99 %sms",
		rate, ms(object, 0.5), ms(object, 0.99), ms(metrics, 0.5), ms(metrics, 0.99))
	fmt.Println(line)
	record(fmt.Sprintf("end-to-end %d/s", rate), "%s", strings.TrimPrefix(line, fmt.Sprintf("end-to-end %d/s   ", rate)))
	queued, bounded := s.RecorderQueue().Queued()-queued0, s.RecorderQueue().Refused()-bounded0
	outcome := fmt.Sprintf("sent %d in %s (%.0f/s, sender at most %s late)   adapter answers %s   recorder attempts %d (%d deliveries retried, %d retries) answers %s (its own refusals %s; the bound in front of it queued %d, refused %d)   dead-lettered %d%s   no object %d   object not counted %d",
		n, sendWall.Round(time.Millisecond), float64(n)/sendWall.Seconds(), late.Round(time.Millisecond), codes(answers),
		attempts, retried, extraAttempts, codes(recorderCodes), refusals, queued, bounded, deadLettered, deadLetterCauses(dead), noObject, notCounted)
	fmt.Printf("end-to-end %d/s   %s\n", rate, outcome)
	record(fmt.Sprintf("  end-to-end %d/s outcome", rate), "%s", outcome)
	pp := func(ds []time.Duration) string { return ms(ds, 0.5) + "/" + ms(ds, 0.99) }
	breakdown := fmt.Sprintf("p50/p99 ms: adapter %s, broker ingress %s, channel dispatcher %s, filter %s, recorder to object watched %s, Event to counted %s\t(adapter answers %s, recorder answers %s; API server POST pullrequests %s, events %s; the function's lag histogram p50/p99 %s/%s ms)",
		pp(parts[0]), pp(parts[1]), pp(parts[2]), pp(parts[3]), pp(parts[4]), pp(parts[5]),
		pp(adapterAnswer), pp(recorderAnswer), api.mean("pullrequests"), api.mean("events"), fmtMs(lag.quantile(0.5)), fmtMs(lag.quantile(0.99)))
	record(fmt.Sprintf("  end-to-end %d/s parts", rate), "%s", breakdown)
	machine := "?"
	if cpu.cores > 0 {
		machine = fmt.Sprintf("%.2f of %d cores", cpu.machineBusy/cpu.wall.Seconds(), cpu.cores)
	}
	busy := fmt.Sprintf("CPU ms per delivery: %s\tmachine busy %s (other work on it included)", cpu.perDelivery(n), machine)
	record(fmt.Sprintf("  end-to-end %d/s CPU", rate), "%s", busy)
	b.ReportMetric(pctOf(object, 0.99).Seconds()*1000, "object-p99-ms")
	b.ReportMetric(pctOf(metrics, 0.99).Seconds()*1000, "metrics-p99-ms")
}

// settle completes ds from what was observed, and reports whether every
// delivery the adapter accepted has an outcome: its object seen and its
// Event counted, or dead-lettered.
func (o *e2eObserver) settle(ds []*e2eDelivery, counted0 float64) bool {
	o.mu.Lock()
	var evs []*e2eDelivery
	done := true
	for _, d := range ds {
		d.first, d.attempts, d.codes = [hopKinds]eventingstack.Hop{}, 0, d.codes[:0]
		deadLettered := false
		for _, h := range o.hops[d.id] {
			k := o.hopKind(h.Host)
			if k < 0 {
				continue
			}
			if f := d.first[k]; f.Start.IsZero() || h.Start.Before(f.Start) {
				d.first[k] = h
			}
			switch k {
			case hopRecorder:
				d.attempts++
				d.codes = append(d.codes, h.Code)
			case hopDeadLetter:
				deadLettered = true
			}
		}
		d.seen = o.objects[d.object]
		d.event, d.hasEvent = o.events[naming.EventName(d.id)]
		if d.hasEvent {
			evs = append(evs, d)
		}
		if d.answer/100 == 2 && !deadLettered && (d.seen.IsZero() || !d.hasEvent) {
			done = false
		}
	}
	o.mu.Unlock()
	// The k-th of this rate's Events, in resourceVersion order, is counted
	// when the count has grown by k.
	sort.Slice(evs, func(i, j int) bool { return evs[i].event.rv < evs[j].event.rv })
	for k, d := range evs {
		t, ok := o.countedAt(counted0 + float64(k+1))
		if !ok {
			done = false
			d.countedAt = time.Time{}
			continue
		}
		d.countedAt = t
	}
	return done
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// refusalsSince counts the recorder's "delivery refused" log lines after
// offset by code and reason (its first words; a reason names the object).
func refusalsSince(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "{?}"
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return "{?}"
	}
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg    string `json:"msg"`
			Code   int    `json:"code"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "delivery refused" {
			continue
		}
		words := strings.Fields(l.Reason)
		counts[fmt.Sprintf("%d %s", l.Code, strings.Join(words[:min(len(words), 6)], " "))]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%q: %d", k, counts[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func pctOf(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// fmtMs is d in milliseconds, one decimal under 10 ms; "-" when unknown.
func fmtMs(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(d.Seconds()*1000, 'f', 1, 64)
	}
	return strconv.FormatInt(d.Round(time.Millisecond).Milliseconds(), 10)
}

// deadLetterCauses says where the Broker gave up on the dead-lettered
// deliveries and on what answer, from the extensions Knative adds to a
// dead-lettered CloudEvent (knativeerrordest, knativeerrorcode): e.g.
// " (http://broker-filter.knative-eventing.svc.cluster.local/... 502: 3)".
func deadLetterCauses(evs []eventingstack.DeadLetterEvent) string {
	if len(evs) == 0 {
		return ""
	}
	n := map[string]int{}
	for _, e := range evs {
		n[e.ErrorDest+" "+cmp.Or(e.ErrorCode, "no code")]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, n[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func codes(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		name := strconv.Itoa(k)
		if k < 0 {
			name = "none in 10 s"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", name, m[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// lagSnapshot is gitpulse_metrics_event_lag_seconds at one scrape.
type lagSnapshot struct {
	bounds []float64
	counts []uint64 // cumulative
	count  uint64
}

func scrapeLag(b *testing.B, s *localrun.Stack) lagSnapshot {
	// Retried: after an overloaded rate this process may be short of file
	// descriptors for a while.
	var fams map[string]*dto.MetricFamily
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		if fams, err = scrapeFamilies(http.DefaultClient, s.MetricsURL()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal(err)
		}
	}
	var l lagSnapshot
	for _, m := range fams["gitpulse_metrics_event_lag_seconds"].GetMetric() {
		for _, bk := range m.GetHistogram().GetBucket() {
			l.bounds = append(l.bounds, bk.GetUpperBound())
			l.counts = append(l.counts, bk.GetCumulativeCount())
		}
		l.count = m.GetHistogram().GetSampleCount()
	}
	return l
}

func (l lagSnapshot) minus(o lagSnapshot) lagSnapshot {
	out := lagSnapshot{bounds: l.bounds, counts: make([]uint64, len(l.counts)), count: l.count - o.count}
	for i := range l.counts {
		out.counts[i] = l.counts[i]
		if i < len(o.counts) {
			out.counts[i] -= o.counts[i]
		}
	}
	return out
}

// quantile interpolates within the bucket, as PromQL's histogram_quantile
// does; -1 when empty or beyond the last finite bound.
func (l lagSnapshot) quantile(q float64) time.Duration {
	if l.count == 0 {
		return -1
	}
	rank := q * float64(l.count)
	lower, below := 0.0, uint64(0)
	for i, c := range l.counts {
		if float64(c) >= rank {
			if i == len(l.counts)-1 && l.bounds[i] > 1e300 {
				return -1
			}
			in := float64(c - below)
			frac := 1.0
			if in > 0 {
				frac = (rank - float64(below)) / in
			}
			return time.Duration((lower + (l.bounds[i]-lower)*frac) * float64(time.Second))
		}
		lower, below = l.bounds[i], c
	}
	return -1
}

// apiLatency sums the API server's own request durations (count and sum of
// apiserver_request_duration_seconds) of POSTs by resource.
type apiLatency map[string][2]float64

func apiserverLatency(b *testing.B, s *localrun.Stack) apiLatency {
	body, err := s.Kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	out := apiLatency{}
	for _, m := range fams["apiserver_request_duration_seconds"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["verb"] != "POST" {
			continue
		}
		v := out[labels["resource"]]
		v[0] += float64(m.GetHistogram().GetSampleCount())
		v[1] += m.GetHistogram().GetSampleSum()
		out[labels["resource"]] = v
	}
	if cpu := fams["process_cpu_seconds_total"].GetMetric(); len(cpu) > 0 {
		out["cpu"] = [2]float64{0, cpu[0].GetCounter().GetValue()}
	}
	return out
}

func (a apiLatency) minus(o apiLatency) apiLatency {
	out := apiLatency{}
	for k, v := range a {
		out[k] = [2]float64{v[0] - o[k][0], v[1] - o[k][1]}
	}
	return out
}

// mean is the mean POST duration of resource in ms.
func (a apiLatency) mean(resource string) string {
	v := a[resource]
	if v[0] == 0 {
		return "-"
	}
	return fmtMs(time.Duration(v[1] / v[0] * float64(time.Second)))
}

// e2eCPUSample is the CPU-seconds of every process on a delivery's path,
// and of the whole machine.
type e2eCPUSample struct {
	procs       map[string]float64
	machineBusy float64
	cores       int
	at          time.Time
	wall        time.Duration
}

var e2eProcesses = []string{"adapter", "ingress", "channel_dispatcher", "filter", "recorder", "kube-apiserver", "metrics", "bench (proxy, sender, watches)"}

func e2eCPU(b *testing.B, s *localrun.Stack) e2eCPUSample {
	pids := s.Eventing().Pids()
	c := e2eCPUSample{procs: map[string]float64{
		"adapter": cpuSeconds(s.AdapterPid()), "ingress": cpuSeconds(pids["ingress"]),
		"channel_dispatcher": cpuSeconds(pids["channel_dispatcher"]), "filter": cpuSeconds(pids["filter"]),
		"recorder": cpuSeconds(s.RecorderPid()), "metrics": cpuSeconds(s.MetricsPid()),
		"bench (proxy, sender, watches)": cpuSeconds(os.Getpid()),
		"kube-apiserver":                 apiserverLatency(b, s)["cpu"][1],
	}, at: time.Now()}
	c.machineBusy, c.cores = machineBusySeconds()
	return c
}

func (c e2eCPUSample) minus(o e2eCPUSample) e2eCPUSample {
	out := e2eCPUSample{procs: map[string]float64{}, machineBusy: c.machineBusy - o.machineBusy, cores: min(c.cores, o.cores), wall: c.at.Sub(o.at)}
	for k, v := range c.procs {
		out.procs[k] = v - o.procs[k]
	}
	return out
}

func (c e2eCPUSample) perDelivery(n int) string {
	var parts []string
	for _, k := range e2eProcesses {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, c.procs[k]/float64(n)*1000))
	}
	return strings.Join(parts, ", ")
}

// machineBusySeconds is the CPU time every core spent not idle (/proc/stat,
// clock ticks of 1/100 s), and the number of cores.
func machineBusySeconds() (float64, int) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	var busy float64
	cores := 0
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if strings.HasPrefix(f[0], "cpu") && f[0] != "cpu" {
			cores++
		}
		if f[0] != "cpu" {
			continue
		}
		// user nice system idle iowait irq softirq steal guest guest_nice:
		// not idle, not iowait, and guest time is already in user and nice.
		for i, v := range f[1:] {
			x, _ := strconv.ParseFloat(v, 64)
			switch i {
			case 0, 1, 2, 5, 6, 7:
				busy += x
			}
		}
	}
	return busy / 100, cores
}

// envInts reads a comma-separated list of positive integers.
func envInts(name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return def
	}
	return out
}
