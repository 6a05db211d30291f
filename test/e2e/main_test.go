// Package e2e runs gitpulse as a user does with `make run` — a local control
// plane, the recorder and metrics functions as separate processes, the real
// Knative Broker and Triggers (internal/eventingstack), the real GitHubSource
// receive adapter where webhooks enter (internal/ghadapter) — and drives it
// from outside, as GitHub would. Only tests that must isolate
// the recorder call it directly, as a Broker would.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/localrun"
	"github.com/liatrio/gitpulse/internal/proc"
)

var shared *localrun.Stack

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// Generous: only one Knative Eventing runs per machine, so this may
	// first wait for another test binary's to stop.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	root, err := controlplane.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bin, err := os.MkdirTemp("", "gitpulse-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(bin)
	if err := localrun.Build(ctx, root, bin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "gitpulse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	shared, err = localrun.Start(ctx, localrun.Options{Root: root, BinDir: bin, Dir: dir,
		Env: []string{"GITPULSE_LOG_LEVEL=warn"}, Eventing: true,
		EventingWaiting: func() {
			fmt.Fprintln(os.Stderr, "e2e: waiting for another Knative Eventing on this machine to stop ...")
		}})
	if err != nil {
		// The logs first, the reason last: CI shows an output's tail.
		dumpLogs(dir)
		fmt.Fprintln(os.Stderr, "starting the stack:", err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		dumpLogs(dir)
	}
	shared.Stop()
	os.RemoveAll(dir)
	return code
}

// dumpLogs prints the tail of each function's log, to explain a failure.
func dumpLogs(dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		fmt.Fprintln(os.Stderr, proc.Tail(l, 4000))
	}
}

func stack(t *testing.T) *localrun.Stack {
	t.Helper()
	if shared == nil {
		t.Fatal("stack not started")
	}
	return shared
}
