// Package eventingstack runs the real Knative Eventing (v0.43.0, built from
// the Go module proxy by `make eventing`) as plain processes against a local
// kube-apiserver: the webhook, the eventing controller, the
// MTChannelBasedBroker controller, the broker ingress and filter, and the
// in-memory channel's controller and dispatcher. A Broker and its Triggers
// then behave as in a cluster — filtering, retries with the delivery spec's
// backoff, dead-lettering — because Knative's own code does it.
//
// What a cluster would provide and this machine does not, and how it is
// stood in for (and nothing else is emulated):
//   - Pods, Deployments, Endpoints: the controllers only read them for
//     readiness. The Services of broker-ingress, broker-filter and
//     imc-dispatcher get Endpoints in 192.0.2.0/24 (TEST-NET-1; the API
//     server refuses loopback addresses there), and the imc-dispatcher
//     Deployment gets an Available status. Nothing sends traffic to them.
//   - Cluster DNS and Service addresses: every process gets
//     HTTP_PROXY/HTTPS_PROXY pointing at an in-process SOCKS5 Proxy that
//     maps *.svc.cluster.local names to loopback ports and tunnels each
//     connection there unchanged; NO_PROXY=127.0.0.1,localhost.
//   - Webhook Services: `type: ExternalName` Services eventing-webhook and
//     inmemorychannel-webhook name localhost, so the API server calls
//     https://localhost:<port> (TLS still names <service>.knative-eventing.svc,
//     which is what the webhooks' own certificates say).
//
// The channel dispatcher binds :8080 and :8443, so one stack runs per
// machine at a time; Start waits for a machine-wide lock (LockPath).
package eventingstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/flock"
	"github.com/liatrio/gitpulse/internal/freeport"
	"github.com/liatrio/gitpulse/internal/proc"
)

// SystemNamespace is where Knative Eventing's own objects live.
const SystemNamespace = "knative-eventing"

// dispatcherHTTPPort is the in-memory channel dispatcher's fixed port
// (knative.dev/eventing v0.43.0 pkg/reconciler/inmemorychannel/dispatcher/
// controller.go: httpPort = 8080; httpsPort = 8443 is bound too).
const dispatcherHTTPPort = 8080

// Options configure Start.
type Options struct {
	// BinDir holds the seven eventing binaries and config/ (see BinDir()).
	BinDir string
	// Config is an admin client configuration for the API server, and
	// Kubeconfig the path of the same credentials for the processes.
	Config     *rest.Config
	Kubeconfig string
	// Dir receives the processes' logs (eventing-<name>.log). Required
	// unless Log is set.
	Dir string
	// Log receives every process's output instead of files in Dir.
	Log io.Writer
	// LogLevel for Knative's loggers (config-logging); default "warn".
	LogLevel string
	// Waiting is called once if another stack holds the machine-wide lock.
	Waiting func()
	// FailIfBusy makes Start fail with ErrBusy instead of waiting for the
	// lock.
	FailIfBusy bool
	// IngressPort is the broker ingress's loopback port; 0 picks a free one.
	IngressPort int
}

// Stack is a running Knative Eventing.
type Stack struct {
	opts     Options
	stateDir string // per-process kubeconfigs
	lockF    *flock.Lock
	proxy    *Proxy
	apply    *applier
	procs    []*namedProcess
	ports    map[string]int
}

type namedProcess struct {
	*proc.Process
	name, log string
}

// BinDir is $GITPULSE_EVENTING_BIN, or bin/eventing under the gitpulse
// module root.
func BinDir() (string, error) {
	if d := os.Getenv("GITPULSE_EVENTING_BIN"); d != "" {
		return d, nil
	}
	root, err := controlplane.ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "eventing"), nil
}

// binaries, in start order: the dispatcher first, so that it — not a
// controller's health server, which also tries :8080 and ignores the
// failure — holds :8080.
var binaries = []string{"channel_dispatcher", "webhook", "channel_controller", "controller", "mtchannel_broker", "ingress", "filter"}

