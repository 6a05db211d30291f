package inflight

import (
	"errors"
	"fmt"
	"strconv"
)

// Environment variables FromEnv reads.
const (
	EnvMaxBytes    = "GITPULSE_MAX_INFLIGHT_BYTES"
	EnvMaxRequests = "GITPULSE_MAX_INFLIGHT_REQUESTS"
	EnvMaxQueued   = "GITPULSE_MAX_QUEUED_REQUESTS"
)

// Defaults of FromEnv: four maximum-size webhook bodies at once (each costs
// about three times its size while it is decoded, see docs/benchmarks.md),
// and as many requests as a Knative replica is advised to take
// (containerConcurrency 10) with room for small ones.
const (
	DefaultMaxBytes    = 4 * DefaultMaxBodyBytes
	DefaultMaxRequests = 64
	// QueuedPerRequest is how many requests may wait per place when
	// $GITPULSE_MAX_QUEUED_REQUESTS is not set: queue-proxy's ten per unit of
	// containerConcurrency.
	QueuedPerRequest = 10
)

// FromEnv builds a Limiter from $GITPULSE_MAX_INFLIGHT_BYTES,
// $GITPULSE_MAX_INFLIGHT_REQUESTS (0 turns a bound off) and
// $GITPULSE_MAX_QUEUED_REQUESTS (0: none wait), defaulting to DefaultMaxBytes,
// DefaultMaxRequests and QueuedPerRequest times the request bound.
func FromEnv(getenv func(string) string) (*Limiter, error) {
	opts := Options{MaxBytes: DefaultMaxBytes, MaxRequests: DefaultMaxRequests}
	var errs []error
	if v := getenv(EnvMaxBytes); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a number of bytes, 0 for no bound", EnvMaxBytes, v))
		}
		opts.MaxBytes = n
	}
	if v := getenv(EnvMaxRequests); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a number of requests, 0 for no bound", EnvMaxRequests, v))
		}
		opts.MaxRequests = n
	}
	opts.MaxQueued = QueuedPerRequest * opts.MaxRequests
	if v := getenv(EnvMaxQueued); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a number of requests, 0 for none waiting", EnvMaxQueued, v))
		}
		opts.MaxQueued = n
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return New(opts), nil
}
