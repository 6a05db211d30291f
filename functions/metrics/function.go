// Package function is the gitpulse metrics function, in the instanced-HTTP
// shape kn func's Go builder expects: New returns an instance whose Start
// reads the environment, builds the clients (function.Start) and starts
// the informers, whose Handle serves /metrics, and whose Stop persists the
// exactness checkpoint. The logic is in internal/metrics and
// internal/function, a generated copy of the repository's pkg/metrics and
// pkg/function (and what they need): kn func builds this folder alone,
// without replace lines, so the module is self-contained
// (docs/architecture.md).
package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	fhttp "knative.dev/func-go/http"

	"github.com/liatrio/gitpulse/functions/metrics/internal/function"
	"github.com/liatrio/gitpulse/functions/metrics/internal/metrics"
)

// The interfaces func-go serves an instanced HTTP function through.
var (
	_ fhttp.Handler           = (*Function)(nil)
	_ fhttp.Starter           = (*Function)(nil)
	_ fhttp.Stopper           = (*Function)(nil)
	_ fhttp.ReadinessReporter = (*Function)(nil)
	_ fhttp.LivenessReporter  = (*Function)(nil)
)

// Name names the function in its logs and as the API client's user agent.
const Name = "gitpulse-metrics"

// Env is the metrics function's configuration: the keys every function
// reads (function.Env) and its own. func.yaml sets them in a cluster.
type Env struct {
	function.Env
	// MaxRepositories caps the distinct repository label values.
	MaxRepositories int `env:"GITPULSE_MAX_REPOSITORIES, default=500"`
	// CheckpointInterval is how often counts are persisted.
	CheckpointInterval time.Duration `env:"GITPULSE_CHECKPOINT_INTERVAL, default=5s"`
	// RepositoryIdleTimeout: a repository with no live Event and no object
	// for this long gives back its label slot; 0 keeps slots for ever.
	RepositoryIdleTimeout time.Duration `env:"GITPULSE_REPOSITORY_IDLE_TIMEOUT, default=24h"`
}

// Configuration keys of the metrics function's own.
const (
	EnvMaxRepositories       = "GITPULSE_MAX_REPOSITORIES"
	EnvCheckpointInterval    = "GITPULSE_CHECKPOINT_INTERVAL"
	EnvRepositoryIdleTimeout = "GITPULSE_REPOSITORY_IDLE_TIMEOUT"
)

// Validate refuses values that parse but make no sense.
func (e *Env) Validate() error {
	var errs []error
	if e.MaxRepositories < 1 {
		errs = append(errs, fmt.Errorf("%s=%d: want a positive integer", EnvMaxRepositories, e.MaxRepositories))
	}
	errs = append(errs, function.PositiveDuration(EnvCheckpointInterval, e.CheckpointInterval))
	if e.RepositoryIdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("%s=%s: want a duration, 0 to keep slots for ever", EnvRepositoryIdleTimeout, e.RepositoryIdleTimeout))
	}
	return errors.Join(errs...)
}

// Function is one instance of the metrics function.
type Function struct {
	mu      sync.Mutex
	svc     *metrics.Service
	rt      *function.Runtime
	handler http.Handler
}

// New is called by func-go's generated main.
func New() *Function {
	function.MatchFuncGoLogs(slog.LevelInfo)
	return &Function{}
}

// Start reads the configuration (func-go's: ./cfg overlaid by the
// environment; see func.yaml for the keys) and starts watching.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	var env Env
	// No request timeout: it would end the reflectors' watches.
	rt, err := function.Start(ctx, cfg, &env, function.Options{
		Name: Name, DefaultMemoryLimit: metrics.DefaultMemoryLimit, DefaultGCPercent: metrics.DefaultGCPercent,
		// The first list of the Events and objects comes in pages of 500
		// (client-go v0.33 does not stream it): at client-go's default 5
		// requests a second, 100k Events took 45 s to list. The burst
		// covers a start-up's pages; afterwards the function makes a
		// checkpoint write every few seconds and the watches.
		QPS: 200, Burst: 400,
		// Those first lists are tens of megabytes; gzip would cost the API
		// server more CPU than the list itself (docs/benchmarks.md).
		DisableCompression: true,
	})
	if err != nil {
		return err
	}
	rt.Logger.Debug("configuration", "namespace", rt.Namespace, "maxRepositories", env.MaxRepositories,
		"checkpointInterval", env.CheckpointInterval.String(), "kubeconfig", env.Kubeconfig != "")
	clients, err := metrics.NewClients(rt.RESTConfig, rt.Namespace)
	var svc *metrics.Service
	if err == nil {
		svc, err = metrics.New(metrics.Options{
			Config: metrics.Config{
				Namespace: rt.Namespace, MaxRepositories: env.MaxRepositories,
				CheckpointInterval: env.CheckpointInterval, RepositoryIdleTimeout: env.RepositoryIdleTimeout,
			},
			Clients: clients, Logger: rt.Logger, OwnsProcess: true,
		})
	}
	if err == nil {
		err = svc.Start(ctx)
	}
	if err != nil {
		rt.Stop()
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.svc != nil {
		_ = svc.Stop(ctx)
		rt.Stop()
		return errors.New("metrics function already started")
	}
	f.svc, f.rt = svc, rt
	f.handler = function.MetricsHandler(svc.Handler(), svc.Ready, svc.Alive)
	return nil
}

// Handle serves GET /metrics (Prometheus text, or OpenMetrics when asked)
// and /health/readiness, /health/liveness.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	h := f.handler
	f.mu.Unlock()
	if h == nil {
		http.Error(w, "metrics function not started", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

// Stop persists what was counted since the last checkpoint.
func (f *Function) Stop(ctx context.Context) error {
	svc, rt := f.service()
	if svc == nil {
		return nil
	}
	defer rt.Stop()
	return svc.Stop(ctx)
}

// Ready is true once the checkpoint is loaded and the caches are synced.
func (f *Function) Ready(ctx context.Context) (bool, error) {
	if svc, _ := f.service(); svc != nil {
		return svc.Ready(ctx)
	}
	return false, nil
}

// Alive is true while the process is healthy.
func (f *Function) Alive(ctx context.Context) (bool, error) {
	if svc, _ := f.service(); svc != nil {
		return svc.Alive(ctx)
	}
	return true, nil
}

func (f *Function) service() (*metrics.Service, *function.Runtime) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.svc, f.rt
}