// Start applies Knative Eventing's configuration to the API server and
// starts its processes. It returns once the webhooks serve and every
// process listens. The caller must call Stop.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	if opts.BinDir == "" {
		d, err := BinDir()
		if err != nil {
			return nil, err
		}
		opts.BinDir = d
	}
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(opts.BinDir, b)); err != nil {
			return nil, fmt.Errorf("eventing binary %s missing in %s (run `make eventing`): %w", b, opts.BinDir, err)
		}
	}
	if opts.Config == nil || opts.Kubeconfig == "" {
		return nil, errors.New("eventingstack: Config and Kubeconfig are required")
	}
	if opts.Dir == "" && opts.Log == nil {
		return nil, errors.New("eventingstack: Dir or Log is required")
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "warn"
	}
	s := &Stack{opts: opts, ports: map[string]int{}}
	var err error
	if s.lockF, err = lock(ctx, LockPath, opts.Waiting, opts.FailIfBusy); err != nil {
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Stack) start(ctx context.Context) error {
	// Nothing else may hold the dispatcher's fixed port: a stale process
	// there would answer for our channels.
	if l, err := net.Listen("tcp", ":"+strconv.Itoa(dispatcherHTTPPort)); err != nil {
		return fmt.Errorf("the channel dispatcher needs port %d, which is taken: %w", dispatcherHTTPPort, err)
	} else {
		l.Close()
	}
	for _, name := range []string{"webhook", "imc-webhook", "ingress", "ingress-https", "filter", "filter-https"} {
		p, err := freeport.Pick()
		if err != nil {
			return err
		}
		s.ports[name] = p
	}
	if s.opts.IngressPort != 0 {
		// The ingress listens on all interfaces (knative.dev/eventing
		// pkg/kncloudevents/event_receiver.go: ":%d"); check the same way.
		l, err := net.Listen("tcp", ":"+strconv.Itoa(s.opts.IngressPort))
		if err != nil {
			return fmt.Errorf("broker ingress port: %w", err)
		}
		l.Close()
		s.ports["ingress"] = s.opts.IngressPort
	}
	var err error
	if s.stateDir, err = os.MkdirTemp("", "gitpulse-eventing-"); err != nil {
		return err
	}
	if s.proxy, err = newProxy(); err != nil {
		return err
	}
	s.proxy.Route(ServiceHost("broker-ingress", SystemNamespace), s.ports["ingress"])
	s.proxy.Route(ServiceHost("broker-filter", SystemNamespace), s.ports["filter"])
	s.proxy.Route(ServiceHost("imc-dispatcher", SystemNamespace), dispatcherHTTPPort)
	// Each channel's Service <channel>-kn-channel.<ns> is an ExternalName
	// for imc-dispatcher (pkg/reconciler/inmemorychannel/controller/
	// resources/service.go); the dispatcher tells channels apart by Host.
	s.proxy.RouteLabelSuffix("-kn-channel", dispatcherHTTPPort)

	if s.apply, err = newApplier(s.opts.Config); err != nil {
		return err
	}
	if err := s.applyConfig(ctx); err != nil {
		return err
	}
	for _, name := range binaries {
		if err := s.startProcess(name); err != nil {
			return err
		}
		if name == "channel_dispatcher" {
			if err := s.waitListening(ctx, name, dispatcherHTTPPort); err != nil {
				return err
			}
		}
	}
	for name, port := range map[string]int{"webhook": s.ports["webhook"], "channel_controller": s.ports["imc-webhook"],
		"ingress": s.ports["ingress"], "filter": s.ports["filter"]} {
		if err := s.waitListening(ctx, name, port); err != nil {
			return err
		}
	}
	return s.waitWebhooks(ctx)
}

