package function

import (
	"context"
	"net/http"
)

// Paths an HTTP function serves. func-go answers the health paths itself in
// a cluster (from the function's Ready and Alive); MetricsHandler serves
// them too so that the handler alone behaves the same outside func-go.
const (
	MetricsPath   = "/metrics"
	ReadinessPath = "/health/readiness"
	LivenessPath  = "/health/liveness"
)

// Probe is a function's Ready or Alive.
type Probe func(context.Context) (bool, error)

// MetricsHandler serves metrics on MetricsPath and the two probes on the
// health paths.
func MetricsHandler(metrics http.Handler, ready, alive Probe) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, metrics)
	mux.HandleFunc(ReadinessPath, probeHandler(ready))
	mux.HandleFunc(LivenessPath, probeHandler(alive))
	return mux
}

func probeHandler(check Probe) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, err := check(r.Context())
		if err != nil || !ok {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("OK"))
	}
}
