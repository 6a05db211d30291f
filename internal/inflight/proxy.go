package inflight

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// Proxy forwards to a function process what the Limiter admits, as Knative
// Serving's queue-proxy (containerConcurrency) does in front of a function in
// a cluster: func-go itself bounds nothing. The health probes (func-go's
// /health/*) pass unbounded, as the kubelet's do.
//
// It keeps as many idle connections to the function as requests may be in
// flight (queue-proxy's transport keeps its maximum idle connections per host
// at its maximum connections, "since we're always proxying to the same
// host": knative.dev/serving cmd/queue, buildTransport). Go's default of two
// closed most connections after one request under load, and each new one
// cost both processes an accept, a goroutine and its buffers.
func (l *Limiter) Proxy(target *url.URL) http.Handler {
	forward := httputil.NewSingleHostReverseProxy(target)
	idle := l.opts.MaxRequests
	if idle <= 0 {
		idle = 1000
	}
	forward.Transport = &http.Transport{
		Proxy:               nil, // the function is local; never through $HTTP_PROXY
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle,
		// Below func-go's server's IdleTimeout (30 s, knative.dev/func-go
		// http/service.go and cloudevents/service.go): a connection the
		// function is closing must not be picked for the next request (a
		// POST on it fails, and the proxy answers 502).
		IdleConnTimeout: 15 * time.Second,
		DialContext:     (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	bounded := l.Handler(forward)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/health/") {
			forward.ServeHTTP(w, r)
			return
		}
		bounded.ServeHTTP(w, r)
	})
}
