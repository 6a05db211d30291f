package localrun

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrAlreadyRunning: another process holds the run folder's lock.
var ErrAlreadyRunning = errors.New("gitpulse is already running in this checkout")

// LockName is the lock file in a run folder.
const LockName = "lock"

// Lock takes the run folder's lock (an exclusive flock on dir/lock, which
// the kernel releases when the process ends, however it ends) and writes
// this process's id into it. A second `make run` in the same checkout gets
// ErrAlreadyRunning, naming the running one, before it touches anything:
// clearing the folder under a running stack deletes its etcd data and
// certificates and kills it. release gives the lock back.
func Lock(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := strings.TrimSpace(string(b))
			if holder == "" {
				holder = "unknown"
			}
			return nil, fmt.Errorf("%w (pid %s, lock %s): stop it first (Ctrl-C in its terminal, or kill %s), or use another checkout",
				ErrAlreadyRunning, holder, path, holder)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
