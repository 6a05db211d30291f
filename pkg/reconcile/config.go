package reconcile

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// PingEventType is the type every Knative PingSource event has (eventing
// pkg/apis/sources/v1/ping_lifecycle.go PingSourceEventType; a PingSource
// cannot override it, its ceOverrides set extensions only). In a cluster
// config/'s PingSource triggers passes with it, so the recorder treats it
// as EventType.
const PingEventType = "dev.knative.sources.ping"

// IsTrigger reports whether a CloudEvent type asks for a pass.
func IsTrigger(eventType string) bool { return eventType == EventType || eventType == PingEventType }

// Environment variables a recorder reads to configure its passes (all
// optional; durations in Go's syntax).
const (
	EnvReconcile      = "GITPULSE_RECONCILE"                 // "off" disables passes
	EnvBudget         = "GITPULSE_RECONCILE_BUDGET"          // default 20s
	EnvMaxRequests    = "GITPULSE_RECONCILE_MAX_REQUESTS"    // default 300
	EnvMinRemaining   = "GITPULSE_RECONCILE_MIN_REMAINING"   // default 100
	EnvWindow         = "GITPULSE_RECONCILE_WINDOW"          // default 2160h (90 days)
	EnvRetention      = "GITPULSE_RECONCILE_RETENTION"       // default 72h (github.com); 168h for GHES
	EnvRedeliverAfter = "GITPULSE_RECONCILE_REDELIVER_AFTER" // default 10m
	EnvFullResync     = "GITPULSE_RECONCILE_FULL_RESYNC"     // default 24h
)

// OptionsFromEnv fills the tunables of opts from env; unset keeps the
// defaults New applies. It reports whether passes are enabled.
func OptionsFromEnv(env map[string]string, opts *Options) (enabled bool, err error) {
	var errs []error
	dur := func(key string, d *time.Duration) {
		if v := env[key]; v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a positive duration", key, v))
			}
			*d = x
		}
	}
	num := func(key string, n *int) {
		if v := env[key]; v != "" {
			x, err := strconv.Atoi(v)
			if err != nil || x <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a positive number", key, v))
			}
			*n = x
		}
	}
	dur(EnvBudget, &opts.Budget)
	dur(EnvWindow, &opts.Window)
	dur(EnvRetention, &opts.Retention)
	dur(EnvRedeliverAfter, &opts.RedeliverAfter)
	dur(EnvFullResync, &opts.FullResync)
	num(EnvMaxRequests, &opts.MaxRequests)
	num(EnvMinRemaining, &opts.MinRemaining)
	if opts.Budget > 25*time.Second {
		errs = append(errs, fmt.Errorf("%s=%s: a pass must end well inside func-go's 30 s write timeout", EnvBudget, opts.Budget))
	}
	switch env[EnvReconcile] {
	case "", "on":
		enabled = true
	case "off":
	default:
		errs = append(errs, fmt.Errorf("%s=%q: want on or off", EnvReconcile, env[EnvReconcile]))
	}
	return enabled, errors.Join(errs...)
}
