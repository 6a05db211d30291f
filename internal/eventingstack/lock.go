package eventingstack

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/liatrio/gitpulse/internal/flock"
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

// lockPerm lets any user's stack open the machine-wide lock file.
const lockPerm = 0o666

// lock takes the machine-wide lock, waiting while another stack holds it
// (or failing with ErrBusy when noWait). The kernel releases it when the
// holder dies, so a crashed test cannot leave it taken.
func lock(ctx context.Context, path string, waiting func(), noWait bool) (*flock.Lock, error) {
	if noWait {
		l, err := flock.TryLock(path, lockPerm)
		if errors.Is(err, flock.ErrHeld) {
			return nil, fmt.Errorf("%w (pid %s, holding %s)", ErrBusy, holder(path), path)
		}
		if err != nil {
			return nil, fmt.Errorf("eventing lock %s: %w", path, err)
		}
		return l, nil
	}
	l, err := flock.Wait(ctx, path, lockPerm, waiting)
	if err != nil {
		return nil, fmt.Errorf("eventing lock: %w", err)
	}
	return l, nil
}

func holder(path string) string {
	if h := flock.Holder(path); h != "" {
		return h
	}
	return "?"
}

func unlock(l *flock.Lock) { l.Release() }
