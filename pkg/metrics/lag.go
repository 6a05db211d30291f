package metrics

import (
	"sort"
	"sync"
	"time"
)

// eventLagBuckets suit the time from a recorder Event's creation to its
// being counted: milliseconds when the watch keeps up, seconds when it falls
// behind, a minute and more after a watch gap or a restart (an Event
// created while the function was down is counted, late, by the next list).
var eventLagBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// lagHistogram is gitpulse_metrics_event_lag_seconds: one observation per
// Event this process counts (the Counter says which: an Event replayed by a
// re-list or a reconnect, or counted by an earlier process, is not
// observed again). It has its own lock: it is observed under the Counter's
// lock, which the eventWatcher's must never be taken inside of.
type lagHistogram struct {
	now func() time.Time

	mu sync.Mutex
	// counts are per bucket, not cumulative; the last is +Inf.
	counts []uint64
	count  uint64
	sum    float64
}

func newLagHistogram(now func() time.Time) *lagHistogram {
	return &lagHistogram{now: now, counts: make([]uint64, len(eventLagBuckets)+1)}
}

// observe records the lag of an Event written at eventTime (Unix
// nanoseconds). An Event without eventTime (0; not written by the recorder)
// has no precise creation time and is left out. A negative lag (the
// recorder's clock ahead of this one) is observed as 0.
func (h *lagHistogram) observe(eventTime int64) {
	if eventTime == 0 {
		return
	}
	lag := max(h.now().Sub(time.Unix(0, eventTime)).Seconds(), 0)
	i := sort.SearchFloat64s(eventLagBuckets, lag) // the first bucket whose upper bound is >= lag
	h.mu.Lock()
	h.counts[i]++
	h.count++
	h.sum += lag
	h.mu.Unlock()
}

// snapshot is the histogram as the exposition needs it (cumulative).
func (h *lagHistogram) snapshot() *histogram {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := &histogram{count: h.count, sum: h.sum, buckets: make(map[float64]uint64, len(eventLagBuckets))}
	var cum uint64
	for i, le := range eventLagBuckets {
		cum += h.counts[i]
		out.buckets[le] = cum
	}
	return out
}
