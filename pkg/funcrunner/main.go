package funcrunner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/liatrio/gitpulse/pkg/inflight"
)

// Main serves fn until SIGINT or SIGTERM, then shuts down gracefully — the
// local stand-in for func-go's generated main. It listens on
// $LISTEN_ADDRESS, else 127.0.0.1:$PORT (Knative sets PORT), else 127.0.0.1:8080,
// logs JSON at $GITPULSE_LOG_LEVEL, and exits non-zero if fn cannot start.
func Main(fn any) {
	level := slog.LevelInfo
	if v := os.Getenv("GITPULSE_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(strings.ToUpper(v))); err != nil {
			fmt.Fprintf(os.Stderr, "GITPULSE_LOG_LEVEL %q: %v\n", v, err)
			os.Exit(2)
		}
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	addr := os.Getenv("LISTEN_ADDRESS")
	if addr == "" {
		port := 8080
		if p, err := strconv.Atoi(os.Getenv("PORT")); err == nil {
			port = p
		}
		addr = "127.0.0.1:" + strconv.Itoa(port)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	limit, err := inflight.FromEnv(os.Getenv) // issue 10: bounded requests in flight
	if err != nil {
		log.Error("function failed to start", "err", err)
		os.Exit(2)
	}
	s, err := New(fn, Options{Addr: addr, Logger: log, InFlight: limit})
	if err == nil {
		err = s.Start(ctx)
	}
	if err != nil {
		log.Error("function failed to start", "err", err)
		os.Exit(1)
	}
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
		os.Exit(1)
	}
	log.Info("function stopped")
}
