// Package recorder is the gitpulse recorder function in knative func-go's
// instanced shape: New returns a value whose Start reads the environment and
// builds the Kubernetes clients (pkg/function) and whose Handle records one
// GitHub CloudEvent (pkg/recorder) and answers it. It is deliberately thin.
package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	ce "knative.dev/func-go/cloudevents"

	"github.com/liatrio/gitpulse/pkg/function"
	"github.com/liatrio/gitpulse/pkg/reconcile"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

// The interfaces func-go serves an instanced function through.
var (
	_ ce.Starter           = (*Function)(nil)
	_ ce.Stopper           = (*Function)(nil)
	_ ce.ReadinessReporter = (*Function)(nil)
	_ ce.LivenessReporter  = (*Function)(nil)
)

// Name names the function in its logs and as the API client's user agent.
const Name = "gitpulse-recorder"

// Env is the recorder's configuration: the keys every function reads
// (function.Env) and its own. func.yaml sets them in a cluster.
type Env struct {
	function.Env
	// MaxBodyBytes refuses larger event data with 413; default GitHub's
	// 25 MiB cap.
	MaxBodyBytes int64 `env:"GITPULSE_MAX_BODY_BYTES, default=26214400"`
	// MaxClockSkew is how far ahead of the recorder's clock a delivery's
	// ordering time may be.
	MaxClockSkew time.Duration `env:"GITPULSE_MAX_CLOCK_SKEW, default=1h"`
	// AllowedOwners, comma-separated, are the only repository owners
	// recorded; empty records every owner.
	AllowedOwners []string `env:"GITPULSE_ALLOWED_OWNERS"`
	// DeliveryWindow is how long an object remembers the deliveries applied
	// to it, so that a redelivery is never counted twice: GitHub's
	// redelivery window (3 days on github.com; about 7 days for GitHub
	// Enterprise Server) and an hour's margin.
	DeliveryWindow time.Duration `env:"GITPULSE_DELIVERY_WINDOW, default=73h"`
	// EventTTL is the API server's --event-ttl (never more): a delivery
	// applied longer ago than that has had its Event, expired since.
	EventTTL time.Duration `env:"GITPULSE_EVENT_TTL, default=1h"`

	// Reconcile passes (pkg/reconcile): "off" disables them. The tunables
	// left unset (0) take reconcile.New's defaults: a 20 s budget per
	// pass, 300 GitHub requests per source, stop below 100 remaining, a
	// 90-day history window, 72 h of deliveries (github.com; 168h for
	// GitHub Enterprise Server), 10 m between two requests to redeliver
	// the same delivery, a full resync every 24 h.
	Reconcile               string        `env:"GITPULSE_RECONCILE, default=on"`
	ReconcileBudget         time.Duration `env:"GITPULSE_RECONCILE_BUDGET"`
	ReconcileMaxRequests    int           `env:"GITPULSE_RECONCILE_MAX_REQUESTS"`
	ReconcileMinRemaining   int           `env:"GITPULSE_RECONCILE_MIN_REMAINING"`
	ReconcileWindow         time.Duration `env:"GITPULSE_RECONCILE_WINDOW"`
	ReconcileRetention      time.Duration `env:"GITPULSE_RECONCILE_RETENTION"`
	ReconcileRedeliverAfter time.Duration `env:"GITPULSE_RECONCILE_REDELIVER_AFTER"`
	ReconcileFullResync     time.Duration `env:"GITPULSE_RECONCILE_FULL_RESYNC"`
}

// Configuration keys of the recorder's own.
const (
	EnvMaxBodyBytes    = "GITPULSE_MAX_BODY_BYTES"
	EnvMaxClockSkew    = "GITPULSE_MAX_CLOCK_SKEW"
	EnvAllowedOwners   = "GITPULSE_ALLOWED_OWNERS"
	EnvDeliveryWindow  = "GITPULSE_DELIVERY_WINDOW"
	EnvEventTTL        = "GITPULSE_EVENT_TTL"
	EnvReconcile       = "GITPULSE_RECONCILE"
	EnvReconcileBudget = "GITPULSE_RECONCILE_BUDGET"
)

// Validate refuses values that parse but make no sense.
func (e *Env) Validate() error {
	var errs []error
	if e.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New(EnvMaxBodyBytes+": want a positive number of bytes"))
	}
	errs = append(errs, function.PositiveDuration(EnvMaxClockSkew, e.MaxClockSkew),
		function.PositiveDuration(EnvDeliveryWindow, e.DeliveryWindow), function.PositiveDuration(EnvEventTTL, e.EventTTL))
	if e.Reconcile != "on" && e.Reconcile != "off" {
		errs = append(errs, fmt.Errorf("%s=%q: want on or off", EnvReconcile, e.Reconcile))
	}
	if e.ReconcileBudget > 25*time.Second {
		errs = append(errs, fmt.Errorf("%s=%s: a pass must end well inside func-go's 30 s write timeout", EnvReconcileBudget, e.ReconcileBudget))
	}
	for _, v := range []int64{int64(e.ReconcileBudget), int64(e.ReconcileMaxRequests), int64(e.ReconcileMinRemaining),
		int64(e.ReconcileWindow), int64(e.ReconcileRetention), int64(e.ReconcileRedeliverAfter), int64(e.ReconcileFullResync)} {
		if v < 0 {
			errs = append(errs, errors.New("GITPULSE_RECONCILE_*: durations and numbers must not be negative"))
			break
		}
	}
	return errors.Join(errs...)
}

