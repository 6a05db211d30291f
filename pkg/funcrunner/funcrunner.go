// Package funcrunner serves a Knative function outside a cluster, the way
// knative.dev/func-go's scaffolding serves it inside one: it calls the
// function's Start with the environment, answers func-go's health paths from
// Ready and Alive, hands every other request to Handle (as a CloudEvent or as
// plain HTTP), and calls Stop on shutdown.
//
// func-go itself is not available from this project's module proxy, so tests,
// `make run` and the scaffolding build test use this runner instead; the
// function packages are unchanged either way.
package funcrunner

import (
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

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/liatrio/gitpulse/pkg/inflight"
)

// The interfaces of func-go's instanced functions. A function implements
// exactly one of CloudEventHandler and HTTPHandler, and any of the others.
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

// DefaultMaxBodyBytes is GitHub's own cap on webhook payloads (25 MB).
const DefaultMaxBodyBytes = 25 << 20

// Options configure a Server.
type Options struct {
	// Addr to listen on; default "127.0.0.1:0" (a free loopback port).
	Addr string
	// Config is passed to the function's Start; default: the environment.
	Config map[string]string
	// Logger for the runner's own messages; default slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes caps CloudEvent request bodies (413 beyond it); 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// InFlight, when set, bounds the function's requests in flight (503 +
	// Retry-After beyond it); the health paths are not counted.
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
	done    chan error
	stop    sync.Once
}

// New wraps fn, which must implement CloudEventHandler or HTTPHandler.
func New(fn any, opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Config == nil {
		opts.Config = Environ()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &Server{fn: fn, opts: opts, log: opts.Logger, done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc(ReadinessPath, s.probe(func(ctx context.Context) (bool, error) {
		if r, ok := fn.(ReadinessReporter); ok {
			return r.Ready(ctx)
		}
		return true, nil
	}))
	mux.HandleFunc(LivenessPath, s.probe(func(ctx context.Context) (bool, error) {
		if r, ok := fn.(LivenessReporter); ok {
			return r.Alive(ctx)
		}
		return true, nil
	}))
	var handler http.Handler
	switch h := fn.(type) {
	case CloudEventHandler:
		handler = &cloudEventHandler{fn: h, max: opts.MaxBodyBytes, log: opts.Logger}
	case HTTPHandler:
		handler = http.HandlerFunc(h.Handle)
	default:
		return nil, fmt.Errorf("funcrunner: %T has neither Handle(ctx, event.Event) nor Handle(http.ResponseWriter, *http.Request)", fn)
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

// Start calls the function's Start, then listens and serves in the
// background. It returns once requests are being accepted.
func (s *Server) Start(ctx context.Context) error {
	if st, ok := s.fn.(Starter); ok {
		if err := st.Start(ctx, s.opts.Config); err != nil {
			return fmt.Errorf("function start: %w", err)
		}
	}
	lis, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return err
	}
	s.lis = lis
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	go func() {
		err := s.srv.Serve(lis)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	s.log.Info("function serving", "url", s.URL())
	return nil
}

// URL is the base URL the server listens on.
func (s *Server) URL() string {
	if s.lis == nil {
		return ""
	}
	return "http://" + s.lis.Addr().String()
}

// Shutdown stops accepting requests, waits for those in flight (until ctx
// ends), then calls the function's Stop.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.stop.Do(func() {
		if s.srv != nil {
			err = s.srv.Shutdown(ctx)
			if serveErr := <-s.done; err == nil {
				err = serveErr
			}
		}
		if st, ok := s.fn.(Stopper); ok {
			if stopErr := st.Stop(ctx); err == nil {
				err = stopErr
			}
		}
	})
	return err
}

func (s *Server) probe(check func(context.Context) (bool, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, err := check(r.Context())
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case !ok:
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		default:
			w.Write([]byte("OK"))
		}
	}
}

// Environ returns the process environment as a map, as func-go passes it to
// Start.
func Environ() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

// cloudEventHandler turns HTTP requests into CloudEvents (binary or
// structured mode, with the SDK's own decoding) and the function's result
// into an answer code. It decodes requests itself rather than through the
// SDK's receiver so that a broken request gets a 4xx (the SDK answers some
// of them 500, which would make a Broker retry forever) and oversized bodies a
// 413.
type cloudEventHandler struct {
	fn  CloudEventHandler
	max int64
	log *slog.Logger
}

func (h *cloudEventHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, r, http.StatusMethodNotAllowed, "CloudEvents are delivered with POST")
		return
	}
	if r.ContentLength > h.max {
		h.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes exceeds the limit of %d", r.ContentLength, h.max))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.max)
	msg := cehttp.NewMessageFromHttpRequest(r)
	defer msg.Finish(nil)
	if msg.ReadEncoding() == binding.EncodingUnknown {
		h.fail(w, r, http.StatusUnsupportedMediaType,
			fmt.Sprintf("not a CloudEvent: no ce-specversion header and content type %q is not application/cloudevents+json", r.Header.Get("Content-Type")))
		return
	}
	ev, err := binding.ToEvent(r.Context(), msg)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds the limit of %d bytes", h.max))
			return
		}
		h.fail(w, r, http.StatusBadRequest, "malformed CloudEvent: "+err.Error())
		return
	}
	if err := ev.Validate(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "invalid CloudEvent: "+err.Error())
		return
	}

	resp, result := h.fn.Handle(r.Context(), *ev)
	status, text := http.StatusOK, ""
	if result != nil {
		var httpResult *cehttp.Result
		switch {
		case protocol.ResultAs(result, &httpResult):
			if httpResult.StatusCode > 100 && httpResult.StatusCode < 600 {
				status = httpResult.StatusCode
			}
			text = fmt.Errorf(httpResult.Format, httpResult.Args...).Error()
		case protocol.IsACK(result):
		default:
			status, text = http.StatusInternalServerError, result.Error()
		}
	}
	if resp != nil && status < 300 {
		if err := cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(resp), status, w); err != nil {
			h.log.Error("writing response event", "id", ev.ID(), "err", err)
		}
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	if text != "" {
		fmt.Fprintln(w, text)
	}
}

func (h *cloudEventHandler) fail(w http.ResponseWriter, r *http.Request, code int, reason string) {
	h.log.Warn("request refused", "code", code, "reason", reason,
		"id", r.Header.Get("Ce-Id"), "type", r.Header.Get("Ce-Type"), "remote", r.RemoteAddr)
	http.Error(w, reason, code)
}
