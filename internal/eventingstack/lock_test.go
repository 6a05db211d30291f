package eventingstack

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestLock_ASecondStackWaitsOrIsToldBusyUntilTheFirstUnlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eventing.lock")
	first, err := lock(context.Background(), path, nil, false)
	if err != nil {
		t.Fatal(err)
	}

	told := 0
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	if _, err := lock(ctx, path, func() { told++ }, false); err == nil {
		t.Fatal("a second lock was granted while the first is held")
	}
	if told != 1 {
		t.Errorf("waiting callback called %d times, want once", told)
	}

	if _, err := lock(context.Background(), path, nil, true); !errors.Is(err, ErrBusy) {
		t.Errorf("without waiting: %v, want ErrBusy", err)
	}

	got := make(chan error, 1)
	go func() {
		f, err := lock(context.Background(), path, nil, false)
		unlock(f)
		got <- err
	}()
	time.Sleep(300 * time.Millisecond)
	unlock(first)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting stack did not get the lock after the first released it")
	}
}
