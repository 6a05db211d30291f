package function

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

// MetricsHandler serves g on MetricsPath (Prometheus text, or OpenMetrics
// when the scraper asks for it) and the two probes on the health paths.
func MetricsHandler(g prometheus.Gatherer, ready, alive Probe, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, promhttp.HandlerFor(g, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelError),
	}))
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
