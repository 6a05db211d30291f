// Package broker specifies how the real Knative Broker (eventing v0.43.0,
// run by internal/eventingstack) routes gitpulse's events with the files a
// cluster deployment uses: config/eventing/broker.yaml (delivery spec),
// config/eventing/dead-letter.yaml and the root func.yaml (Triggers). The
// function here is a recording stand-in that answers what each test asks,
// so the Broker's own behaviour is what is observed; test/e2e runs the
// same routing in front of the real recorder.
package broker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/eventingstack"
	"github.com/liatrio/gitpulse/internal/proc"
	"github.com/liatrio/gitpulse/internal/testenv"
)

var (
	env    *testenv.Env
	events *eventingstack.Stack
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var err error
	env, err = testenv.Start(ctx, controlplane.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "control plane:", err)
		return 1
	}
	defer env.ControlPlane.Stop()
	dir, err := os.MkdirTemp("", "gitpulse-broker-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := env.ControlPlane.WriteKubeconfig(kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	start := time.Now()
	events, err = eventingstack.Start(ctx, eventingstack.Options{Config: env.Config(), Kubeconfig: kubeconfig, Dir: dir,
		Waiting: func() { fmt.Fprintln(os.Stderr, "waiting for another eventing stack on this machine to stop ...") }})
	if err != nil {
		// The logs first, the reason last: CI shows an output's tail.
		dumpLogs(dir)
		fmt.Fprintln(os.Stderr, "eventing:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "eventing stack up in %s\n", time.Since(start).Round(100*time.Millisecond))
	code := m.Run()
	if code != 0 {
		dumpLogs(dir)
	}
	events.Stop()
	return code
}

func dumpLogs(dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		fmt.Fprintln(os.Stderr, proc.Tail(l, 3000))
	}
}