// env is each process's environment: what its Deployment in
// config/core/deployments/*.yaml, config/brokers/mt-channel-broker/
// deployments/*.yaml or config/channels/in-memory-channel/deployments/*.yaml
// sets, with pod fields filled in and ports moved off the ones the
// dispatcher holds.
func (s *Stack) env(name string) ([]string, []string, error) {
	profiling, err := freeport.Pick()
	if err != nil {
		return nil, nil, err
	}
	probes, err := freeport.Pick()
	if err != nil {
		return nil, nil, err
	}
	kubeconfig, err := s.kubeconfigAs(name)
	if err != nil {
		return nil, nil, err
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"KUBECONFIG=" + kubeconfig,
		"SYSTEM_NAMESPACE=" + SystemNamespace,
		"POD_NAME=" + strings.ReplaceAll(name, "_", "-") + "-local",
		"CONFIG_LOGGING_NAME=config-logging",
		"CONFIG_OBSERVABILITY_NAME=config-observability",
		// knative.dev/pkg profiling/server.go (default 8008) and
		// cmd/controller/main.go's PROBES_PORT (default 8080).
		"PROFILING_PORT=" + strconv.Itoa(profiling),
		"PROBES_PORT=" + strconv.Itoa(probes),
		// knative.dev/pkg network/domain.go reads /etc/resolv.conf first,
		// then this.
		"CLUSTER_DOMAIN=cluster.local",
		"HTTP_PROXY=" + s.proxy.URL(), "HTTPS_PROXY=" + s.proxy.URL(),
		"http_proxy=" + s.proxy.URL(), "https_proxy=" + s.proxy.URL(),
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	}
	// sharedmain (knative.dev/pkg injection/sharedmain/main.go) takes
	// --disable-ha; the ingress and filter mains do not use sharedmain.
	args := []string{"--disable-ha"}
	switch name {
	case "controller": // config/core/deployments/controller.yaml
		env = append(env, "METRICS_DOMAIN=knative.dev/eventing",
			"APISERVER_RA_IMAGE=ko://knative.dev/eventing/cmd/apiserver_receive_adapter")
	case "webhook": // config/core/deployments/webhook.yaml
		env = append(env, "METRICS_DOMAIN=knative.dev/eventing", "WEBHOOK_NAME=eventing-webhook",
			"WEBHOOK_PORT="+strconv.Itoa(s.ports["webhook"]), "SINK_BINDING_SELECTION_MODE=exclusion")
	case "mtchannel_broker": // config/brokers/mt-channel-broker/deployments/controller.yaml
		env = append(env, "METRICS_DOMAIN=knative.dev/eventing")
	case "ingress": // config/brokers/mt-channel-broker/deployments/broker-ingress.yaml
		env = append(env, "NAMESPACE="+SystemNamespace, "CONTAINER_NAME=ingress",
			"METRICS_DOMAIN=knative.dev/internal/eventing",
			"INGRESS_PORT="+strconv.Itoa(s.ports["ingress"]), "INGRESS_PORT_HTTPS="+strconv.Itoa(s.ports["ingress-https"]))
		args = nil
	case "filter": // config/brokers/mt-channel-broker/deployments/broker-filter.yaml
		env = append(env, "NAMESPACE="+SystemNamespace, "CONTAINER_NAME=filter",
			"METRICS_DOMAIN=knative.dev/internal/eventing",
			"FILTER_PORT="+strconv.Itoa(s.ports["filter"]), "FILTER_PORT_HTTPS="+strconv.Itoa(s.ports["filter-https"]))
		args = nil
	case "channel_controller": // config/channels/in-memory-channel/deployments/controller.yaml
		env = append(env, "WEBHOOK_NAME=inmemorychannel-webhook", "WEBHOOK_PORT="+strconv.Itoa(s.ports["imc-webhook"]),
			"METRICS_DOMAIN=knative.dev/inmemorychannel-controller",
			"DISPATCHER_IMAGE=ko://knative.dev/eventing/cmd/in_memory/channel_dispatcher")
	case "channel_dispatcher": // config/channels/in-memory-channel/deployments/dispatcher.yaml
		env = append(env, "CONTAINER_NAME=dispatcher", "METRICS_DOMAIN=knative.dev/inmemorychannel-dispatcher",
			"MAX_IDLE_CONNS=1000", "MAX_IDLE_CONNS_PER_HOST=1000")
	}
	return env, args, nil
}

