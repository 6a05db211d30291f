// Package localrun runs the whole of gitpulse on one machine: a local
// control plane, the recorder and metrics functions as separate processes
// (as they are separate pods in a cluster), and where webhooks enter: the
// real GitHubSource receive adapter in front of the real Broker
// (Options.Eventing, adapter.go), else gitpulse's own raw-webhook intake. It
// is what `make run` starts and what the end-to-end tests drive.
package localrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/freeport"
	"github.com/liatrio/gitpulse/internal/ghadapter"
	"github.com/liatrio/gitpulse/internal/inflight"
	"github.com/liatrio/gitpulse/internal/intake"
	"github.com/liatrio/gitpulse/internal/knfunc"
	"github.com/liatrio/gitpulse/internal/proc"
)

// Options configure Start. Zero ports pick free ones.
type Options struct {
	// Root is the gitpulse module root (for crds/); default: found from the
	// working folder.
	Root string
	// Dir holds the control plane's data, the kubeconfig, logs and the env
	// file; default a temporary folder.
	Dir string
	// BinDir holds gitpulse-recorder and gitpulse-metrics (see Build).
	BinDir string
	// Namespace the functions write and watch; default "gitpulse".
	Namespace string
	// Secret for raw webhooks; default a random one.
	Secret string
	// OwnerAndRepository is a GitHubSource's spec.ownerAndRepository (the
	// CloudEvent source): the receive adapter's GITHUB_OWNER_REPO (default
	// "gitpulse-local"), or without eventing the intake's (default: each
	// payload's repository).
	OwnerAndRepository string
	// EventingGitHubBinDir holds the GitHubSource receive adapter and its
	// CRD (default ghadapter.BinDir()). The CRD is installed in both modes.
	EventingGitHubBinDir string

	APIServerPort, EtcdPort, RecorderPort, MetricsPort, IntakePort int
	// EventTTL for the API server (default 1h).
	EventTTL time.Duration
	// Restart, when set, restarts a function process that ends while the
	// stack runs (a crash, an OOM kill, kill -9), after a backoff that
	// doubles from RestartBackoff up to a minute and starts over once a
	// process has stayed up for a minute. `make run` sets it; tests that
	// kill and restart functions themselves leave it off.
	Restart bool
	// RestartBackoff is the first restart delay; default 500ms.
	RestartBackoff time.Duration
	// Logger receives the stack's own messages (restarts); default
	// slog.Default().
	Logger *slog.Logger
	// Env is added to both functions' environment.
	Env []string
	// WithoutMetrics leaves the metrics function out of Start (the caller
	// starts it: test/bench times a start over a namespace too large for
	// StartMetrics' minute).
	WithoutMetrics bool
	// Log receives the functions' logs; default files in Dir.
	Log io.Writer
	// Eventing puts the real Knative Broker between the intake and the
	// recorder (see eventing.go); EventingBinDir holds its binaries
	// (default eventingstack.BinDir()); EventingWaiting is called if
	// another eventing stack on this machine holds the lock, unless
	// EventingFailIfBusy makes Start fail at once (eventingstack.ErrBusy).
	Eventing           bool
	EventingBinDir     string
	EventingWaiting    func()
	EventingFailIfBusy bool
	// BrokerPort is the broker ingress's port (0: a free one).
	BrokerPort int
	// ReconcileInterval, when set, sends the recorder a reconcile trigger
	// that often (reconcile.go; `make run`: GITPULSE_RECONCILE_INTERVAL).
	ReconcileInterval time.Duration
}

// Stack is a running gitpulse.
type Stack struct {
	opts         Options
	ownDir       bool
	ControlPlane *controlplane.ControlPlane
	Kube         kubernetes.Interface
	kubeconfig   string
	intakeSrv    *http.Server
	// queueSrv bounds what reaches the recorder process, which listens on
	// recorderProcessPort (startQueue).
	queueSrv            *http.Server
	queue               *inflight.Limiter
	recorderProcessPort int
	intakeURL           string
	adapter             *ghadapter.Adapter

	ev eventingParts

	mu       sync.Mutex
	recorder *Process
	metrics  *Process
	stopped  chan struct{}
	stopOnce sync.Once
	// stopAll makes Stop safe to call again (a bench stops its first
	// stack early, and again at the end).
	stopAll  sync.Once
	restarts map[string]int
}

