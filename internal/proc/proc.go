// Package proc runs child processes that never outlive their parent: each
// in its own process group (so a kill reaches its children too), with
// SIGKILL delivered if the parent dies first. The local control plane and
// the local stack start their etcd, kube-apiserver and function processes
// with it.
package proc

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a running child process.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
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
