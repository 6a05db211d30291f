// Package proc runs child processes that never outlive their parent: each
// in its own process group (so a kill reaches its children too), with
// SIGKILL delivered if the parent dies first. The local control plane and
// the local stack start their etcd, kube-apiserver and function processes
// with it.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Process is a running child process.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	// logPath is where StartLogged sends the output ("" otherwise).
	logPath string
}

// Start runs path with args and env (nil: the parent's), output to out.
// onExit, if not nil, runs once the process has ended.
func Start(path string, args, env []string, out io.Writer, onExit func()) (*Process, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		if onExit != nil {
			onExit()
		}
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// State describes how the process ended (nil while it runs).
func (p *Process) State() *os.ProcessState { return p.cmd.ProcessState }

// Done is closed once the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL to the process group and waits.
func (p *Process) Kill() {
	if p == nil || p.Exited() {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Terminate sends SIGTERM to the process group, waits up to grace, then
// kills.
func (p *Process) Terminate(grace time.Duration) error {
	if p == nil || p.Exited() {
		return nil
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		p.Kill()
		return errors.New("did not stop within the grace period; killed")
	}
}

// StartLogged starts path like Start, its output appended to logPath (a
// file created if needed and closed when the process ends) unless out is
// given.
func StartLogged(path string, args, env []string, out io.Writer, logPath string) (*Process, error) {
	closeLog := func() {}
	if out == nil {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		out, closeLog = f, func() { f.Close() }
	} else {
		logPath = ""
	}
	p, err := Start(path, args, env, out, closeLog)
	if err != nil {
		closeLog()
		return nil, fmt.Errorf("starting %s: %w", filepath.Base(path), err)
	}
	p.logPath = logPath
	return p, nil
}

// LogPath is the file StartLogged writes the output to ("" when it went
// elsewhere).
func (p *Process) LogPath() string { return p.logPath }

// WaitReady polls ok every interval until it reports true while the process
// runs, the process ends (an error naming how, and its log), or ctx or
// timeout ends. The process is checked before and after ok: a health check
// can be answered by another process that took the port, while this one has
// already failed to bind.
func (p *Process) WaitReady(ctx context.Context, timeout, interval time.Duration, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	name := filepath.Base(p.cmd.Path)
	for {
		if !p.Exited() && ok() {
			time.Sleep(interval / 2)
			if !p.Exited() {
				return nil
			}
		}
		if p.Exited() {
			return fmt.Errorf("%s exited early: %v (log: %s)", name, p.State(), p.logPath)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", name, ctx.Err())
		case <-tick.C:
		}
	}
}

// Tail returns the last n bytes of a log file under a header naming it (""
// when there is no such file), to explain a failed start after the
// process's temporary folder is gone.
func Tail(path string, n int) string {
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return "---- " + filepath.Base(path) + " (tail)\n" + string(b)
}