// Start brings the whole stack up and returns once every part is ready.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	if opts.Root == "" {
		root, err := controlplane.ModuleRoot()
		if err != nil {
			return nil, err
		}
		opts.Root = root
	}
	if opts.Namespace == "" {
		opts.Namespace = "gitpulse"
	}
	if opts.Secret == "" {
		b := make([]byte, 16)
		rand.Read(b)
		opts.Secret = hex.EncodeToString(b)
	}
	if opts.RestartBackoff <= 0 {
		opts.RestartBackoff = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Stack{opts: opts, stopped: make(chan struct{}), restarts: map[string]int{}}
	if s.opts.Dir == "" {
		d, err := os.MkdirTemp("", "gitpulse-run-")
		if err != nil {
			return nil, err
		}
		s.opts.Dir, s.ownDir = d, true
	}
	var err error
	for _, p := range []*int{&s.opts.RecorderPort, &s.opts.MetricsPort, &s.opts.IntakePort, &s.recorderProcessPort} {
		if *p == 0 {
			if *p, err = freeport.Pick(); err != nil {
				return nil, err
			}
		}
	}
	if err := s.start(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Stack) start(ctx context.Context) error {
	cp, err := controlplane.Start(ctx, controlplane.Options{
		Dir: filepath.Join(s.opts.Dir, "controlplane"), EventTTL: s.opts.EventTTL,
		APIServerPort: s.opts.APIServerPort, EtcdPort: s.opts.EtcdPort,
	})
	if err != nil {
		return err
	}
	s.ControlPlane = cp
	crds, err := controlplane.ReadCRDs(filepath.Join(s.opts.Root, "crds"))
	if err != nil {
		return err
	}
	if err := controlplane.InstallCRDs(ctx, cp.Config(), crds); err != nil {
		return err
	}
	// eventing-github's GitHubSource CRD, so reconcile passes find sources.
	if err := s.installGitHubSourceCRD(ctx); err != nil {
		return err
	}
	s.Kube = kubernetes.NewForConfigOrDie(cp.Config())
	_, err = s.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.opts.Namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	s.kubeconfig = filepath.Join(s.opts.Dir, "kubeconfig")
	if err := cp.WriteKubeconfig(s.kubeconfig); err != nil {
		return err
	}
	if err := s.startQueue(); err != nil {
		return err
	}
	if err := s.StartRecorder(ctx); err != nil {
		return err
	}
	if !s.opts.WithoutMetrics {
		if err := s.StartMetrics(ctx); err != nil {
			return err
		}
	}
	if s.opts.Eventing {
		if err := s.startEventing(ctx); err != nil {
			return err
		}
		if err := s.startAdapter(ctx); err != nil {
			return err
		}
	} else if err := s.startIntake(); err != nil {
		return err
	}
	if s.opts.ReconcileInterval > 0 {
		go s.reconcileLoop(s.opts.ReconcileInterval)
	}
	return nil
}

// startQueue puts the recorder's port behind an in-flight bound
// (GITPULSE_MAX_INFLIGHT_*; inflight.Proxy): queue-proxy's
// containerConcurrency in a cluster, which func-go does not have. The
// recorder process itself listens on recorderProcessPort.
func (s *Stack) startQueue() error {
	limit, err := inflight.FromEnv(s.getenv)
	if err != nil {
		return fmt.Errorf("recorder queue: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.opts.RecorderPort))
	if err != nil {
		return fmt.Errorf("recorder queue: %w", err)
	}
	target, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(s.recorderProcessPort))
	s.queue = limit
	// queue-proxy's own server waits a minute for a request's headers
	// (knative.dev/serving pkg/queue/sharedmain/servers.go, mainServer:
	// knative.dev/pkg network.NewServer). net/http counts that from the
	// accept for a connection's first request, so at 2 s this stand-in
	// closed connections the Broker's side had dialed in a burst and not
	// used yet, and one taken just as it closed failed its request
	// ("write: broken pipe", answered 502 and retried).
	s.queueSrv = &http.Server{Handler: limit.Proxy(target), ReadHeaderTimeout: time.Minute}
	go s.queueSrv.Serve(lis)
	return nil
}

// RecorderQueue is the bound in front of the recorder process (nil before
// it starts): how many requests it has queued and refused.
func (s *Stack) RecorderQueue() *inflight.Limiter { return s.queue }

// getenv is the functions' environment: Options.Env over the process's.
func (s *Stack) getenv(key string) string {
	for i := len(s.opts.Env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(s.opts.Env[i], "="); ok && k == key {
			return v
		}
	}
	return os.Getenv(key)
}

func (s *Stack) startIntake() error {
	h, err := intake.New(intake.Options{Secret: []byte(s.opts.Secret), Target: s.intakeTarget(),
		ToBroker: s.BrokerURL() != "", OwnerAndRepository: s.opts.OwnerAndRepository})
	if err != nil {
		return err
	}
	// Bounded like the functions (GITPULSE_MAX_INFLIGHT_*): a burst of large
	// deliveries is answered 503 + Retry-After, never held in memory.
	limit, err := inflight.FromEnv(os.Getenv)
	if err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/webhook", limit.Handler(h))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "OK") })
	lis, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.opts.IntakePort))
	if err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	s.intakeURL = "http://" + lis.Addr().String() + "/webhook"
	// The GitHubSource adapter's server reads with ReadHeaderTimeout 2 s and
	// ReadTimeout 10 s (eventing-github pkg/adapter/adapter.go); the answer
	// waits for the recorder (30 s client timeout), so writes get longer.
	s.intakeSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 45 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 1 << 20}
	go s.intakeSrv.Serve(lis)
	return nil
}

