package inflight

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAcquire_AdmitsWhileRequestsAndBytesFit(t *testing.T) {
	type step struct {
		n    int64
		want bool
	}
	tests := []struct {
		name  string
		opts  Options
		steps []step
	}{
		{"request bound", Options{MaxRequests: 2}, []step{{1, true}, {1, true}, {1, false}}},
		{"byte bound", Options{MaxBytes: 100}, []step{{60, true}, {40, true}, {1, false}}},
		{"a body larger than the whole budget is admitted alone", Options{MaxBytes: 100}, []step{{500, true}, {0, true}, {1, false}}},
		{"a larger body waits for room", Options{MaxBytes: 100}, []step{{10, true}, {500, false}}},
		{"no bounds", Options{}, []step{{1 << 40, true}, {1 << 40, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.opts)
			refused := 0
			for i, s := range tt.steps {
				_, ok := l.Acquire(s.n)
				if ok != s.want {
					t.Fatalf("step %d: Acquire(%d) = %v, want %v", i, s.n, ok, s.want)
				}
				if !ok {
					refused++
				}
			}
			if l.Refused() != uint64(refused) {
				t.Fatalf("Refused() = %d, want %d", l.Refused(), refused)
			}
		})
	}
}

func TestAcquire_ReleaseGivesBackExactlyOnce(t *testing.T) {
	l := New(Options{MaxRequests: 1, MaxBytes: 10})
	release, ok := l.Acquire(10)
	if !ok {
		t.Fatal("first request refused")
	}
	release()
	release()
	if r, b := l.InFlight(); r != 0 || b != 0 {
		t.Fatalf("in flight after release: %d requests, %d bytes", r, b)
	}
	if _, ok := l.Acquire(10); !ok {
		t.Fatal("refused after release")
	}
}

func TestHandler_AnswersServiceUnavailableWithRetryAfterWhenFull(t *testing.T) {
	entered, leave := make(chan struct{}), make(chan struct{})
	l := New(Options{MaxBytes: 150, RetryAfter: 1500 * time.Millisecond})
	// A 100 byte request holds its place until the test lets it leave;
	// smaller ones are answered at once.
	srv := httptest.NewServer(l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if n == 100 {
			entered <- struct{}{}
			<-leave
		}
	})))
	defer srv.Close()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(strings.Repeat("x", 100)))
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(strings.Repeat("x", 100)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("answered %d Retry-After %q, want 503 and 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// A small one still fits next to the first.
	resp, err = http.Post(srv.URL, "application/json", strings.NewReader(strings.Repeat("x", 50)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a fitting request answered %d", resp.StatusCode)
	}
	leave <- struct{}{}
	wg.Wait()
	if r, b := l.InFlight(); r != 0 || b != 0 {
		t.Fatalf("in flight afterwards: %d requests, %d bytes", r, b)
	}
}

func TestHandler_CutsOffABodyOfUnknownLengthAtMaxBodyBytes(t *testing.T) {
	l := New(Options{MaxBodyBytes: 10})
	var readErr error
	h := l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, readErr = io.ReadAll(r.Body)
	}))
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 11)))
	req.ContentLength = -1
	h.ServeHTTP(httptest.NewRecorder(), req)
	var tooLarge *http.MaxBytesError
	if !errors.As(readErr, &tooLarge) {
		t.Fatalf("reading 11 bytes of unknown length: %v, want *http.MaxBytesError", readErr)
	}
}

