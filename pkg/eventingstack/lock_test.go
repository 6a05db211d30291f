package eventingstack

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestLock_ASecondStackWaitsUntilTheFirstUnlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eventing.lock")
	first, err := lock(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}

	told := 0
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	if _, err := lock(ctx, path, func() { told++ }); err == nil {
		t.Fatal("a second lock was granted while the first is held")
	}
	if told != 1 {
		t.Errorf("waiting callback called %d times, want once", told)
	}

	got := make(chan error, 1)
	go func() {
		f, err := lock(context.Background(), path, nil)
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
