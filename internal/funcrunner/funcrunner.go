// Package funcrunner serves a Knative function outside a cluster exactly the
// way knative.dev/func-go's scaffolding serves it inside one, so that `make
// run`, the tests and the scaffolding build test see the answers production
// gives. knative.dev/func-go is not served by this project's module proxy;
// what follows was read from knative-extensions/func-go:
//
//   - cloudevents/service.go, http/service.go: an http.Server with
//     ReadTimeout and WriteTimeout 30 s, IdleTimeout 30 s, ReadHeaderTimeout
//     2 s, MaxHeaderBytes 1 MiB; /health/readiness and /health/liveness
//     (200 "READY" / "ALIVE"; 503 "function not yet ready" / "function not
//     alive"; 500 "error checking readiness: <err>"); every other path goes
//     to the function — for CloudEvent functions through sdk-go's
//     cloudevents.NewHTTPReceiveHandler, which answers its own codes
//     (a broken structured event 500, an invalid event 400, no CloudEvent
//     415, a GET 405, a plain error from Handle 500 with an empty body, a
//     cehttp.Result with its code and text).
//   - Service.Start: listen first, then run the function's Start in a
//     goroutine with context.Background() and the configuration (the ./cfg
//     file overlaid by the environment); a Start error stops the service.
//   - shutdown on SIGINT/SIGTERM: Server.Shutdown with 30 s, then the
//     function's Stop with 30 s.
//   - func-go configures only its own zerolog logger: a function sets up its
//     own logging (slog) from its configuration.
package funcrunner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/liatrio/gitpulse/internal/inflight"
)

// The interfaces of func-go's instanced functions (cloudevents/instance.go,
// http/instance.go). A function implements exactly one of CloudEventHandler
// and HTTPHandler, and any of the others.
type (
	Starter interface {
		Start(ctx context.Context, cfg map[string]string) error
	}
	Stopper interface {
		Stop(ctx context.Context) error
	}
	ReadinessReporter interface {
		Ready(ctx context.Context) (bool, error)
	}
	LivenessReporter interface {
		Alive(ctx context.Context) (bool, error)
	}
	CloudEventHandler interface {
		Handle(ctx context.Context, e event.Event) (*event.Event, error)
	}
	HTTPHandler interface {
		Handle(w http.ResponseWriter, r *http.Request)
	}
)

// Health paths, as func-go serves them.
const (
	ReadinessPath = "/health/readiness"
	LivenessPath  = "/health/liveness"
)

// func-go's server settings and shutdown budgets (service.go).
const (
	ReadTimeout           = 30 * time.Second
	WriteTimeout          = 30 * time.Second
	IdleTimeout           = 30 * time.Second
	ReadHeaderTimeout     = 2 * time.Second
	MaxHeaderBytes        = 1 << 20
	ServerShutdownTimeout = 30 * time.Second
	InstanceStopTimeout   = 30 * time.Second
	DefaultListenAddress  = "[::]:8080"
)

// Options configure a Server.
type Options struct {
	// Addr to listen on; default "127.0.0.1:0" (a free loopback port).
	Addr string
	// Config is passed to the function's Start; default: Config(), the
	// ./cfg file overlaid by the environment, as func-go builds it.
	Config map[string]string
	// Logger for the runner's own messages; default slog.Default().
	Logger *slog.Logger
	// InFlight, when set, bounds the function's requests and body bytes in
	// flight (503 + Retry-After beyond it; health paths not counted). func-go
	// has no such bound: in a cluster queue-proxy's containerConcurrency
	// plays this part, so Main sets one locally (inflight.FromEnv).
	InFlight *inflight.Limiter
}

// Server serves one function.
type Server struct {
	fn      any
	opts    Options
	log     *slog.Logger
	handler http.Handler
	srv     *http.Server
	lis     net.Listener
	// failed receives the function's Start error or the server's, once.
	failed  chan error
	started chan struct{} // closed when the function's Start returned nil
	stop    sync.Once
}

