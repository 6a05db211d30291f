package recorder

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/liatrio/gitpulse/pkg/githubevent"
)

// Environment variables the recorder reads (func-go passes the process
// environment to Start as a map; func.yaml sets them in the cluster).
const (
	EnvNamespace    = "GITPULSE_NAMESPACE"
	EnvPodNamespace = "POD_NAMESPACE"
	EnvMaxBodyBytes = "GITPULSE_MAX_BODY_BYTES"
	EnvLogLevel     = "GITPULSE_LOG_LEVEL"
	EnvKubeconfig   = "KUBECONFIG"
	EnvInstance     = "GITPULSE_INSTANCE"
	EnvHostname     = "HOSTNAME"
	// EnvMaxClockSkew: how far ahead of the recorder's clock a delivery's
	// ordering time may be (a Go duration, default 1h).
	EnvMaxClockSkew = "GITPULSE_MAX_CLOCK_SKEW"
	// EnvAllowedOwners: comma-separated repository owners to record; empty
	// records every owner.
	EnvAllowedOwners = "GITPULSE_ALLOWED_OWNERS"
)

// DefaultMemoryLimit is the Go runtime's soft memory limit the recorder
// sets when neither GOMEMLIMIT nor a container limit says otherwise
// (pkg/memlimit). A replica's live heap is a few MiB plus
// the deliveries in flight: each costs about three times its body while it
// is decoded (the body, the decoded payload, the event data), so ten
// concurrent 25 MiB bodies — Knative's containerConcurrency that func.yaml
// advises — need about 750 MiB at worst, and typical deliveries (tens of
// KiB) almost nothing. Near the limit the collector runs more often and
// returns freed memory to the system instead of letting the heap double.
// It is soft: a larger live heap is not an error, only more GC work.
const DefaultMemoryLimit = 256 << 20

// serviceAccountNamespace is where a pod finds its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Config is the recorder's whole configuration.
type Config struct {
	// Namespace receives objects and Events: $GITPULSE_NAMESPACE, else
	// $POD_NAMESPACE, else the pod's own namespace (service account
	// file), else "default".
	Namespace string
	// MaxBodyBytes: $GITPULSE_MAX_BODY_BYTES, default 25 MiB (GitHub's cap).
	MaxBodyBytes int64
	// LogLevel: $GITPULSE_LOG_LEVEL (debug, info, warn, error), default info.
	LogLevel slog.Level
	// Kubeconfig: $KUBECONFIG; empty means in-cluster configuration.
	Kubeconfig string
	// Instance names this replica on Events: $GITPULSE_INSTANCE, else
	// $HOSTNAME (the pod name), else the host name.
	Instance string
	// MaxClockSkew: $GITPULSE_MAX_CLOCK_SKEW, default 1h.
	MaxClockSkew time.Duration
	// AllowedOwners: $GITPULSE_ALLOWED_OWNERS split at commas; empty
	// allows every owner.
	AllowedOwners []string
}

// ConfigFromEnv reads the configuration from env (a process environment as
// a map), failing on values it cannot parse rather than guessing.
func ConfigFromEnv(env map[string]string) (Config, error) {
	c := Config{MaxBodyBytes: DefaultMaxBodyBytes, LogLevel: slog.LevelInfo, Kubeconfig: env[EnvKubeconfig]}
	var errs []error
	c.Namespace = firstNonEmpty(env[EnvNamespace], env[EnvPodNamespace], readTrimmed(serviceAccountNamespace), "default")
	if v := env[EnvMaxBodyBytes]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive number of bytes", EnvMaxBodyBytes, v))
		}
		c.MaxBodyBytes = n
	}
	if v := env[EnvLogLevel]; v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(strings.ToUpper(v))); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", EnvLogLevel, v, err))
		}
	}
	c.MaxClockSkew = githubevent.DefaultMaxClockSkew
	if v := env[EnvMaxClockSkew]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive duration such as 1h or 10m", EnvMaxClockSkew, v))
		}
		c.MaxClockSkew = d
	}
	for _, o := range strings.Split(env[EnvAllowedOwners], ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOwners = append(c.AllowedOwners, o)
		}
	}
	host, _ := os.Hostname()
	c.Instance = firstNonEmpty(env[EnvInstance], env[EnvHostname], host, "gitpulse-recorder")
	return c, errors.Join(errs...)
}

// RESTConfig builds the Kubernetes client configuration: from Kubeconfig
// when set, else in-cluster. The error says which was tried, because a
// function that cannot reach its API server must not start.
func (c Config) RESTConfig() (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if c.Kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("building Kubernetes client from %s=%s: %w", EnvKubeconfig, c.Kubeconfig, err)
		}
	} else {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("building in-cluster Kubernetes client (set %s outside a cluster): %w", EnvKubeconfig, err)
		}
	}
	// A hung API server must turn into a 503 (and a Broker retry) well
	// before the Broker's own request timeout.
	cfg.Timeout = 15 * time.Second
	// client-go's default client-side limit (5 QPS) would cap a replica at
	// about one delivery a second (each takes several requests). The API
	// server's priority and fairness is what protects it; this only keeps
	// one replica from monopolising its share (figures: docs/benchmarks.md).
	cfg.QPS, cfg.Burst = 1000, 2000
	cfg.UserAgent = "gitpulse-recorder"
	return cfg, nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
