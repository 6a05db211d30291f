// Package functest serves a function inside a test process through the real
// knative.dev/func-go: func-go's own Service (its http.Server settings, its
// health probes and, for a CloudEvent function, its CloudEvents receiver)
// listening on 127.0.0.1. func-go's Start takes the function's configuration
// only from ./cfg and the environment, and stops on the process's signals; a
// test passes its own configuration, so Serve does the rest of what func-go's
// Service.Start does (cloudevents/service.go, http/service.go: listen first,
// then run the function's Start in a goroutine; Shutdown, then Stop) with it.
package functest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	ce "knative.dev/func-go/cloudevents"
	fhttp "knative.dev/func-go/http"
)

// Server is one function served for the duration of a test.
type Server struct {
	// URL is the function's root, http://127.0.0.1:<port>.
	URL string
}

// CloudEvents serves f, a CloudEvent function (func-go's cloudevents.New),
// after its Start(cfg) returned; the test fails if it returns an error.
func CloudEvents(t testing.TB, f any, cfg map[string]string) *Server {
	t.Helper()
	svc := ce.New(f)
	return serve(t, &svc.Server, f, cfg)
}

// HTTP serves f, an HTTP function (func-go's http.New), likewise.
func HTTP(t testing.TB, f fhttp.Handler, cfg map[string]string) *Server {
	t.Helper()
	svc := fhttp.New(f)
	return serve(t, &svc.Server, f, cfg)
}

// The instanced function's optional methods, as func-go's instance.go names them.
type (
	starter interface {
		Start(ctx context.Context, cfg map[string]string) error
	}
	stopper interface {
		Stop(ctx context.Context) error
	}
)

func serve(t testing.TB, srv *http.Server, f any, cfg map[string]string) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serving the function: %v", err)
		}
		if s, ok := f.(stopper); ok {
			if err := s.Stop(ctx); err != nil {
				t.Errorf("stopping the function: %v", err)
			}
		}
	})
	if s, ok := f.(starter); ok {
		started := make(chan error, 1)
		go func() { started <- s.Start(context.Background(), cfg) }()
		select {
		case err := <-started:
			if err != nil {
				t.Fatalf("starting the function: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the function's Start did not return within 30s")
		}
	}
	return &Server{URL: "http://" + lis.Addr().String()}
}