func (s *Stack) startProcess(name string) error {
	env, args, err := s.env(name)
	if err != nil {
		return err
	}
	out, logPath, closeLog := s.opts.Log, "", func() {}
	if out == nil {
		logPath = filepath.Join(s.opts.Dir, "eventing-"+name+".log")
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		out, closeLog = f, func() { f.Close() }
	}
	p, err := proc.Start(filepath.Join(s.opts.BinDir, name), args, env, out, closeLog)
	if err != nil {
		closeLog()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	s.procs = append(s.procs, &namedProcess{Process: p, name: name, log: logPath})
	return nil
}

func (s *Stack) process(name string) *namedProcess {
	for _, p := range s.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// waitListening waits until name's port accepts connections, failing early
// if the process ended.
func (s *Stack) waitListening(ctx context.Context, name string, port int) error {
	p := s.process(name)
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("%s exited during start: %v%s", name, p.State(), tail(p.log, 2000))
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
}

// waitWebhooks waits until both webhooks have written their CA bundle into
// their configurations (knative.dev/pkg webhook/resourcesemantics/
// defaulting/defaulting.go reconcileMutatingWebhook): before that the API
// server cannot call them and refuses every eventing object.
func (s *Stack) waitWebhooks(ctx context.Context) error {
	for _, name := range []string{"webhook.eventing.knative.dev", "inmemorychannel.eventing.knative.dev"} {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
			for _, p := range s.procs {
				if p.Exited() {
					return false, fmt.Errorf("%s exited: %v%s", p.name, p.State(), tail(p.log, 2000))
				}
			}
			u, err := s.apply.get(ctx, "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "", name)
			if err != nil {
				return false, nil
			}
			hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
			for _, h := range hooks {
				ca, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "caBundle")
				if ca == "" {
					return false, nil
				}
			}
			return len(hooks) > 0, nil
		})
		if err != nil {
			return fmt.Errorf("webhook %s not ready: %w", name, err)
		}
	}
	return nil
}

// Proxy is the processes' proxy (their HTTP_PROXY and HTTPS_PROXY); route
// your own Services' host names through it (Proxy.Route).
func (s *Stack) Proxy() *Proxy { return s.proxy }

// IngressURL is the address of namespace/broker on the local broker
// ingress: what a Broker's status.address.url
// (http://broker-ingress.knative-eventing.svc.cluster.local/<ns>/<broker>)
// reaches.
func (s *Stack) IngressURL(namespace, broker string) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.ports["ingress"]) + "/" + namespace + "/" + broker
}

// Pids lists the processes' ids by name (for RSS measurements).
func (s *Stack) Pids() map[string]int {
	m := map[string]int{}
	for _, p := range s.procs {
		if !p.Exited() {
			m[p.name] = p.Pid()
		}
	}
	return m
}

// Stop kills every process (SIGKILL: on SIGTERM the webhook and the channel
// controller drain for ~45 s, and there is nothing to drain to), stops the
// proxy and releases the machine-wide lock. It leaves the objects in the
// API server.
func (s *Stack) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].Kill()
	}
	if s.proxy != nil {
		s.proxy.Close()
	}
	unlock(s.lockF)
	s.lockF = nil
	if s.stateDir != "" {
		os.RemoveAll(s.stateDir)
	}
}

// serviceAccounts are the identities the processes have in a cluster (the
// serviceAccountName of their Deployments in config/). Knative checks some
// of them: the in-memory channel's validation lets only
// system:serviceaccount:knative-eventing:eventing-controller change a
// channel's subscribers (pkg/apis/messaging/v1/
// in_memory_channel_validation.go).
var serviceAccounts = map[string]string{
	"controller":         "eventing-controller", // config/core/deployments/controller.yaml
	"mtchannel_broker":   "eventing-controller", // config/brokers/mt-channel-broker/deployments/controller.yaml
	"webhook":            "eventing-webhook",
	"ingress":            "mt-broker-ingress",
	"filter":             "mt-broker-filter",
	"channel_controller": "imc-controller",
	"channel_dispatcher": "imc-dispatcher",
}

// kubeconfigAs writes a kubeconfig that impersonates name's service
// account. Its groups include system:masters: config/'s RBAC is not
// applied, the admin credentials stand in for it.
func (s *Stack) kubeconfigAs(name string) (string, error) {
	cfg, err := clientcmd.LoadFromFile(s.opts.Kubeconfig)
	if err != nil {
		return "", err
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok || cfg.AuthInfos[ctx.AuthInfo] == nil {
		return "", fmt.Errorf("%s: no current context", s.opts.Kubeconfig)
	}
	sa := serviceAccounts[name]
	ai := cfg.AuthInfos[ctx.AuthInfo].DeepCopy()
	ai.Impersonate = "system:serviceaccount:" + SystemNamespace + ":" + sa
	ai.ImpersonateGroups = []string{"system:masters", "system:serviceaccounts",
		"system:serviceaccounts:" + SystemNamespace, "system:authenticated"}
	cfg.AuthInfos[ctx.AuthInfo] = ai
	path := filepath.Join(s.stateDir, name+".kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

func tail(path string, n int) string {
	if t := proc.Tail(path, n); t != "" {
		return "\n" + t
	}
	return ""
}
