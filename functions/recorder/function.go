// Package recorder is the gitpulse recorder function in knative func-go's
// instanced shape: New returns a value whose Start builds the Kubernetes
// clients from the environment and whose Handle records one GitHub
// CloudEvent. It is deliberately thin; the logic lives in pkg/githubevent
// (payload -> change) and pkg/recorder (change -> objects and Event).
package recorder

import (
	"context"
	"fmt"
	"k8s.io/klog/v2"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"k8s.io/client-go/kubernetes"

	"github.com/liatrio/gitpulse/internal/funcrunner"
	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
	"github.com/liatrio/gitpulse/pkg/memlimit"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

// The shapes func-go's scaffolding (and internal/funcrunner) detect.
var (
	_ funcrunner.CloudEventHandler = (*Function)(nil)
	_ funcrunner.Starter           = (*Function)(nil)
	_ funcrunner.Stopper           = (*Function)(nil)
	_ funcrunner.ReadinessReporter = (*Function)(nil)
	_ funcrunner.LivenessReporter  = (*Function)(nil)
)

// Function is one recorder instance.
type Function struct {
	rec atomic.Pointer[recorder.Recorder]
	// stopMem ends the memory limit's upkeep.
	stopMem atomic.Pointer[context.CancelFunc]
}

// New is what the func-go scaffolding calls.
func New() *Function { return &Function{} }

// Start reads the configuration from cfg (the environment) and builds the
// Kubernetes clients. It fails, and the function does not serve, when the
// configuration is invalid or no client can be built.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	c, err := recorder.ConfigFromEnv(cfg)
	if err != nil {
		return fmt.Errorf("recorder configuration: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel})).
		With("function", "gitpulse-recorder")
	// client-go logs through klog (throttling, warnings): into the same
	// JSON stream, at the same level.
	klog.SetSlogLogger(log)
	// A soft memory limit from GOMEMLIMIT, else the container's, else
	// recorder.DefaultMemoryLimit, kept above the live heap (pkg/memlimit,
	// shared with the metrics function).
	memCtx, stopMem := context.WithCancel(context.Background())
	f.stopMem.Store(&stopMem)
	go memlimit.New(recorder.DefaultMemoryLimit).Run(memCtx, log)
	restCfg, err := c.RESTConfig()
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("building Kubernetes client: %w", err)
	}
	gitpulse, err := versioned.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("building gitpulse client: %w", err)
	}
	rec, err := recorder.New(recorder.Options{
		Kube: kube, Gitpulse: gitpulse, Namespace: c.Namespace, Instance: c.Instance,
		MaxBodyBytes: c.MaxBodyBytes, Logger: log,
		MaxClockSkew: c.MaxClockSkew, AllowedOwners: c.AllowedOwners, // issue 10
	})
	if err != nil {
		return err
	}
	// Which objects are under legacy names, in the background: until it
	// is known, new objects cost a read more (issue 15).
	go func() {
		if err := rec.ScanLegacyNames(memCtx); err != nil && memCtx.Err() == nil {
			log.Warn("objects under legacy names unknown; every new object is looked up under its legacy name too", "error", err)
		}
	}()
	f.rec.Store(rec)
	log.Info("recorder started", "namespace", c.Namespace, "instance", c.Instance,
		"maxBodyBytes", c.MaxBodyBytes, "host", restCfg.Host)
	return nil
}

// Handle records one GitHub CloudEvent; see recorder.Recorder.Handle for the
// answer codes. The body limit is checked there too, because in a cluster
// func-go, not our runner, reads the request.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	rec := f.rec.Load()
	if rec == nil {
		return nil, cehttp.NewResult(http.StatusServiceUnavailable, "recorder not started")
	}
	return rec.Handle(ctx, e)
}

// Stop ends the memory limit's upkeep and the legacy-name scan; nothing else to release: every write is synchronous within Handle,
// and the runner drains in-flight requests before calling it.
func (f *Function) Stop(context.Context) error {
	if stop := f.stopMem.Load(); stop != nil {
		(*stop)()
	}
	return nil
}

// Ready is true once Start succeeded.
func (f *Function) Ready(context.Context) (bool, error) { return f.rec.Load() != nil, nil }

// Alive is true while the process runs; the recorder holds no state that
// could wedge.
func (f *Function) Alive(context.Context) (bool, error) { return true, nil }