// Function is one recorder instance.
type Function struct {
	rec atomic.Pointer[recorder.Recorder]
	log atomic.Pointer[slog.Logger]
	rt  atomic.Pointer[function.Runtime]
	// reconciler runs reconcile passes (reconcile.go); nil when disabled.
	reconciler atomic.Pointer[reconcile.Reconciler]
}

// New is what the func-go scaffolding calls.
func New() *Function {
	function.MatchFuncGoLogs(slog.LevelInfo)
	return &Function{}
}

// NewStarted is a Function around a Recorder built elsewhere (tests build
// one on their own clients), answering as the function does.
func NewStarted(rec *recorder.Recorder, log *slog.Logger) *Function {
	f := &Function{}
	f.log.Store(log)
	f.rec.Store(rec)
	return f
}

// Start reads the configuration from cfg (func-go's: ./cfg overlaid by the
// environment) and builds the Kubernetes clients. It fails, and the function
// does not serve, when the configuration is invalid or no client can be
// built.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	if f.rec.Load() != nil {
		return nil // NewStarted
	}
	var env Env
	rt, err := function.Start(ctx, cfg, &env, function.Options{
		Name:               Name,
		DefaultMemoryLimit: recorder.DefaultMemoryLimit,
		// A hung API server must turn into a 503 (and a Broker retry) well
		// before the Broker's own request timeout.
		Timeout: 15 * time.Second,
		// client-go's default client-side limit (5 QPS) would cap a replica
		// at about one delivery a second (each takes several requests). The
		// API server's priority and fairness is what protects it; this only
		// keeps one replica from monopolising its share
		// (docs/benchmarks.md).
		QPS: 1000, Burst: 2000,
	})
	if err != nil {
		return err
	}
	kube, gitpulse, err := recorder.NewClients(rt.RESTConfig)
	var rec *recorder.Recorder
	if err == nil {
		rec, err = recorder.New(recorder.Options{
			Kube: kube, Gitpulse: gitpulse, Namespace: rt.Namespace, Instance: rt.Instance,
			Logger: rt.Logger, MaxBodyBytes: env.MaxBodyBytes, MaxClockSkew: env.MaxClockSkew,
			AllowedOwners: env.AllowedOwners, DeliveryWindow: env.DeliveryWindow, EventTTL: env.EventTTL,
		})
	}
	if err == nil {
		err = f.startReconcile(&env, rt, kube, rec)
	}
	if err != nil {
		rt.Stop()
		return err
	}
	f.rt.Store(rt)
	f.log.Store(rt.Logger)
	f.rec.Store(rec)
	rt.Logger.Info("recorder started", "namespace", rt.Namespace, "instance", rt.Instance,
		"maxBodyBytes", env.MaxBodyBytes, "host", rt.RESTConfig.Host)
	return nil
}

// Handle records one GitHub CloudEvent and answers it (function.Answer):
// 2xx when it is recorded, a duplicate or ignored; 4xx when it can never be
// recorded; 5xx when the API server fails, so that the Broker retries. The
// body limit is checked by the recorder, because in a cluster func-go, not
// our runner, reads the request.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	growStack()
	if reconcile.IsTrigger(e.Type()) {
		return f.handleReconcile(ctx, e)
	}
	rec := f.rec.Load()
	if rec == nil {
		return nil, cehttp.NewResult(http.StatusServiceUnavailable, "recorder not started")
	}
	_, err := rec.Receive(ctx, e)
	if err == nil {
		return nil, nil // what Answer answers nil, without a logger for it
	}
	return nil, function.Answer(f.log.Load().With("delivery", e.ID(), "type", e.Type()), err)
}

// Stop ends the memory limit's upkeep; nothing else to release: every
// write is synchronous within Handle, and func-go drains in-flight
// requests before calling it.
func (f *Function) Stop(context.Context) error {
	f.rt.Load().Stop()
	return nil
}

// Ready is true once Start succeeded.
func (f *Function) Ready(context.Context) (bool, error) { return f.rec.Load() != nil, nil }

// Alive is true while the process runs; the recorder holds no state that
// could wedge.
func (f *Function) Alive(context.Context) (bool, error) { return true, nil }

// growStack grows the calling goroutine's stack to 64 KiB at once, while
// it is shallow. The CloudEvents SDK runs every delivery on a goroutine of
// its own, which starts with a small stack; recording a delivery (JSON
// decoding, client-go, HTTP/2 and TLS) goes deep enough that the runtime
// grew it several times a delivery, each time copying every frame
// (runtime.copystack was 7-9% of a loaded recorder's CPU profile). One
// growth at the entry, with few frames to copy, costs far less (the trick
// CockroachDB's growstack package uses).
//
//go:noinline
func growStack() {
	var buf [32 << 10]byte
	growStackSink = buf[growStackIndex&(len(buf)-1)]
}

// growStackSink and growStackIndex keep the compiler from eliding buf.
var (
	growStackSink  byte
	growStackIndex int
)
