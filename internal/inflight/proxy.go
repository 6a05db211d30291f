package inflight

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
)

// Proxy forwards to a function process what the Limiter admits, as Knative
// Serving's queue-proxy (containerConcurrency) does in front of a function in
// a cluster: func-go itself bounds nothing. The health probes (func-go's
// /health/*) pass unbounded, as the kubelet's do.
func (l *Limiter) Proxy(target *url.URL) http.Handler {
	forward := httputil.NewSingleHostReverseProxy(target)
	bounded := l.Handler(forward)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/health/") {
			forward.ServeHTTP(w, r)
			return
		}
		bounded.ServeHTTP(w, r)
	})
}
