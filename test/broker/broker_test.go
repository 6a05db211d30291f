package broker

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liatrio/gitpulse/internal/eventingstack"
)

// function stands in for a deployed function: it records every delivery
// and answers the code answer() chooses for it.
type function struct {
	lis    net.Listener
	answer func(id string, attempt int) int

	mu       sync.Mutex
	attempts map[string][]time.Time
	types    []string
}

func startFunction(t *testing.T, answer func(id string, attempt int) int) *function {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &function{lis: lis, answer: answer, attempts: map[string][]time.Time{}}
	srv := &http.Server{Handler: f}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *function) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("Ce-Id")
	f.mu.Lock()
	f.attempts[id] = append(f.attempts[id], time.Now())
	n := len(f.attempts[id])
	f.types = append(f.types, r.Header.Get("Ce-Type"))
	f.mu.Unlock()
	w.WriteHeader(f.answer(id, n))
}

func (f *function) port() int { return f.lis.Addr().(*net.TCPAddr).Port }

func (f *function) attemptsOf(id string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.attempts[id]...)
}

func (f *function) receivedTypes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.types...)
}

var nsSeq atomic.Int64

// deploy routes a fresh namespace's Broker (config/eventing/broker.yaml) and
// Triggers (func.yaml) to fn, dead letters to a new sink.
func deploy(t *testing.T, fn *function) (*eventingstack.Routing, *eventingstack.DeadLetter) {
	t.Helper()
	dl, err := eventingstack.StartDeadLetter(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dl.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := events.Deploy(ctx, eventingstack.DeployOptions{
		Namespace:      fmt.Sprintf("broker-test-%d", nsSeq.Add(1)),
		BrokerFile:     filepath.Join(env.Root, "config", "eventing", "broker.yaml"),
		DeadLetterFile: filepath.Join(env.Root, "config", "eventing", "dead-letter.yaml"),
		DeadLetterPort: dl.Port(),
		FuncYAML:       filepath.Join(env.Root, "func.yaml"),
		FunctionPort:   fn.port(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, dl
}

// send posts a binary-mode CloudEvent to the Broker as the GitHubSource
// adapter does, and returns the ingress's answer.
func send(t *testing.T, url, id, typ string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(`{"zen":"Keep it logically awesome."}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Ce-Source", "https://github.com/liatrio/gitpulse")
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("sending %s: %v", id, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func readBrokerDelivery(t *testing.T) eventingstack.Delivery {
	t.Helper()
	d, err := eventingstack.ReadDelivery(filepath.Join(env.Root, "config", "eventing", "broker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBroker_EachSubscribedGitHubTypeReachesTheFunctionOthersDoNot(t *testing.T) {
	t.Parallel() // each in its own namespace, on the shared stack
	fn := startFunction(t, func(string, int) int { return http.StatusOK })
	r, dl := deploy(t, fn)

	var want []string
	for i := range 10 { // eight GitHub types, two reconcile triggers
		want = append(want, "gitpulse-recorder-function-trigger-"+strconv.Itoa(i))
	}
	if fmt.Sprint(r.Triggers) != fmt.Sprint(want) {
		t.Errorf("Triggers = %v, want kn func deploy's names %v", r.Triggers, want)
	}
	const gh = "dev.knative.source.github."
	subscribed := []string{gh + "pull_request", gh + "push", gh + "create", gh + "delete", gh + "ping",
		gh + "pull_request_review", gh + "deployment", gh + "deployment_status",
		"dev.knative.sources.ping", "dev.liatr.gitpulse.reconcile"}
	others := []string{gh + "issues", gh + "star", "dev.knative.sources.apiserver.resource.add"}
	for i, typ := range append(append([]string{}, subscribed...), others...) {
		if code := send(t, r.BrokerURL, "route-"+strconv.Itoa(i), typ); code != http.StatusAccepted {
			t.Errorf("ingress answered %d for %s, want 202", code, typ)
		}
	}
	got := map[string]int{}
	for _, typ := range fn.receivedTypes() {
		got[typ]++
	}
	for _, typ := range subscribed {
		if n := got[typ]; n != 1 {
			t.Errorf("function received %s %d times, want once", typ, n)
		}
	}
	for _, typ := range others {
		if n := got[typ]; n != 0 {
			t.Errorf("function received unsubscribed %s %d times", typ, n)
		}
	}
	if n := len(dl.Events()); n != 0 {
		t.Errorf("%d events dead-lettered, want none", n)
	}
}

func TestBroker_ConfigDeliverySpec_RetriesWithBackoffThenDeadLetters(t *testing.T) {
	t.Parallel() // each in its own namespace, on the shared stack
	spec := readBrokerDelivery(t)
	fn := startFunction(t, func(string, int) int { return http.StatusServiceUnavailable })
	r, dl := deploy(t, fn)

	start := time.Now()
	if code := send(t, r.BrokerURL, "always-503", "dev.knative.source.github.push"); code != http.StatusAccepted {
		t.Fatalf("ingress answered %d, want 202 (delivered to the dead-letter sink)", code)
	}
	t.Logf("ingress answered after %s", time.Since(start).Round(10*time.Millisecond))

	attempts := fn.attemptsOf("always-503")
	if len(attempts) != 1+spec.Retry {
		t.Fatalf("function saw %d attempts, want 1 + retry (%d)", len(attempts), spec.Retry)
	}
	for i := 1; i < len(attempts); i++ {
		gap, want := attempts[i].Sub(attempts[i-1]), spec.Delay(i-1)
		t.Logf("retry %d after %s (spec: %s)", i, gap.Round(time.Millisecond), want)
		if gap < want*9/10 || gap > want+1500*time.Millisecond {
			t.Errorf("retry %d came %s after the previous attempt, want %s (%s backoff of %s)", i, gap, want, spec.BackoffPolicy, spec.BackoffDelay)
		}
	}
	dead := dl.Events()
	if len(dead) != 1 {
		t.Fatalf("%d events dead-lettered, want 1", len(dead))
	}
	if d := dead[0]; d.ID != "always-503" || d.ErrorCode != "503" || d.ErrorDest != "http://"+r.FunctionHost {
		t.Errorf("dead letter = id %q knativeerrorcode %q knativeerrordest %q, want always-503, 503, http://%s", d.ID, d.ErrorCode, d.ErrorDest, r.FunctionHost)
	}
	if !dead[0].Received.After(attempts[len(attempts)-1]) {
		t.Errorf("dead-lettered before the last retry")
	}
	if spec.DeadLetterSink == "" || r.DeadLetterHost != eventingstack.ServiceHost(spec.DeadLetterSink, r.Namespace) {
		t.Errorf("dead-letter sink %s is not config's %q", r.DeadLetterHost, spec.DeadLetterSink)
	}
}

// Knative retries 5xx, 404, 408, 409 and 429 and dead-letters any other
// 4xx at once (pkg/kncloudevents/retries.go checkRetry) — the contract the
// recorder's answer codes rely on.
func TestBroker_4xxGoesStraightToDeadLetter_5xxIsRetried(t *testing.T) {
	t.Parallel() // each in its own namespace, on the shared stack
	spec := readBrokerDelivery(t)
	cases := []struct {
		code    int
		retried bool
	}{
		{400, false}, {413, false}, {415, false}, {422, false},
		{404, true}, {408, true}, {409, true}, {429, true},
		{500, true}, {502, true}, {503, true},
	}
	codeOf := map[string]int{}
	for _, c := range cases {
		codeOf["code-"+strconv.Itoa(c.code)] = c.code
	}
	fn := startFunction(t, func(id string, _ int) int { return codeOf[id] })
	r, dl := deploy(t, fn)

	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := send(t, r.BrokerURL, "code-"+strconv.Itoa(c.code), "dev.knative.source.github.pull_request"); code != http.StatusAccepted {
				t.Errorf("ingress answered %d for a function answering %d, want 202", code, c.code)
			}
		}()
	}
	wg.Wait()

	dead := map[string]eventingstack.DeadLetterEvent{}
	for _, d := range dl.Events() {
		dead[d.ID] = d
	}
	for _, c := range cases {
		id := "code-" + strconv.Itoa(c.code)
		want := 1
		if c.retried {
			want = 1 + spec.Retry
		}
		if n := len(fn.attemptsOf(id)); n != want {
			t.Errorf("answer %d: %d attempts, want %d", c.code, n, want)
		}
		if d, ok := dead[id]; !ok {
			t.Errorf("answer %d: not dead-lettered", c.code)
		} else if d.ErrorCode != strconv.Itoa(c.code) {
			t.Errorf("answer %d: knativeerrorcode %q", c.code, d.ErrorCode)
		}
	}
}
