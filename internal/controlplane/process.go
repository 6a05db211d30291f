package controlplane

// Supervision of the two child processes: start with output to a log file,
// wait for readiness while watching that the process is still alive, kill or
// stop, and show a log's tail when something fails.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/liatrio/gitpulse/internal/proc"
)

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
