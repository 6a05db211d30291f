// Package ghadapter runs the real Knative GitHubSource receive adapter
// (knative.dev/eventing-github v0.43.0 cmd/receive_adapter, built from the
// Go module proxy by `make eventing-github` into bin/eventing-github/) as a
// local process: where a GitHub webhook enters `make run` and the
// end-to-end tests, as it enters a cluster. Nothing of it is emulated; the
// process gets the environment the GitHubSource controller gives its
// Knative Service (eventing-github pkg/reconciler/source/resources/
// service.go: GITHUB_SECRET_TOKEN, K_SINK, GITHUB_OWNER_REPO, NAMESPACE,
// METRICS_DOMAIN, K_METRICS_CONFIG and K_LOGGING_CONFIG empty), plus what
// Knative Serving and the pod would give it: PORT, NAME, a kubeconfig (the
// adapter's injection builds a client from it and never calls it) and, for
// the cluster host names a sink has (broker-ingress.knative-eventing.svc.
// cluster.local), the eventing processes' proxy (internal/eventingstack).
//
// The adapter listens on ":"+PORT, every interface (pkg/adapter/adapter.go
// Start); that cannot be configured, and is the one documented exception,
// like the channel dispatcher's :8080 and :8443, to gitpulse's rule that
// local servers listen on 127.0.0.1 only.
//
// The same module version's GitHubSource CRD (config/core/
// 300-githubsource.yaml) is copied beside the binary (CRDDir).
package ghadapter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/freeport"
	"github.com/liatrio/gitpulse/internal/proc"
)

// Binary is the adapter's file name in the bin folder.
const Binary = "receive_adapter"

// ErrNotBuilt means the bin folder holds no adapter binary.
var ErrNotBuilt = errors.New("the GitHubSource receive adapter is not built: run `make eventing-github`")

// BinDir is $GITPULSE_EVENTING_GITHUB_BIN, or bin/eventing-github under the
// gitpulse module root.
func BinDir() (string, error) {
	if d := os.Getenv("GITPULSE_EVENTING_GITHUB_BIN"); d != "" {
		return d, nil
	}
	root, err := controlplane.ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "eventing-github"), nil
}

// CRDDir is the folder, beside the binary in binDir, that holds the real
// GitHubSource CRD of the same eventing-github version (for
// controlplane.ReadCRDs).
func CRDDir(binDir string) string { return filepath.Join(binDir, "config") }

