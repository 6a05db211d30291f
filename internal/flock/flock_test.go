package flock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestTryLock_IsRefusedWhileHeldAndNamesTheHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	l, err := TryLock(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if got := Holder(path); got != strconv.Itoa(os.Getpid()) {
		t.Errorf("Holder = %q, want this pid", got)
	}
	if _, err := TryLock(path, 0o644); !errors.Is(err, ErrHeld) {
		t.Fatalf("second TryLock: %v, want ErrHeld", err)
	}
	l.Release()
	l.Release() // twice is harmless
	again, err := TryLock(path, 0o644)
	if err != nil {
		t.Fatalf("TryLock after Release: %v", err)
	}
	again.Release()
}

func TestWait_TakesTheLockOnceReleasedOrGivesUpWithItsContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	first, err := TryLock(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*RetryInterval)
	defer cancel()
	told := 0
	if _, err := Wait(ctx, path, 0o644, func() { told++ }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait while held: %v, want the context's deadline", err)
	}
	if told != 1 {
		t.Errorf("waiting called %d times, want once", told)
	}
	time.AfterFunc(RetryInterval, first.Release)
	l, err := Wait(context.Background(), path, 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
}
