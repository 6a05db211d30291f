// Package controlplane starts a real, local Kubernetes control plane — etcd
// and kube-apiserver built from the Go module proxy by `make controlplane` —
// on free loopback ports, with RBAC on and temporary credentials. Tests and
// `make run` use it instead of a pre-installed cluster.
//
// There is no controller-manager: namespaces never finish terminating and
// garbage collection does not run. That is enough for gitpulse, which only
// needs the API server's storage, validation, watch and RBAC.
package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/liatrio/gitpulse/internal/freeport"
	"github.com/liatrio/gitpulse/internal/proc"
)

// Options configure Start. The zero value is usable.
type Options struct {
	// BinDir holds the etcd and kube-apiserver binaries. Default: BinDir().
	BinDir string
	// Dir holds etcd's data, certificates, tokens and logs. Default: a new
	// temporary folder, removed by Stop.
	Dir string
	// EventTTL is the API server's --event-ttl (default 1h, as in clusters).
	EventTTL time.Duration
	// APIServerPort and EtcdPort choose fixed loopback ports; 0 picks free ones.
	APIServerPort, EtcdPort int
	// Log receives both processes' output. Default: files in Dir.
	Log io.Writer
}

// ControlPlane is a running etcd + kube-apiserver pair.
type ControlPlane struct {
	opts      Options
	ownDir    bool
	token     string
	etcdPort  int
	peerPort  int
	apiPort   int
	caData    []byte
	mu        sync.Mutex
	etcd      *proc.Process
	apiserver *proc.Process
}

// Start starts etcd and kube-apiserver and waits until the API server is
// ready. The caller must call Stop.
//
// With free ports and a temporary folder (the defaults), a failed start is
// retried twice on new ports and a new folder: another process can take a
// "free" port between our pick and the server's bind, and on a busy 2-core
// machine that is the likeliest reason a start fails.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	retriable := opts.Dir == "" && opts.APIServerPort == 0 && opts.EtcdPort == 0
	var errs []error
	for attempt := 1; attempt <= 3; attempt++ {
		c, err := start(ctx, opts)
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, err))
		if !retriable || ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func start(ctx context.Context, opts Options) (*ControlPlane, error) {
	if opts.BinDir == "" {
		dir, err := BinDir()
		if err != nil {
			return nil, err
		}
		opts.BinDir = dir
	}
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, bin)); err != nil {
			return nil, fmt.Errorf("control plane binary %s missing in %s (run `make controlplane`): %w", bin, opts.BinDir, err)
		}
	}
	c := &ControlPlane{opts: opts}
	if c.opts.Dir == "" {
		dir, err := os.MkdirTemp("", "gitpulse-controlplane-")
		if err != nil {
			return nil, err
		}
		c.opts.Dir, c.ownDir = dir, true
	}
	if c.opts.EventTTL == 0 {
		c.opts.EventTTL = time.Hour
	}
	if err := c.prepare(); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.startAll(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *ControlPlane) prepare() error {
	var err error
	if c.etcdPort, err = portOr(c.opts.EtcdPort); err != nil {
		return err
	}
	if c.peerPort, err = portOr(0); err != nil {
		return err
	}
	if c.apiPort, err = portOr(c.opts.APIServerPort); err != nil {
		return err
	}
	for _, d := range []string{"etcd", "certs"} {
		if err := os.MkdirAll(filepath.Join(c.opts.Dir, d), 0o700); err != nil {
			return err
		}
	}
	c.token, err = writeCredentials(c.opts.Dir)
	return err
}

func (c *ControlPlane) startAll(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.startEtcdLocked(ctx); err != nil {
		return err
	}
	return c.startAPIServerLocked(ctx)
}