// RecorderURL receives CloudEvents exactly as the GitHubSource adapter (via
// the Broker) sends them.
func (s *Stack) RecorderURL() string { return "http://127.0.0.1:" + strconv.Itoa(s.opts.RecorderPort) }

// RecorderProcessURL is the recorder process itself, behind no in-flight
// bound: what a benchmark of the recorder's own work posts to (in a
// cluster, queue-proxy is Knative's, not gitpulse's).
func (s *Stack) RecorderProcessURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(s.recorderProcessPort)
}

// MetricsURL is the metrics function's /metrics.
func (s *Stack) MetricsURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(s.opts.MetricsPort) + "/metrics"
}

// WebhookURL receives raw, signed GitHub webhooks: the GitHubSource receive
// adapter (SHA-1 X-Hub-Signature) with eventing, else the intake
// (X-Hub-Signature-256).
func (s *Stack) WebhookURL() string { return s.intakeURL }

// Secret is the webhook secret the adapter or the intake checks.
func (s *Stack) Secret() string { return s.opts.Secret }

// Namespace is where the functions write and watch.
func (s *Stack) Namespace() string { return s.opts.Namespace }

// Kubeconfig is the path of an admin kubeconfig for the control plane.
func (s *Stack) Kubeconfig() string { return s.kubeconfig }

// Env is what a user (or `make demo`) needs to talk to the stack.
func (s *Stack) Env() map[string]string {
	env := map[string]string{
		"KUBECONFIG":              s.kubeconfig,
		"GITPULSE_NAMESPACE":      s.opts.Namespace,
		"GITPULSE_EVENTS_URL":     s.RecorderURL(),
		"GITPULSE_WEBHOOK_URL":    s.WebhookURL(),
		"GITPULSE_METRICS_URL":    s.MetricsURL(),
		"GITPULSE_WEBHOOK_SECRET": s.opts.Secret,
	}
	if url := s.BrokerURL(); url != "" {
		env["GITPULSE_BROKER_URL"] = url
	}
	return env
}

// WriteEnv writes Env as sorted KEY=value lines.
func (s *Stack) WriteEnv(path string) error {
	env := s.Env()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, env[k])
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// FunctionEnv is the environment a function process gets, listening on port.
func (s *Stack) FunctionEnv(port int) []string { return s.functionEnv(port) }

// BinDir holds the function binaries.
func (s *Stack) BinDir() string { return s.opts.BinDir }

func (s *Stack) functionEnv(port int) []string {
	env := append(os.Environ(),
		"KUBECONFIG="+s.kubeconfig,
		"GITPULSE_NAMESPACE="+s.opts.Namespace,
		"PORT="+strconv.Itoa(port),
		"LISTEN_ADDRESS=127.0.0.1:"+strconv.Itoa(port),
	)
	return append(env, s.opts.Env...)
}

// StartRecorder starts the recorder process (again, after KillRecorder;
// with Options.Restart the stack does that itself).
func (s *Stack) StartRecorder(ctx context.Context) error {
	p, err := s.startFunction(ctx, "gitpulse-recorder", s.recorderProcessPort)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.recorder = p
	s.mu.Unlock()
	s.supervise(p, "gitpulse-recorder", s.recorderProcessPort, &s.recorder)
	return nil
}

// StartMetrics starts the metrics process (again, after KillMetrics; with
// Options.Restart the stack does that itself).
func (s *Stack) StartMetrics(ctx context.Context) error {
	p, err := s.startFunction(ctx, "gitpulse-metrics", s.opts.MetricsPort)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.metrics = p
	s.mu.Unlock()
	s.supervise(p, "gitpulse-metrics", s.opts.MetricsPort, &s.metrics)
	return nil
}

// Restarts is how often the stack has restarted the named function.
func (s *Stack) Restarts(name string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.restarts[name] }