// New wraps fn, which must implement CloudEventHandler or HTTPHandler.
func New(fn any, opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{fn: fn, opts: opts, log: opts.Logger, failed: make(chan error, 2), started: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc(ReadinessPath, s.ready)
	mux.HandleFunc(LivenessPath, s.alive)
	var handler http.Handler
	switch h := fn.(type) {
	case CloudEventHandler:
		protocol, err := cloudevents.NewHTTP()
		if err != nil {
			return nil, err
		}
		if handler, err = cloudevents.NewHTTPReceiveHandler(context.Background(), protocol, h.Handle); err != nil {
			return nil, err
		}
	case HTTPHandler:
		handler = http.HandlerFunc(h.Handle)
	default:
		return nil, fmt.Errorf("funcrunner: %T has neither Handle(ctx, event.Event) (*event.Event, error) nor Handle(http.ResponseWriter, *http.Request)", fn)
	}
	if opts.InFlight != nil {
		handler = opts.InFlight.Handler(handler)
	}
	mux.Handle("/", handler)
	s.handler = mux
	return s, nil
}

// Handler is the server's HTTP handler (for tests that bring their own server).
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens, then starts the function's Start in the background with
// context.Background(), as func-go does: requests are accepted (and
// readiness answers 503) while the function is still starting. A Start
// error is reported by Failed and stops nothing by itself; Main shuts down
// on it as func-go does. ctx only bounds listening.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return err
	}
	s.lis = lis
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ReadHeaderTimeout: ReadHeaderTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
	if st, ok := s.fn.(Starter); ok {
		cfg := s.opts.Config
		if cfg == nil {
			if cfg, err = Config(); err != nil {
				lis.Close()
				return err
			}
		}
		go func() {
			if err := st.Start(context.Background(), cfg); err != nil {
				s.failed <- fmt.Errorf("function start: %w", err)
				return
			}
			close(s.started)
		}()
	} else {
		close(s.started)
	}
	go func() {
		if err := s.srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			s.failed <- fmt.Errorf("http server: %w", err)
		}
	}()
	s.log.Info("function serving", "url", s.URL())
	return nil
}

// Failed receives the error that ends the service: the function's Start
// failed, or the HTTP server did.
func (s *Server) Failed() <-chan error { return s.failed }

// WaitStarted blocks until the function's Start returned: nil when it
// succeeded, its error when it failed, ctx's when ctx ends first.
func (s *Server) WaitStarted(ctx context.Context) error {
	select {
	case <-s.started:
		return nil
	case err := <-s.failed:
		s.failed <- err // leave it for Failed
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// URL is the base URL the server listens on.
func (s *Server) URL() string {
	if s.lis == nil {
		return ""
	}
	return "http://" + s.lis.Addr().String()
}

// Shutdown stops accepting requests and waits for those in flight (up to
// ServerShutdownTimeout), then calls the function's Stop (up to
// InstanceStopTimeout), as func-go's shutdown does. A ctx that ends sooner
// shortens both.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	s.stop.Do(func() {
		if s.srv != nil {
			sctx, cancel := context.WithTimeout(ctx, ServerShutdownTimeout)
			errs = append(errs, s.srv.Shutdown(sctx))
			cancel()
		}
		if st, ok := s.fn.(Stopper); ok {
			sctx, cancel := context.WithTimeout(ctx, InstanceStopTimeout)
			errs = append(errs, st.Stop(sctx))
			cancel()
		}
	})
	return errors.Join(errs...)
}

// ready answers /health/readiness as func-go's Service.Ready does.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if i, ok := s.fn.(ReadinessReporter); ok {
		ready, err := i.Ready(r.Context())
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, "error checking readiness: ", err.Error())
			return
		}
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "function not yet ready")
			return
		}
	}
	fmt.Fprintf(w, "READY")
}

// alive answers /health/liveness as func-go's Service.Alive does.
func (s *Server) alive(w http.ResponseWriter, r *http.Request) {
	if i, ok := s.fn.(LivenessReporter); ok {
		alive, err := i.Alive(r.Context())
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, "error checking liveness: ", err.Error())
			return
		}
		if !alive {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("function not alive"))
			return
		}
	}
	fmt.Fprintf(w, "ALIVE")
}

// Config returns what func-go passes to Start: the ./cfg file's KEY=VALUE
// lines (keys and values trimmed, quotes removed from values; no file, no
// entries) overlaid by the process environment.
func Config() (map[string]string, error) {
	cfg := map[string]string{}
	if f, err := os.Open("cfg"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for i := 1; sc.Scan(); i++ {
			k, v, ok := strings.Cut(sc.Text(), "=")
			if !ok {
				return cfg, fmt.Errorf("config line %v invalid: %v", i, sc.Text())
			}
			cfg[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), "\"")
		}
		if err := sc.Err(); err != nil {
			return cfg, err
		}
	}
	for k, v := range Environ() {
		cfg[k] = v
	}
	return cfg, nil
}

// Environ returns the process environment as a map.
func Environ() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}