func TestFromEnv_DefaultsAndOverrides(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		wantBytes    int64
		wantRequests int
		wantQueued   int
		wantErr      bool
	}{
		{"defaults", nil, DefaultMaxBytes, DefaultMaxRequests, QueuedPerRequest * DefaultMaxRequests, false},
		{"set", map[string]string{EnvMaxBytes: "1000", EnvMaxRequests: "3", EnvMaxQueued: "7"}, 1000, 3, 7, false},
		{"the queue follows the request bound", map[string]string{EnvMaxRequests: "3"}, DefaultMaxBytes, 3, 30, false},
		{"off", map[string]string{EnvMaxBytes: "0", EnvMaxRequests: "0", EnvMaxQueued: "0"}, 0, 0, 0, false},
		{"not a number", map[string]string{EnvMaxBytes: "lots"}, 0, 0, 0, true},
		{"negative", map[string]string{EnvMaxRequests: "-1"}, 0, 0, 0, true},
		{"a negative queue", map[string]string{EnvMaxQueued: "-1"}, 0, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := FromEnv(func(k string) string { return tt.env[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (l.opts.MaxBytes != tt.wantBytes || l.opts.MaxRequests != tt.wantRequests || l.opts.MaxQueued != tt.wantQueued) {
				t.Fatalf("bounds %d bytes %d requests %d queued, want %d %d %d", l.opts.MaxBytes, l.opts.MaxRequests, l.opts.MaxQueued,
					tt.wantBytes, tt.wantRequests, tt.wantQueued)
			}
		})
	}
}

// Over the request bound, requests wait in line (at most MaxQueued) and are
// served in arrival order as places free; one more is refused at once, and
// one whose client goes away leaves the line without a place.
func TestAcquireWait_QueuesOverTheRequestBoundInArrivalOrder(t *testing.T) {
	l := New(Options{MaxRequests: 1, MaxQueued: 2})
	first, ok := l.AcquireWait(context.Background(), 0)
	if !ok {
		t.Fatal("the first request was refused")
	}
	served := make(chan int, 3)
	goneCtx, goAway := context.WithCancel(context.Background())
	wait := func(i int, ctx context.Context) {
		release, ok := l.AcquireWait(ctx, 0)
		if !ok {
			served <- -i
			return
		}
		served <- i
		release()
	}
	go wait(1, goneCtx)
	waitFor(t, func() bool { return l.Queued() == 1 })
	go wait(2, context.Background())
	waitFor(t, func() bool { return l.Queued() == 2 })
	if _, ok := l.AcquireWait(context.Background(), 0); ok {
		t.Fatal("a third waiter was admitted past MaxQueued 2")
	}
	goAway() // the first in line goes away: the second takes its turn
	if got := <-served; got != -1 {
		t.Fatalf("got %d, want the first waiter refused as its client went", got)
	}
	first()
	if got := <-served; got != 2 {
		t.Fatalf("got %d, want the second waiter served", got)
	}
	if r, _ := l.InFlight(); r != 0 {
		t.Fatalf("%d requests in flight after all left, want 0", r)
	}
	if l.Refused() != 2 {
		t.Fatalf("Refused() = %d, want 2 (the one over the queue, the one gone)", l.Refused())
	}
}

// A body over the byte bound is refused at once even when the queue has
// room: waiting bodies would not be bounded by MaxBytes.
func TestAcquireWait_TheByteBoundDoesNotQueue(t *testing.T) {
	l := New(Options{MaxRequests: 4, MaxBytes: 100, MaxQueued: 10})
	if _, ok := l.AcquireWait(context.Background(), 100); !ok {
		t.Fatal("the first body was refused")
	}
	if _, ok := l.AcquireWait(context.Background(), 1); ok {
		t.Fatal("a body over the byte bound was admitted")
	}
	if l.Queued() != 0 {
		t.Fatalf("Queued() = %d, want 0", l.Queued())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
	}
}

func TestProxy_ForwardsWhatFitsAndPassesProbesUnbounded(t *testing.T) {
	release, holding := make(chan struct{}), make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(holding)
			<-release
		}
		_, _ = io.WriteString(w, "function "+r.URL.Path)
	}))
	defer backend.Close()
	target, _ := url.Parse(backend.URL)
	proxy := httptest.NewServer(New(Options{MaxRequests: 1}).Proxy(target))
	defer proxy.Close()

	slow := make(chan int, 1)
	go func() {
		resp, err := http.Post(proxy.URL+"/slow", "text/plain", strings.NewReader("x"))
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	<-holding // the slow request holds the one slot
	resp, err := http.Post(proxy.URL+"/", "text/plain", strings.NewReader("y"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a second request while the slot is held: %d, Retry-After %q; want 503 with one", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for _, path := range []string{"/health/readiness", "/health/liveness"} {
		resp, err := http.Get(proxy.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "function "+path {
			t.Errorf("%s while the slot is held: %d %q, want the function's answer", path, resp.StatusCode, body)
		}
	}
	close(release)
	if code := <-slow; code != http.StatusOK {
		t.Errorf("the admitted request answered %d", code)
	}
}

// Under concurrent load the proxy keeps its connections to the function
// open for the next requests, as queue-proxy does, instead of opening one
// per request beyond Go's default two idle ones.
func TestProxy_ReusesConnectionsToTheFunction(t *testing.T) {
	var mu sync.Mutex
	opened := 0
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
	}))
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			opened++
			mu.Unlock()
		}
	}
	backend.Start()
	defer backend.Close()
	target, _ := url.Parse(backend.URL)
	const concurrency, rounds = 16, 20
	proxy := httptest.NewServer(New(Options{MaxRequests: concurrency}).Proxy(target))
	defer proxy.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	for range rounds {
		var wg sync.WaitGroup
		for range concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Post(proxy.URL+"/", "application/json", strings.NewReader("{}"))
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	if opened > 2*concurrency {
		t.Fatalf("%d connections opened to the function for %d requests at concurrency %d, want at most %d", opened, concurrency*rounds, concurrency, 2*concurrency)
	}
}
