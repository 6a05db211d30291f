// Package function is the gitpulse metrics function, in the instanced-HTTP
// shape kn func's Go builder expects: New returns an instance whose Start
// starts the informers, whose Handle serves /metrics and the health
// endpoints, and whose Stop persists the exactness checkpoint. The logic is
// in internal/metrics, a generated copy of the repository's pkg/metrics (and
// what it needs): kn func builds this folder alone, without replace lines,
// so the module is self-contained (docs/architecture.md).
package function

import (
	"context"
	"errors"
	"k8s.io/klog/v2"
	"net/http"
	"sync"

	"github.com/liatrio/gitpulse/functions/metrics/internal/memlimit"
	"github.com/liatrio/gitpulse/functions/metrics/internal/metrics"
)

// Function is one instance of the metrics function.
type Function struct {
	mu  sync.Mutex
	svc *metrics.Service
}

// New is called by func-go's generated main.
func New() *Function { return &Function{} }

// Start reads the configuration (the process environment under func-go;
// see func.yaml for the keys) and starts watching.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	c, err := metrics.ConfigFromMap(cfg)
	if err != nil {
		return err
	}
	log := c.NewLogger()
	// client-go logs through klog (reflector warnings, throttling): into the
	// same JSON stream, at the same level.
	klog.SetSlogLogger(log)
	log.Debug("configuration", "namespace", c.Namespace, "maxRepositories", c.MaxRepositories,
		"checkpointInterval", c.CheckpointInterval.String(), "kubeconfig", c.Kubeconfig != "")
	// The process is this function alone: a soft memory limit derived from
	// the container's keeps its RSS close to its live heap, and follows the
	// live heap up rather than make the collector run without pause
	// (pkg/memlimit; GOMEMLIMIT overrides it).
	mem := memlimit.New(metrics.DefaultMemoryLimit)
	svc, err := metrics.New(metrics.Options{Config: c, Logger: log, MemoryLimit: &mem})
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.svc != nil {
		_ = svc.Stop(ctx)
		return errors.New("metrics function already started")
	}
	f.svc = svc
	return nil
}

// Handle serves GET /metrics (Prometheus text, or OpenMetrics when asked)
// and /health/readiness, /health/liveness.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	svc := f.service()
	if svc == nil {
		http.Error(w, "metrics function not started", http.StatusServiceUnavailable)
		return
	}
	svc.Handler().ServeHTTP(w, r)
}

// Stop persists what was counted since the last checkpoint.
func (f *Function) Stop(ctx context.Context) error {
	if svc := f.service(); svc != nil {
		return svc.Stop(ctx)
	}
	return nil
}

// Ready is true once the checkpoint is loaded and the caches are synced.
func (f *Function) Ready(ctx context.Context) (bool, error) {
	if svc := f.service(); svc != nil {
		return svc.Ready(ctx)
	}
	return false, nil
}

// Alive is true while the process is healthy.
func (f *Function) Alive(ctx context.Context) (bool, error) {
	if svc := f.service(); svc != nil {
		return svc.Alive(ctx)
	}
	return true, nil
}

func (f *Function) service() *metrics.Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.svc
}
