package function

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/liatrio/gitpulse/pkg/memlimit"
)

// Options say how one function differs at start-up.
type Options struct {
	// Name is the function's name: the "function" attribute of every log
	// line and the API client's user agent.
	Name string
	// DefaultMemoryLimit is the soft memory limit when neither GOMEMLIMIT
	// nor the container's limit says otherwise (pkg/memlimit).
	DefaultMemoryLimit int64
	// DefaultGCPercent is the collector's GOGC when the environment does
	// not set it (0: Go's 100; pkg/memlimit SetGCPercent).
	DefaultGCPercent int
	// Timeout bounds every API request (0: none — a function that watches
	// must leave it unset, or its watches end after it).
	Timeout time.Duration
	// QPS and Burst are the client-side rate limit (0: client-go's 5 and
	// 10).
	QPS   float32
	Burst int
	// DisableCompression asks the API server for uncompressed responses.
	// It compresses a response over 128 KiB when the client accepts gzip
	// (Go's transport asks for it by default): a function that lists
	// tens of thousands of objects from inside the cluster would pay
	// gzip on both ends, the API server's CPU most, to save bandwidth on
	// the cluster's own network (client-go's rest.Config.DisableCompression
	// exists for such clients).
	DisableCompression bool
}

// Runtime is what a started function works with.
type Runtime struct {
	Namespace string
	Instance  string
	Logger    *slog.Logger
	// RESTConfig is the configuration to build the function's API clients
	// from. Each function builds its own (recorder.NewClients,
	// metrics.NewClients): this package links no client of its own, so
	// that a function's process registers no API types it does not read.
	RESTConfig *rest.Config
	// MemoryLimit is the soft memory limit, kept up while the function runs.
	MemoryLimit *memlimit.Limit

	stopMemoryLimit context.CancelFunc
}

// Start reads env from cfg (Process), then sets the function's process up
// from it: a JSON slog logger on stderr at the configured level with
// client-go's klog routed into it, the soft memory limit, and the API
// clients' configuration. It fails, and the function must not serve, when
// the configuration is invalid.
func Start(ctx context.Context, cfg map[string]string, env EnvAccessor, opts Options) (*Runtime, error) {
	if err := Process(ctx, cfg, env); err != nil {
		return nil, fmt.Errorf("%s configuration: %w", opts.Name, err)
	}
	e := env.GetEnv()
	ns, err := e.ResolvedNamespace()
	if err != nil {
		return nil, fmt.Errorf("%s configuration: %w", opts.Name, err)
	}
	log := NewLogger(opts.Name, e.LogLevel)
	MatchFuncGoLogs(e.LogLevel)
	// client-go logs through klog (reflector warnings, throttling): into the
	// same JSON stream, at the same level.
	klog.SetSlogLogger(log)
	restCfg, err := e.RESTConfig()
	if err != nil {
		return nil, err
	}
	restCfg.UserAgent = opts.Name
	restCfg.Timeout = opts.Timeout
	if opts.QPS > 0 {
		restCfg.QPS, restCfg.Burst = opts.QPS, opts.Burst
	}
	restCfg.DisableCompression = opts.DisableCompression
	rt := &Runtime{
		Namespace: ns, Instance: e.ResolvedInstance(opts.Name), Logger: log,
		RESTConfig: restCfg,
	}
	// The process is this function alone: a soft memory limit derived from
	// the container's keeps its RSS close to its live heap, and follows the
	// live heap up rather than make the collector run without pause.
	limit := memlimit.New(opts.DefaultMemoryLimit)
	if gc, fromEnv := memlimit.SetGCPercent(opts.DefaultGCPercent); gc != 100 {
		log.Info("garbage collector target", "gogc", gc, "fromEnv", fromEnv)
	}
	rt.MemoryLimit = &limit
	memCtx, stop := context.WithCancel(context.Background())
	rt.stopMemoryLimit = stop
	go limit.Run(memCtx, log)
	return rt, nil
}

// Stop ends what Start keeps running (the memory limit's upkeep).
func (rt *Runtime) Stop() {
	if rt != nil && rt.stopMemoryLimit != nil {
		rt.stopMemoryLimit()
	}
}

// NewLogger is a function's JSON logger on stderr at level, every line
// naming the function.
func NewLogger(name string, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("function", name)
}
