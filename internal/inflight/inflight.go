// Package inflight bounds what an HTTP server holds at once: the number of
// requests being served and the request body bytes they may read. A request
// that does not fit is answered 503 with Retry-After and its body discarded
// as it arrives, never kept, so a burst of large bodies (100 concurrent 25 MiB webhooks) costs a few
// connections, not gigabytes. The Broker and GitHub's redelivery treat 503 as
// "try again", which is what it means here.
package inflight

import (
	"io"
	"math"
	"net/http"
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
}

// DefaultMaxBodyBytes is GitHub's cap on webhook payloads.
const DefaultMaxBodyBytes = 25 << 20

// Limiter admits requests while they fit. It is safe for concurrent use.
type Limiter struct {
	opts     Options
	mu       sync.Mutex
	requests int
	bytes    int64
	refused  atomic.Uint64
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
	if n < 0 {
		n = 0
	}
	if l.opts.MaxBytes > 0 && n > l.opts.MaxBytes {
		n = l.opts.MaxBytes
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if (l.opts.MaxRequests > 0 && l.requests >= l.opts.MaxRequests) ||
		(l.opts.MaxBytes > 0 && l.bytes+n > l.opts.MaxBytes) {
		l.refused.Add(1)
		return nil, false
	}
	l.requests++
	l.bytes += n
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.requests--
			l.bytes -= n
		})
	}, true
}

// InFlight is what is reserved now.
func (l *Limiter) InFlight() (requests int, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests, l.bytes
}

// Refused is the number of requests refused so far.
func (l *Limiter) Refused() uint64 { return l.refused.Load() }

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
		release, ok := l.Acquire(n)
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
