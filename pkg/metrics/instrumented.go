package metrics

// Watch accounting, apart from counting: every list-and-watch goes through
// an instrumented ListerWatcher (as kube-state-metrics' InstrumentedListerWatcher
// does) that counts watch calls per resource, and the reflectors' error
// handler counts the failures.

import (
	"context"
	"log/slog"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// watchStats counts, per resource, watch calls and failed list-and-watches.
type watchStats struct {
	log    *slog.Logger
	mu     sync.Mutex
	starts map[string]uint64
	errors map[string]uint64
}

func newWatchStats(log *slog.Logger, resources ...string) *watchStats {
	w := &watchStats{log: log, starts: map[string]uint64{}, errors: map[string]uint64{}}
	for _, r := range resources {
		w.starts[r], w.errors[r] = 0, 0
	}
	return w
}

// instrument wraps list and watchFn in a ListWatch that counts every watch
// call under resource; every one after the first is a restart (a
// server-side timeout, a broken connection, an API server restart, or a
// re-list after 410 Gone).
func (w *watchStats) instrument(resource string, list cache.ListWithContextFunc, watchFn cache.WatchFuncWithContext) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: list,
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			w.mu.Lock()
			w.starts[resource]++
			w.mu.Unlock()
			return watchFn(ctx, o)
		},
	}
}

// failed counts a list-and-watch that ended in an error (the reflector
// then re-lists, with backoff).
func (w *watchStats) failed(ctx context.Context, resource string, r *cache.Reflector, err error) {
	w.mu.Lock()
	w.errors[resource]++
	w.mu.Unlock()
	w.log.Info("watch failed, re-listing", "resource", resource, "error", err)
	cache.DefaultWatchErrorHandler(ctx, r, err)
}

func (w *watchStats) snapshot(v *view) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v.watchRestarts = make(map[string]uint64, len(w.starts))
	for k, n := range w.starts {
		v.watchRestarts[k] = max(n, 1) - 1
	}
	v.watchErrors = make(map[string]uint64, len(w.errors))
	for k, n := range w.errors {
		v.watchErrors[k] = n
	}
}
