package eventingstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// LockPath is the machine-wide lock that serialises eventing stacks. The
// in-memory channel dispatcher binds :8080 and :8443 as constants
// (knative.dev/eventing v0.43.0
// pkg/reconciler/inmemorychannel/dispatcher/controller.go: httpPort,
// httpsPort), so only one stack can run on a machine at a time, whichever
// worktree or test binary starts it. /tmp rather than $TMPDIR: the port is
// the machine's, whatever each process's TMPDIR says.
var LockPath = filepath.Join("/tmp", "gitpulse-eventing.lock")

// ErrBusy is returned when another stack holds the lock and the caller
// chose not to wait.
var ErrBusy = errors.New("another Knative Eventing runs on this machine")

// lock takes the machine-wide lock, waiting while another stack holds it
// (or failing with ErrBusy when noWait). The kernel releases it when the
// holder dies, so a crashed test cannot leave it taken.
func lock(ctx context.Context, path string, waiting func(), noWait bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("eventing lock %s: %w", path, err)
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			f.Truncate(0)
			fmt.Fprintf(f, "%d\n", os.Getpid())
			return f, nil
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("eventing lock %s: %w", path, err)
		}
		if noWait {
			f.Close()
			return nil, fmt.Errorf("%w (pid %s, holding %s)", ErrBusy, holder(path), path)
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the eventing lock %s (held by pid %s): %w", path, holder(path), ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func holder(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) == 0 {
		return "?"
	}
	return string(b[:len(b)-1])
}

func unlock(f *os.File) {
	if f != nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}
