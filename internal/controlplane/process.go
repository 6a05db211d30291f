package controlplane

// The two child processes go through internal/proc, the one child-process
// helper of the control plane and the local stack (start with output to a
// log file, readiness that only counts while the process still runs).

import (
	"path/filepath"

	"github.com/liatrio/gitpulse/internal/proc"
)

func startProcess(opts Options, name string, args ...string) (*proc.Process, error) {
	return proc.StartLogged(filepath.Join(opts.BinDir, name), args, nil, opts.Log, filepath.Join(opts.Dir, name+".log"))
}
