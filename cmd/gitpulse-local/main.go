// Command gitpulse-local runs gitpulse on one machine (`make run`): a local
// control plane, the recorder and metrics functions as processes, the real
// Knative Broker with its Triggers (Knative Eventing as processes; the
// channel dispatcher needs ports 8080 and 8443) and the real GitHubSource
// receive adapter where raw GitHub webhooks enter, sending into the Broker
// (GITPULSE_EVENTING=off leaves both out: gitpulse's own intake then checks
// webhooks and calls the recorder directly). It prints the addresses when
// ready, writes them to .cache/run/env, and stops everything on
// SIGINT/SIGTERM.
//
// Ports come from GITPULSE_{APISERVER,ETCD,RECORDER,METRICS,INTAKE,BROKER}_PORT
// (defaults 16443, 12379, 18081, 18082, 18080, 18083: clear of common
// services);
// the webhook secret from GITPULSE_WEBHOOK_SECRET (default: a random one).
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/eventingstack"
	"github.com/liatrio/gitpulse/internal/localrun"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gitpulse-local:", err)
		os.Exit(1)
	}
}

func port(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("%s=%q is not a port", name, v)
	}
	return p, nil
}

func run() error {
	root, err := controlplane.ModuleRoot()
	if err != nil {
		return err
	}
	opts := localrun.Options{
		Root:   root,
		Dir:    filepath.Join(root, ".cache", "run"),
		BinDir: filepath.Join(root, "bin"),
		Secret: os.Getenv("GITPULSE_WEBHOOK_SECRET"),
		// As a GitHubSource's spec.ownerAndRepository: the CloudEvent source
		// (the adapter's GITHUB_OWNER_REPO; default gitpulse-local).
		OwnerAndRepository: os.Getenv("GITPULSE_OWNER_REPO"),
		// The real Broker unless GITPULSE_EVENTING=off.
		Eventing: os.Getenv("GITPULSE_EVENTING") != "off",
		// A reconcile pass every GITPULSE_RECONCILE_INTERVAL (default 1m;
		// "0" turns the timer off), as the PingSource does in a cluster.
		ReconcileInterval: time.Minute,
		// One eventing stack per machine (its dispatcher binds :8080):
		// say so at once rather than wait behind a test run.
		EventingFailIfBusy: true,
	}
	for _, p := range []struct {
		env string
		def int
		dst *int
	}{
		{"GITPULSE_APISERVER_PORT", 16443, &opts.APIServerPort},
		{"GITPULSE_ETCD_PORT", 12379, &opts.EtcdPort},
		{"GITPULSE_RECORDER_PORT", 18081, &opts.RecorderPort},
		{"GITPULSE_METRICS_PORT", 18082, &opts.MetricsPort},
		{"GITPULSE_INTAKE_PORT", 18080, &opts.IntakePort},
		{"GITPULSE_BROKER_PORT", 18083, &opts.BrokerPort},
	} {
		if *p.dst, err = port(p.env, p.def); err != nil {
			return err
		}
	}
	// Before anything is touched, the run folder's lock — a
	// second `make run` in this checkout says one is running and changes
	// nothing (it used to clear the running one's control plane). The
	// lock file may be moved with GITPULSE_RUN_DIR (tests). A function
	// process that dies (kill -9, OOM) is restarted with backoff, logged.
	if v := os.Getenv("GITPULSE_RECONCILE_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("GITPULSE_RECONCILE_INTERVAL=%q is not a duration", v)
		}
		opts.ReconcileInterval = d
	}
	opts.Dir = cmp.Or(os.Getenv("GITPULSE_RUN_DIR"), opts.Dir)
	unlock, err := localrun.Lock(opts.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	opts.Restart, opts.Logger = true, slog.New(slog.NewTextHandler(os.Stderr, nil))

	// Each run starts from an empty control plane: what a newcomer expects,
	// and no stale etcd data from an older version.
	if err := os.RemoveAll(filepath.Join(opts.Dir, "controlplane")); err != nil {
		return err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if opts.Eventing {
		fmt.Println("gitpulse: starting control plane, recorder, metrics, Knative Broker and GitHubSource receive adapter ...")
	} else {
		fmt.Println("gitpulse: starting control plane, recorder, metrics and intake (no Broker: GITPULSE_EVENTING=off) ...")
	}
	start := time.Now()
	stack, err := localrun.Start(ctx, opts)
	if errors.Is(err, eventingstack.ErrBusy) {
		return fmt.Errorf("%w: stop it (a test run?), or start without the Broker: GITPULSE_EVENTING=off make run", err)
	}
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("\ngitpulse: stopping ...")
		stack.Stop()
		fmt.Println("gitpulse: stopped")
	}()
	envFile := filepath.Join(opts.Dir, "env")
	if err := stack.WriteEnv(envFile); err != nil {
		return err
	}
	env := stack.Env()
	fmt.Printf("gitpulse: ready in %s\n\n", time.Since(start).Round(100*time.Millisecond))
	for _, k := range []string{"KUBECONFIG", "GITPULSE_EVENTS_URL", "GITPULSE_BROKER_URL", "GITPULSE_WEBHOOK_URL", "GITPULSE_METRICS_URL", "GITPULSE_WEBHOOK_SECRET", "GITPULSE_NAMESPACE"} {
		if v, ok := env[k]; ok {
			fmt.Printf("  %s=%s\n", k, v)
		}
	}
	fmt.Printf("\n(also written to %s)\n", envFile)
	fmt.Printf("try:  make demo    or    %s --kubeconfig %s get gitpulse -A\n", filepath.Join(root, "bin", "controlplane", "kubectl"), env["KUBECONFIG"])
	fmt.Println("logs: " + opts.Dir + "/*.log   stop: Ctrl-C")
	<-ctx.Done()
	return nil
}
