// Package flock is an exclusive lock on a file that holds its holder's
// process id: an flock(2), which the kernel releases when the process ends,
// however it ends, so a crash cannot leave it taken. The lock belongs to the
// open file, so a second TryLock of the same path in one process is refused
// exactly as another process's would be.
//
// The local harness uses it for the run folder of `make run`
// (internal/localrun) and for the machine-wide Knative Eventing lock
// (internal/eventingstack).
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrHeld is returned (wrapped, naming the path and the holder's pid) when
// another open file holds the lock.
var ErrHeld = errors.New("lock held")

// RetryInterval is how often Wait tries again while the lock is held.
const RetryInterval = 250 * time.Millisecond

// Lock is a held lock.
type Lock struct {
	f *os.File
}

// TryLock takes the lock on path (creating the file with perm) without
// waiting and writes this process's id into it. When another holds it, the
// error wraps ErrHeld; Holder names the holder.
func TryLock(path string, perm os.FileMode) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, perm)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (pid %s)", ErrHeld, path, Holder(path))
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Wait takes the lock on path, trying again every RetryInterval while
// another holds it, until ctx is done. waiting, when not nil, is called
// once, the first time it has to wait.
func Wait(ctx context.Context, path string, perm os.FileMode, waiting func()) (*Lock, error) {
	told := false
	for {
		l, err := TryLock(path, perm)
		if !errors.Is(err, ErrHeld) {
			return l, err
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the lock %s (held by pid %s): %w", path, Holder(path), ctx.Err())
		case <-time.After(RetryInterval):
		}
	}
}

// Release gives the lock back. A nil Lock is released already.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}

// Holder is the process id written in the lock file at path, or "" when
// there is none.
func Holder(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}