func (c *ControlPlane) startEtcdLocked(ctx context.Context) error {
	client := "http://127.0.0.1:" + strconv.Itoa(c.etcdPort)
	peer := "http://127.0.0.1:" + strconv.Itoa(c.peerPort)
	p, err := startProcess(c.opts, "etcd",
		"--data-dir", filepath.Join(c.opts.Dir, "etcd"),
		"--name", "default",
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "default="+peer,
		"--listen-metrics-urls", "",
		"--unsafe-no-fsync", "--log-level", "warn",
	)
	if err != nil {
		return err
	}
	c.etcd = p
	return p.WaitReady(ctx, 30*time.Second, 100*time.Millisecond, func() bool {
		resp, err := http.Get(client + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (c *ControlPlane) startAPIServerLocked(ctx context.Context) error {
	d := c.opts.Dir
	p, err := startProcess(c.opts, "kube-apiserver",
		"--etcd-servers", "http://127.0.0.1:"+strconv.Itoa(c.etcdPort),
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(c.apiPort),
		"--cert-dir", filepath.Join(d, "certs"),
		"--token-auth-file", filepath.Join(d, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(d, "sa.key"),
		"--service-account-signing-key-file", filepath.Join(d, "sa.key"),
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--event-ttl", c.opts.EventTTL.String(),
		"--disable-admission-plugins", "ServiceAccount",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v=0",
	)
	if err != nil {
		return err
	}
	c.apiserver = p
	err = p.WaitReady(ctx, 90*time.Second, 100*time.Millisecond, func() bool {
		return c.readyTrusting(filepath.Join(d, "certs", "apiserver.crt"))
	})
	if err != nil {
		return fmt.Errorf("kube-apiserver not ready: %w\n%s", err, proc.Tail(p.LogPath(), 3000))
	}
	return nil
}

// readyTrusting reports whether the API server answers /readyz with 200
// over TLS trusting the certificate in certFile, and keeps that
// certificate for clients once it does. The file is read again on every
// call until then: the API server writes its self-signed certificate
// after it starts (k8s.io/client-go/util/cert.WriteCert is os.WriteFile:
// create, then write), and a read in between finds it empty or cut.
// Kept from that first read, it never verified, and an API server that
// was up was "not ready" for the whole timeout.
func (c *ControlPlane) readyTrusting(certFile string) bool {
	ca, err := os.ReadFile(certFile)
	if err != nil || !c.ready(ca) {
		return false
	}
	c.caData = ca
	return true
}

// ready reports whether the API server, trusted through ca, answers
// /readyz with 200.
func (c *ControlPlane) ready(ca []byte) bool {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return false
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, c.Host()+"/readyz", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Host is the API server's URL.
func (c *ControlPlane) Host() string { return "https://127.0.0.1:" + strconv.Itoa(c.apiPort) }

// Dir is the folder holding the control plane's data and logs.
func (c *ControlPlane) Dir() string { return c.opts.Dir }

// Kill ends kube-apiserver and etcd abruptly (SIGKILL), as a crash would.
// Their data stays; Restart brings them back on the same ports.
func (c *ControlPlane) Kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apiserver.Kill()
	c.etcd.Kill()
}

// APIServerPid is the running kube-apiserver's process id: a benchmark
// reads its CPU time from /proc, which costs the API server nothing,
// where its own /metrics costs it tens of milliseconds a scrape.
func (c *ControlPlane) APIServerPid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.apiserver.Pid()
}

// Restart starts etcd and kube-apiserver again after Kill, with the same
// data, ports and credentials.
func (c *ControlPlane) Restart(ctx context.Context) error {
	return c.startAll(ctx)
}

// Stop ends both processes and removes the data folder if Start made it.
func (c *ControlPlane) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apiserver.Terminate(10 * time.Second)
	c.etcd.Terminate(10 * time.Second)
	if c.ownDir {
		os.RemoveAll(c.opts.Dir)
	}
}

// BinDir finds the control plane binaries: $GITPULSE_CONTROLPLANE_BIN, or
// bin/controlplane under the gitpulse module root above the working folder.
func BinDir() (string, error) {
	if d := os.Getenv("GITPULSE_CONTROLPLANE_BIN"); d != "" {
		return d, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "controlplane"), nil
}

// ModuleRoot walks up from the working folder to the gitpulse module root
// (the folder whose go.mod declares github.com/liatrio/gitpulse).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && len(b) > 0 && isGitpulseModule(b) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("gitpulse module root not found above the working folder")
		}
		dir = parent
	}
}

func isGitpulseModule(gomod []byte) bool {
	const want = "module github.com/liatrio/gitpulse\n"
	return len(gomod) >= len(want) && string(gomod[:len(want)]) == want
}

func portOr(p int) (int, error) {
	if p != 0 {
		return p, nil
	}
	return freeport.Pick()
}