// supervise restarts p's function whenever it ends before Stop, if
// Options.Restart is set. Every restart is logged with how the process
// ended and the delay.
func (s *Stack) supervise(p *Process, name string, port int, slot **Process) {
	if !s.opts.Restart {
		return
	}
	const maxBackoff, stable = time.Minute, time.Minute
	go func() {
		backoff := s.opts.RestartBackoff
		up := time.Now()
		for {
			select {
			case <-s.stopped:
				return
			case <-p.Done():
			}
			select {
			case <-s.stopped: // Stop ended it
				return
			default:
			}
			if time.Since(up) >= stable {
				backoff = s.opts.RestartBackoff
			}
			for {
				s.opts.Logger.Warn("function process ended; restarting", "function", name,
					"exit", fmt.Sprint(p.State()), "pid", p.Pid(), "backoff", backoff.String())
				select {
				case <-s.stopped:
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, maxBackoff)
				ctx, cancel := context.WithCancel(context.Background())
				go func() {
					select {
					case <-s.stopped:
					case <-ctx.Done():
					}
					cancel()
				}()
				np, err := s.startFunction(ctx, name, port)
				cancel()
				if err != nil {
					s.opts.Logger.Error("function restart failed", "function", name, "error", err)
					continue
				}
				s.mu.Lock()
				select {
				case <-s.stopped: // Stop ran meanwhile: it did not see np
					s.mu.Unlock()
					np.Terminate(10 * time.Second)
					return
				default:
				}
				*slot = np
				s.restarts[name]++
				s.mu.Unlock()
				s.opts.Logger.Info("function process restarted", "function", name, "pid", np.Pid())
				p, up = np, time.Now()
				break
			}
		}
	}()
}

// RecorderPid is the recorder process's id (for CPU measurements).
func (s *Stack) RecorderPid() int { s.mu.Lock(); defer s.mu.Unlock(); return s.recorder.Pid() }

// MetricsPid is the metrics process's id (for RSS measurements).
func (s *Stack) MetricsPid() int { s.mu.Lock(); defer s.mu.Unlock(); return s.metrics.Pid() }

// KillRecorder ends the recorder process with SIGKILL, as a crash would.
func (s *Stack) KillRecorder() { s.mu.Lock(); defer s.mu.Unlock(); s.recorder.Kill() }

// KillMetrics ends the metrics process with SIGKILL, as a crash would.
func (s *Stack) KillMetrics() { s.mu.Lock(); defer s.mu.Unlock(); s.metrics.Kill() }

func (s *Stack) startFunction(ctx context.Context, name string, port int) (*Process, error) {
	p, err := proc.StartLogged(filepath.Join(s.opts.BinDir, name), nil, s.functionEnv(port), s.opts.Log,
		filepath.Join(s.opts.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	ready := "http://127.0.0.1:" + strconv.Itoa(port) + "/health/readiness"
	err = p.WaitReady(ctx, 60*time.Second, 50*time.Millisecond, func() bool {
		resp, err := http.Get(ready)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// Stop ends every part: adapter or intake, functions (SIGTERM, graceful),
// control plane. Calls after the first do nothing.
func (s *Stack) Stop() { s.stopAll.Do(s.stop) }

func (s *Stack) stop() {
	if s.intakeSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.intakeSrv.Shutdown(ctx)
		cancel()
	}
	s.stopAdapter()
	s.stopEventing()
	if s.queueSrv != nil {
		s.queueSrv.Close()
	}
	s.mu.Lock()
	s.stopOnce.Do(func() { close(s.stopped) })
	s.recorder.Terminate(10 * time.Second)
	s.metrics.Terminate(10 * time.Second)
	s.mu.Unlock()
	if s.ControlPlane != nil {
		s.ControlPlane.Stop()
	}
	if s.ownDir {
		os.RemoveAll(s.opts.Dir)
	}
}

// Functions are the two functions as kn func builds them: root-relative
// folder, binary name, invoke.
var Functions = []struct {
	Dir, Binary string
	Invoke      knfunc.Invoke
}{
	{".", "gitpulse-recorder", knfunc.CloudEvent},
	{"functions/metrics", "gitpulse-metrics", knfunc.HTTP},
}

// Build builds gitpulse-recorder and gitpulse-metrics into binDir exactly as
// kn func's host builder does in a cluster (internal/knfunc: the real
// scaffolding and func-go), in binDir/.scaffold. The dependencies compile
// from the module cache, as every other build here does, so the Go build
// cache serves them; only gitpulse's own packages compile per folder.
func Build(ctx context.Context, root, binDir string) error {
	for _, fn := range Functions {
		ws, err := knfunc.Scaffold(knfunc.Function{Root: filepath.Join(root, fn.Dir), Invoke: fn.Invoke},
			filepath.Join(binDir, ".scaffold", fn.Binary))
		if err != nil {
			return fmt.Errorf("scaffolding %s: %w", fn.Binary, err)
		}
		if err := ws.Build(ctx, knfunc.Host, filepath.Join(binDir, fn.Binary)); err != nil {
			return fmt.Errorf("building %s: %w", fn.Binary, err)
		}
	}
	return nil
}

// Process is a function process (see package proc).
type Process = proc.Process

// StartProcess starts path with env, output to out.
func StartProcess(path string, env []string, out io.Writer) (*Process, error) {
	return proc.Start(path, nil, env, out, nil)
}
