package metrics

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
)

// Configuration keys (environment variables in the function's func.yaml).
const (
	EnvNamespace          = "GITPULSE_NAMESPACE"
	EnvMaxRepositories    = "GITPULSE_MAX_REPOSITORIES"
	EnvCheckpointInterval = "GITPULSE_CHECKPOINT_INTERVAL"
	EnvLogLevel           = "GITPULSE_LOG_LEVEL"
	EnvKubeconfig         = "KUBECONFIG"
	// EnvRepositoryIdleTimeout: see Config.RepositoryIdleTimeout.
	EnvRepositoryIdleTimeout = "GITPULSE_REPOSITORY_IDLE_TIMEOUT"
)

// CheckpointName is the ConfigMap holding the exactness checkpoint; the
// function's Role grants update on this one name only.
const CheckpointName = "gitpulse-metrics-checkpoint"

// Defaults.
const (
	// DefaultMemoryLimit is the soft memory limit without GOMEMLIMIT or a
	// container limit (pkg/memlimit): the process's working set is a few
	// tens of MiB whatever the number of Events (see README, Memory).
	DefaultMemoryLimit        = 48 << 20
	DefaultMaxRepositories    = 500
	DefaultCheckpointInterval = 5 * time.Second
	// DefaultRepositoryIdleTimeout: a repository with no live Event and no
	// object for a day gives back its label slot.
	DefaultRepositoryIdleTimeout = 24 * time.Hour
)

// serviceAccountNamespace is where a pod finds its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Config is the function's configuration, read once at Start.
type Config struct {
	// Namespace is the one namespace watched (Events, PullRequests, Branches)
	// and where the checkpoint lives.
	Namespace string
	// MaxRepositories caps the distinct repository label values; the rest
	// are folded into repository="other".
	MaxRepositories int
	// CheckpointInterval is how often counts are persisted.
	CheckpointInterval time.Duration
	// RepositoryIdleTimeout: a repository with no live Event and no object
	// for this long gives back its slot under MaxRepositories, and its
	// series end. 0 keeps slots for ever.
	RepositoryIdleTimeout time.Duration
	// Kubeconfig is a kubeconfig path for running outside a cluster; empty
	// means in-cluster configuration.
	Kubeconfig string
	// LogLevel: $GITPULSE_LOG_LEVEL (debug, info, warn, error), default
	// info. func-go configures only its own logger, so the function sets up
	// slog from this itself.
	LogLevel slog.Level
}

// NewLogger is the function's JSON logger on stderr at c.LogLevel.
func (c Config) NewLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel})).
		With("function", "gitpulse-metrics")
}

// ConfigFromMap reads a Config from func-go's configuration map (the process
// environment by default).
func ConfigFromMap(m map[string]string) (Config, error) {
	c := Config{
		Namespace:          strings.TrimSpace(m[EnvNamespace]),
		MaxRepositories:    DefaultMaxRepositories,
		CheckpointInterval: DefaultCheckpointInterval,
		Kubeconfig:         m[EnvKubeconfig],

		RepositoryIdleTimeout: DefaultRepositoryIdleTimeout,
	}
	if c.Namespace == "" {
		// In a pod the namespace comes with the service account token.
		b, err := os.ReadFile(serviceAccountNamespace)
		if err != nil {
			return Config{}, fmt.Errorf("%s is not set and the pod namespace is unknown: %w", EnvNamespace, err)
		}
		c.Namespace = strings.TrimSpace(string(b))
	}
	if v := m[EnvMaxRepositories]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("%s=%q: want a positive integer", EnvMaxRepositories, v)
		}
		c.MaxRepositories = n
	}
	if v := m[EnvLogLevel]; v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(strings.ToUpper(v))); err != nil {
			return Config{}, fmt.Errorf("%s=%q: %w", EnvLogLevel, v, err)
		}
	}
	if v := m[EnvCheckpointInterval]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("%s=%q: want a positive duration", EnvCheckpointInterval, v)
		}
		c.CheckpointInterval = d
	}
	if v := m[EnvRepositoryIdleTimeout]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return Config{}, fmt.Errorf("%s=%q: want a duration, 0 to keep slots for ever", EnvRepositoryIdleTimeout, v)
		}
		c.RepositoryIdleTimeout = d
	}
	return c, nil
}

// RestConfig is the API server configuration: the kubeconfig when one is
// given, otherwise the pod's service account.
func (c Config) RestConfig() (*rest.Config, error) {
	if c.Kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig %s: %w", c.Kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		return nil, fmt.Errorf("not in a cluster and %s is not set: %w", EnvKubeconfig, err)
	}
	if err != nil {
		return nil, fmt.Errorf("in-cluster configuration: %w", err)
	}
	return cfg, nil
}
