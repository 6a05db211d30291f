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
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/liatrio/gitpulse/pkg/proc"
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
	etcd      *process
	apiserver *process
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
	tokenPath := filepath.Join(c.opts.Dir, "tokens.csv")
	if b, err := os.ReadFile(tokenPath); err == nil && len(b) > 32 {
		c.token = string(b[:32])
	} else {
		buf := make([]byte, 16)
		if _, err := rand.Read(buf); err != nil {
			return err
		}
		c.token = hex.EncodeToString(buf)
		line := c.token + ",gitpulse-admin,gitpulse-admin,system:masters\n"
		if err := os.WriteFile(tokenPath, []byte(line), 0o600); err != nil {
			return err
		}
	}
	keyPath := filepath.Join(c.opts.Dir, "sa.key")
	if _, err := os.Stat(keyPath); err != nil {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return err
		}
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		if err := os.WriteFile(keyPath, pemKey, 0o600); err != nil {
			return err
		}
	}
	return nil
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
	return waitFor(ctx, 30*time.Second, p, func() bool {
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
	err = waitFor(ctx, 90*time.Second, p, func() bool {
		if c.caData == nil {
			ca, err := os.ReadFile(filepath.Join(d, "certs", "apiserver.crt"))
			if err != nil {
				return false
			}
			c.caData = ca
		}
		return c.ready()
	})
	if err != nil {
		return fmt.Errorf("kube-apiserver not ready: %w\n%s", err, tail(p.logPath, 3000))
	}
	return nil
}

func (c *ControlPlane) ready() bool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.caData)
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

// Config is an admin (system:masters) client configuration. Each call returns
// a new copy the caller may change.
func (c *ControlPlane) Config() *rest.Config {
	return &rest.Config{
		Host:            c.Host(),
		BearerToken:     c.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.caData},
		QPS:             -1, // no client-side throttling against a private server
	}
}

// Kubeconfig renders an admin kubeconfig for kubectl and for processes
// started with KUBECONFIG.
func (c *ControlPlane) Kubeconfig() ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["gitpulse"] = &clientcmdapi.Cluster{Server: c.Host(), CertificateAuthorityData: c.caData}
	cfg.AuthInfos["gitpulse-admin"] = &clientcmdapi.AuthInfo{Token: c.token}
	cfg.Contexts["gitpulse"] = &clientcmdapi.Context{Cluster: "gitpulse", AuthInfo: "gitpulse-admin", Namespace: "default"}
	cfg.CurrentContext = "gitpulse"
	return clientcmd.Write(*cfg)
}

// WriteKubeconfig writes Kubeconfig to path.
func (c *ControlPlane) WriteKubeconfig(path string) error {
	b, err := c.Kubeconfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// Kill ends kube-apiserver and etcd abruptly (SIGKILL), as a crash would.
// Their data stays; Restart brings them back on the same ports.
func (c *ControlPlane) Kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apiserver.kill()
	c.etcd.kill()
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
	c.apiserver.stop()
	c.etcd.stop()
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
	return FreePort()
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type process struct {
	*proc.Process
	name    string
	logPath string
}

func startProcess(opts Options, name string, args ...string) (*process, error) {
	p := &process{name: name}
	out, closeLog := opts.Log, func() {}
	if out == nil {
		p.logPath = filepath.Join(opts.Dir, name+".log")
		f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		out, closeLog = f, func() { f.Close() }
	}
	pp, err := proc.Start(filepath.Join(opts.BinDir, name), args, nil, out, closeLog)
	if err != nil {
		closeLog()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p.Process = pp
	return p, nil
}

func (p *process) kill() {
	if p != nil {
		p.Kill()
	}
}

func (p *process) stop() {
	if p != nil {
		p.Terminate(10 * time.Second)
	}
}

func waitFor(ctx context.Context, timeout time.Duration, p *process, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		// Exited first: a health check can be answered by another process
		// that took our port, while ours has already failed to bind.
		if !p.Exited() && ok() {
			time.Sleep(50 * time.Millisecond)
			if !p.Exited() {
				return nil
			}
		}
		if p.Exited() {
			return fmt.Errorf("%s exited early: %v (log: %s)", p.name, p.State(), p.logPath)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", p.name, ctx.Err())
		case <-tick.C:
		}
	}
}

// tail returns the end of a log file, to explain a failed start after its
// temporary folder is gone.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return "---- " + filepath.Base(path) + " (tail)\n" + string(b)
}
