// Package inflight bounds what an HTTP server holds at once: the number of
// requests being served and the request body bytes they may read. A request
// that does not fit is answered 503 with Retry-After and its body discarded
// as it arrives, never kept, so a burst of large bodies (100 concurrent 25 MiB webhooks) costs a few
// connections, not gigabytes. The Broker and GitHub's redelivery treat 503 as
// "try again", which is what it means here.
package inflight

import (
	"context"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Limiter. A zero bound is no bound.
type Options struct {
	// MaxRequests bounds the requests served at once.
	MaxRequests int
	// MaxBytes bounds the sum of the bodies of the requests served at once.
	// A request is charged its Content-Length, or MaxBodyBytes when the
	// length is unknown (chunked); a single request is charged at most
	// MaxBytes, so it is admitted when nothing else is in flight.
	MaxBytes int64
	// MaxBodyBytes is what a body of unknown length is charged, and such a
	// body is cut off there (the handler sees *http.MaxBytesError).
	// Default 25 MiB, GitHub's cap on webhook payloads.
	MaxBodyBytes int64
	// RetryAfter is the Retry-After of a 503; default one second.
	RetryAfter time.Duration
	// MaxQueued bounds the requests that wait, in arrival order, for one
	// of the MaxRequests places instead of being answered 503 at once, as
	// Knative Serving's queue-proxy queues up to ten times the
	// revision's containerConcurrency before it refuses (its buildBreaker,
	// knative.dev/serving cmd/queue): a 503 is a retry through every hop
	// of the Broker, which costs more than the wait it saves. A request
	// waits until a place is free or its client goes away. Only the request
	// bound queues: a body that does not fit the byte bound is refused at
	// once, so that memory stays bounded by MaxBytes. 0: nothing waits.
	MaxQueued int
}

// DefaultMaxBodyBytes is GitHub's cap on webhook payloads.
const DefaultMaxBodyBytes = 25 << 20

// Limiter admits requests while they fit. It is safe for concurrent use.
type Limiter struct {
	opts     Options
	mu       sync.Mutex
	requests int
	bytes    int64
	// waiting are the queued requests, oldest first: each is handed a
	// place (its request counted) and its channel closed when one is free.
	waiting []chan struct{}
	refused atomic.Uint64
	queued  atomic.Uint64
}

// New returns a Limiter with opts' defaults filled in.
func New(opts Options) *Limiter {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	return &Limiter{opts: opts}
}

// Acquire reserves one request of n body bytes. It reports false, reserving
// nothing, when that does not fit; otherwise release must be called once
// the request is done.
func (l *Limiter) Acquire(n int64) (release func(), ok bool) {
	return l.acquire(nil, n)
}

// AcquireWait is Acquire that, when only the request bound is full, waits
// in line for a place (at most MaxQueued wait) until ctx is done.
func (l *Limiter) AcquireWait(ctx context.Context, n int64) (release func(), ok bool) {
	return l.acquire(ctx, n)
}

func (l *Limiter) acquire(ctx context.Context, n int64) (release func(), ok bool) {
	if n < 0 {
		n = 0
	}
	if l.opts.MaxBytes > 0 && n > l.opts.MaxBytes {
		n = l.opts.MaxBytes
	}
	l.mu.Lock()
	requestsFull := l.opts.MaxRequests > 0 && (l.requests >= l.opts.MaxRequests || len(l.waiting) > 0)
	if requestsFull && ctx != nil && len(l.waiting) < l.opts.MaxQueued {
		// In line; a place freed is handed over with its request counted.
		ready := make(chan struct{})
		l.waiting = append(l.waiting, ready)
		l.queued.Add(1)
		l.mu.Unlock()
		select {
		case <-ready:
			l.mu.Lock()
		case <-ctx.Done():
			l.mu.Lock()
			select {
			case <-ready: // handed a place as the client went: give it on
				l.requests--
				l.handOn()
			default:
				l.waiting = slices.DeleteFunc(l.waiting, func(c chan struct{}) bool { return c == ready })
			}
			l.mu.Unlock()
			l.refused.Add(1)
			return nil, false
		}
		l.requests-- // counted when handed over; counted again below
		requestsFull = false
	}
	if requestsFull || (l.opts.MaxBytes > 0 && l.bytes+n > l.opts.MaxBytes) {
		l.handOn()
		l.mu.Unlock()
		l.refused.Add(1)
		return nil, false
	}
	l.requests++
	l.bytes += n
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.requests--
			l.bytes -= n
			l.handOn()
		})
	}, true
}

// handOn hands the places free to the oldest waiting requests. l.mu is held.
func (l *Limiter) handOn() {
	for len(l.waiting) > 0 && l.requests < l.opts.MaxRequests {
		l.requests++
		close(l.waiting[0])
		l.waiting = l.waiting[1:]
	}
}

// InFlight is what is reserved now.
func (l *Limiter) InFlight() (requests int, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests, l.bytes
}

// Refused is the number of requests refused so far.
func (l *Limiter) Refused() uint64 { return l.refused.Load() }

// Queued is the number of requests that have waited in line so far.
func (l *Limiter) Queued() uint64 { return l.queued.Load() }

// Handler admits requests to next while they fit and answers the others
// 503 with Retry-After. A refused body is discarded as it arrives (up to
// MaxBodyBytes, a 32 KiB buffer at a time) rather than kept: closing the
// connection on an unread body instead makes most HTTP clients, the
// Broker's among them, see a reset connection rather than the 503 (measured:
// 78 of 100 in docs/benchmarks.md).
func (l *Limiter) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := r.ContentLength
		if n < 0 {
			n = l.opts.MaxBodyBytes
			r.Body = http.MaxBytesReader(w, r.Body, n)
		}
		release, ok := l.AcquireWait(r.Context(), n)
		if !ok {
			if m, _ := io.Copy(io.Discard, io.LimitReader(r.Body, l.opts.MaxBodyBytes)); m >= l.opts.MaxBodyBytes {
				w.Header().Set("Connection", "close")
			}
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(l.opts.RetryAfter.Seconds()))))
			http.Error(w, "too many requests in flight, retry later", http.StatusServiceUnavailable)
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}
