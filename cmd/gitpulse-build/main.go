// Command gitpulse-build builds the two functions into a folder (default
// bin/) exactly as kn func's host builder builds them for a cluster: kn func's
// real scaffolding and knative.dev/func-go (internal/knfunc). `make run`,
// `make demo` and the tests run those binaries.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/localrun"
)

func main() {
	out := flag.String("o", "bin", "folder for gitpulse-recorder and gitpulse-metrics")
	flag.Parse()
	root, err := controlplane.ModuleRoot()
	if err == nil {
		var dir string
		if dir, err = filepath.Abs(*out); err == nil {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			err = localrun.Build(ctx, root, dir)
			stop()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitpulse-build:", err)
		os.Exit(1)
	}
}