// Built reports ErrNotBuilt (wrapped, naming the path) when binDir lacks the
// binary or the CRD.
func Built(binDir string) error {
	for _, p := range []string{filepath.Join(binDir, Binary), filepath.Join(CRDDir(binDir), "300-githubsource.yaml")} {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w (%s is missing)", ErrNotBuilt, p)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// ReadCRDs reads the real GitHubSource CRD from binDir (default BinDir()),
// for controlplane.InstallCRDs; ErrNotBuilt when it is not there.
func ReadCRDs(binDir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	if binDir == "" {
		d, err := BinDir()
		if err != nil {
			return nil, err
		}
		binDir = d
	}
	if err := Built(binDir); err != nil {
		return nil, err
	}
	return controlplane.ReadCRDs(CRDDir(binDir))
}

// Options configure Start.
type Options struct {
	// BinDir holds the binary (default BinDir()).
	BinDir string
	// Sink is K_SINK: where the adapter sends each CloudEvent (in a cluster
	// the Broker's status.address.url). Required.
	Sink string
	// Secret is GITHUB_SECRET_TOKEN, the webhook secret. Required.
	Secret string
	// OwnerAndRepository is GITHUB_OWNER_REPO, a GitHubSource's
	// spec.ownerAndRepository ("owner/repo" or "org"): the CloudEvent source
	// is https://github.com/<it>. Required.
	OwnerAndRepository string
	// Namespace and Name are the GitHubSource's (NAMESPACE, NAME); default
	// "default" and "adapter" (the adapter's own default name).
	Namespace, Name string
	// Port is PORT; 0 picks a free one (internal/freeport).
	Port int
	// Kubeconfig is KUBECONFIG. Required: the adapter's injection builds a
	// Kubernetes client at start (it does not call it for a GitHubSource).
	Kubeconfig string
	// Proxy, when set, is the process's HTTP_PROXY and HTTPS_PROXY (the
	// eventing processes' proxy: it maps *.svc.cluster.local sinks to
	// loopback ports); NO_PROXY is then 127.0.0.1,localhost.
	Proxy string
	// Log receives the process's output; default the file LogPath.
	Log     io.Writer
	LogPath string
}

// Adapter is a running receive adapter.
type Adapter struct {
	p    *proc.Process
	port int
}

// Start runs the adapter and returns once it accepts connections. The
// caller must call Stop.
func Start(ctx context.Context, opts Options) (*Adapter, error) {
	if opts.BinDir == "" {
		d, err := BinDir()
		if err != nil {
			return nil, err
		}
		opts.BinDir = d
	}
	if err := Built(opts.BinDir); err != nil {
		return nil, err
	}
	switch {
	case opts.Sink == "":
		return nil, errors.New("ghadapter: a sink (K_SINK) is required")
	case opts.Secret == "":
		return nil, errors.New("ghadapter: a webhook secret (GITHUB_SECRET_TOKEN) is required")
	case opts.OwnerAndRepository == "":
		return nil, errors.New("ghadapter: GITHUB_OWNER_REPO is required")
	case opts.Kubeconfig == "":
		return nil, errors.New("ghadapter: a kubeconfig is required")
	case opts.Log == nil && opts.LogPath == "":
		return nil, errors.New("ghadapter: a log file or writer is required")
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Name == "" {
		opts.Name = "adapter"
	}
	if opts.Port == 0 {
		var err error
		if opts.Port, err = freeport.Pick(); err != nil {
			return nil, err
		}
	}
	p, err := proc.StartLogged(filepath.Join(opts.BinDir, Binary), nil, env(opts), opts.Log, opts.LogPath)
	if err != nil {
		return nil, err
	}
	a := &Adapter{p: p, port: opts.Port}
	addr := "127.0.0.1:" + strconv.Itoa(opts.Port)
	// The adapter has no health endpoint (every path is the webhook): it is
	// ready once it accepts connections.
	err = p.WaitReady(ctx, 60*time.Second, 50*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if err != nil {
		p.Kill()
		if t := proc.Tail(opts.LogPath, 2000); t != "" {
			err = fmt.Errorf("%w\n%s", err, t)
		}
		return nil, err
	}
	return a, nil
}

// env is the process's environment: the GitHubSource controller's (see the
// package comment) plus PORT, NAME, KUBECONFIG and the proxy. Nothing else
// from the parent's environment leaks in but PATH and HOME.
func env(opts Options) []string {
	e := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"GITHUB_SECRET_TOKEN=" + opts.Secret,
		"K_SINK=" + opts.Sink,
		"GITHUB_OWNER_REPO=" + opts.OwnerAndRepository,
		"NAMESPACE=" + opts.Namespace,
		"METRICS_DOMAIN=knative.dev/eventing",
		"K_METRICS_CONFIG=",
		"K_LOGGING_CONFIG=",
		"NAME=" + opts.Name,
		"PORT=" + strconv.Itoa(opts.Port),
		"KUBECONFIG=" + opts.Kubeconfig,
	}
	if opts.Proxy != "" {
		e = append(e, "HTTP_PROXY="+opts.Proxy, "HTTPS_PROXY="+opts.Proxy,
			"http_proxy="+opts.Proxy, "https_proxy="+opts.Proxy,
			"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	}
	return e
}

// URL is where GitHub would deliver: the adapter serves every path.
func (a *Adapter) URL() string { return "http://127.0.0.1:" + strconv.Itoa(a.port) + "/" }

// Port is the adapter's PORT.
func (a *Adapter) Port() int { return a.port }

// Pid is the process id.
func (a *Adapter) Pid() int { return a.p.Pid() }

// Stop ends the adapter (SIGTERM: it shuts its server down gracefully).
func (a *Adapter) Stop() {
	if a != nil && a.p != nil {
		a.p.Terminate(10 * time.Second)
	}
}
