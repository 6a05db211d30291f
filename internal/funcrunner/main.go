package funcrunner

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/liatrio/gitpulse/internal/inflight"
)

// Main serves fn until SIGINT or SIGTERM, or until the function's Start
// fails, then shuts down (Shutdown, then Stop) — the local stand-in for
// func-go's Start as kn func's generated main calls it. It listens on
// ListenAddress(). The runner's own messages are JSON on stderr; the
// function configures its own logging in Start, as it must under func-go.
// It exits non-zero when the function failed.
func Main(fn any) {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "funcrunner")
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	// Locally nothing stands in front of the function the way queue-proxy
	// (containerConcurrency) does in a cluster: bound what it holds.
	limit, err := inflight.FromEnv(os.Getenv)
	if err != nil {
		log.Error("function failed to start", "err", err)
		os.Exit(2)
	}
	s, err := New(fn, Options{Addr: ListenAddress(), Logger: log, InFlight: limit})
	if err == nil {
		err = s.Start(context.Background())
	}
	if err != nil {
		log.Error("function failed to start", "err", err)
		os.Exit(1)
	}
	var failure error
	select {
	case sig := <-signals:
		log.Info("signal received", "signal", sig.String())
	case failure = <-s.Failed():
		log.Error("function error", "err", failure)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		log.Error("shutdown", "err", err)
		if failure == nil {
			failure = err
		}
	}
	if failure != nil {
		os.Exit(1)
	}
	log.Info("function stopped")
}

// ListenAddress is func-go's listenAddress: $LISTEN_ADDRESS; else the
// legacy $ADDRESS (default 127.0.0.1) and $PORT (default 8080) when either
// is set; else [::]:8080.
func ListenAddress() string {
	if addr := os.Getenv("LISTEN_ADDRESS"); addr != "" {
		return addr
	}
	address, port := os.Getenv("ADDRESS"), os.Getenv("PORT")
	if address == "" && port == "" {
		return DefaultListenAddress
	}
	if address == "" {
		address = "127.0.0.1"
	}
	if port == "" {
		port = "8080"
	}
	return address + ":" + port
}
