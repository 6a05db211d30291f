package localrun

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/liatrio/gitpulse/internal/flock"
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
	l, err := flock.TryLock(path, 0o644)
	if errors.Is(err, flock.ErrHeld) {
		holder := flock.Holder(path)
		if holder == "" {
			holder = "unknown"
		}
		return nil, fmt.Errorf("%w (pid %s, lock %s): stop it first (Ctrl-C in its terminal, or kill %s), or use another checkout",
			ErrAlreadyRunning, holder, path, holder)
	}
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}
