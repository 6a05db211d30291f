// Package function is what both gitpulse functions share around their logic,
// in the spirit of Knative's adapter/v2 and kube-state-metrics' pkg/app: one
// environment configuration (Env, embedded by each function's own), the
// start-up that turns it into a logger, a memory limit and API clients
// (Start), the error-to-HTTP mapping of a CloudEvent handler (Answer) and
// the HTTP surface of a metrics handler (MetricsHandler). pkg/recorder and
// pkg/metrics take clients and a logger and know nothing of HTTP or of the
// environment.
package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Env is the configuration every gitpulse function reads from its
// environment; each function embeds it in its own struct for its own keys,
// as Knative adapters embed adapter.EnvConfig.
type Env struct {
	// Namespace receives (recorder) or is watched for (metrics) every
	// object and Event: $GITPULSE_NAMESPACE, else $POD_NAMESPACE, else the
	// pod's own namespace (ResolvedNamespace).
	Namespace    string `env:"GITPULSE_NAMESPACE"`
	PodNamespace string `env:"POD_NAMESPACE"`
	// Kubeconfig reaches an API server from outside a cluster; empty means
	// the pod's service account.
	Kubeconfig string `env:"KUBECONFIG"`
	// LogLevel: debug, info, warn or error (any case).
	LogLevel slog.Level `env:"GITPULSE_LOG_LEVEL, default=info"`
	// Instance names this replica (the recorder's Events carry it):
	// $GITPULSE_INSTANCE, else $HOSTNAME (the pod name), else the host name.
	Instance string `env:"GITPULSE_INSTANCE"`
	Hostname string `env:"HOSTNAME"`
}

// EnvAccessor is a function's configuration struct: it embeds Env and may
// check its own keys once they are read.
type EnvAccessor interface {
	GetEnv() *Env
}

// GetEnv makes any struct embedding Env an EnvAccessor.
func (e *Env) GetEnv() *Env { return e }

// validator is implemented by a function's configuration that has rules of
// its own (positive durations, limits).
type validator interface {
	Validate() error
}

// Configuration keys read by Env, for messages, docs and tests.
const (
	EnvNamespace    = "GITPULSE_NAMESPACE"
	EnvPodNamespace = "POD_NAMESPACE"
	EnvKubeconfig   = "KUBECONFIG"
	EnvLogLevel     = "GITPULSE_LOG_LEVEL"
	EnvInstance     = "GITPULSE_INSTANCE"
)

// serviceAccountNamespace is where a pod finds its own namespace.
var serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Process reads env (a pointer to a struct embedding Env) from cfg, the map
// func-go hands to Start: the function's ./cfg file overlaid by the process
// environment. A key set to the empty string counts as unset, so a default
// applies. It fails, naming the key, on a value it cannot parse or that
// env's Validate refuses, rather than guessing.
func Process(ctx context.Context, cfg map[string]string, env EnvAccessor) error {
	// go-envconfig names the struct field that failed; operators know the
	// key. Fields are read one at a time, each parsed right after its
	// lookup, so the last key looked up is the one that failed.
	var last string
	lookup := envconfig.LookuperFunc(func(key string) (string, bool) {
		last = key
		v, ok := cfg[key]
		if strings.TrimSpace(v) == "" {
			return "", false
		}
		return v, ok
	})
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: env, Lookuper: lookup}); err != nil {
		return fmt.Errorf("%s=%q: %w", last, cfg[last], err)
	}
	e := env.GetEnv()
	e.Namespace = strings.TrimSpace(e.Namespace)
	if v, ok := env.(validator); ok {
		return v.Validate()
	}
	return nil
}

// ResolvedNamespace is the namespace the function works in: Namespace, else
// PodNamespace, else the service account's. Outside a pod with neither set
// it is an error: writing into (or watching) "default" by accident is worse.
func (e *Env) ResolvedNamespace() (string, error) {
	for _, ns := range []string{e.Namespace, strings.TrimSpace(e.PodNamespace)} {
		if ns != "" {
			return ns, nil
		}
	}
	b, err := os.ReadFile(serviceAccountNamespace)
	if err != nil {
		return "", fmt.Errorf("%s is not set and the pod's namespace is unknown: %w", EnvNamespace, err)
	}
	if ns := strings.TrimSpace(string(b)); ns != "" {
		return ns, nil
	}
	return "", fmt.Errorf("%s is not set and %s is empty", EnvNamespace, serviceAccountNamespace)
}

// ResolvedInstance is Instance, else Hostname, else the host name, else
// fallback.
func (e *Env) ResolvedInstance(fallback string) string {
	host, _ := os.Hostname()
	for _, v := range []string{e.Instance, e.Hostname, host} {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return fallback
}

// RESTConfig is the API client configuration: from Kubeconfig when set,
// else the pod's service account. The error says which was tried, because a
// function that cannot reach its API server must not start.
func (e *Env) RESTConfig() (*rest.Config, error) {
	if e.Kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("building the API client from %s=%s: %w", EnvKubeconfig, e.Kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		return nil, fmt.Errorf("building the in-cluster API client (set %s outside a cluster): %w", EnvKubeconfig, err)
	}
	if err != nil {
		return nil, fmt.Errorf("building the in-cluster API client: %w", err)
	}
	return cfg, nil
}

// PositiveDuration checks a duration key: an error naming key unless d > 0.
func PositiveDuration(key string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s=%s: want a positive duration such as 1h or 10m", key, d)
	}
	return nil
}
