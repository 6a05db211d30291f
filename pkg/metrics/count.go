package metrics

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/tools/cache"

	"github.com/liatrio/gitpulse/pkg/eventcount"
)

// eventWatcher is the store of the Events reflector: it keeps no Event,
// it turns what the reflector delivers into counts. A list (or the initial
// events of a watch-list) arrives as one Replace, watch events as Add,
// Update and Delete, in resourceVersion order; replays (re-lists,
// reconnects) are harmless because the eventcount.Counter counts an Event
// only above the resourceVersion frontier it has observed.
type eventWatcher struct {
	counter *eventcount.Counter
	log     *slog.Logger
	// lag observes each Event when (and only when) the counter counts it.
	lag    *lagHistogram
	synced atomic.Bool
	// afterList, when set, is called after each list is counted, with its
	// size (the function returns the memory a large list needed).
	afterList func(items int)

	mu sync.Mutex
	// reported is this process's own frontier for uncountable Events: each
	// is reported once per process (a counter that starts at zero).
	reported      uint64
	invalidRVSeen map[string]struct{} // namespace/name
	uncountable   map[string]uint64
	lastEvent     int64
	// liveEvents is, per repository, how many of its Events are alive
	// (listed or added, not yet deleted): what the idle-slot sweep needs to
	// know of them, in one entry per repository instead of a cache.
	liveEvents map[string]int
}

func newEventWatcher(counter *eventcount.Counter, lag *lagHistogram, log *slog.Logger) *eventWatcher {
	w := &eventWatcher{
		counter:       counter,
		lag:           lag,
		log:           log,
		invalidRVSeen: map[string]struct{}{},
		uncountable:   map[string]uint64{},
		liveEvents:    map[string]int{},
	}
	for _, r := range []string{reasonMissingRepository, reasonInvalidRepository, reasonUnknownKind, reasonMissingAction, reasonUnknownAction, reasonInvalidResourceVersion, reasonMissingEnvironment} {
		w.uncountable[r] = 0
	}
	return w
}

// HasSynced is true once a first list has been counted.
func (w *eventWatcher) HasSynced() bool { return w.synced.Load() }

// Add is a watch's ADDED event.
func (w *eventWatcher) Add(obj any) error {
	ev, rv, key, reason, ok := w.prepare(obj)
	if !ok {
		return nil
	}
	w.mu.Lock()
	w.lastEvent = max(w.lastEvent, ev.Created)
	w.seenLocked(ev, key, reason)
	countable := w.reportLocked(ev, rv, reason)
	w.reported = max(w.reported, rv)
	w.mu.Unlock()
	// Never with w.mu held: Replace takes w.mu inside the counter's lock.
	if countable && w.counter.Observe(eventcount.Event{ResourceVersion: rv, UID: ev.UID, Key: key}) {
		w.lag.observe(ev.EventTime)
	}
	return nil
}

// Update is a watch's MODIFIED event: the recorder never modifies an
// Event, so it counts nothing, but the watch has moved on.
func (w *eventWatcher) Update(obj any) error { return w.advance(obj) }

// Delete is a watch's DELETED event (an Event expired).
func (w *eventWatcher) Delete(obj any) error {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if _, _, key, reason, ok := w.prepare(obj); ok && reason == "" && key.Repository != "" {
		w.mu.Lock()
		if w.liveEvents[key.Repository]--; w.liveEvents[key.Repository] <= 0 {
			delete(w.liveEvents, key.Repository)
		}
		w.mu.Unlock()
	}
	return w.advance(obj)
}

func (w *eventWatcher) advance(obj any) error {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	ev, err := slimEvent(obj)
	if c, ok := ev.(*cachedEvent); ok && err == nil {
		if rv, ok := eventcount.ParseResourceVersion(c.ResourceVersion); ok {
			w.counter.Advance(rv)
			w.mu.Lock()
			w.reported = max(w.reported, rv)
			w.mu.Unlock()
		}
	}
	return nil
}

// Replace is a complete list at resourceVersion listRV: counted in one step,
// without building a second list.
func (w *eventWatcher) Replace(items []any, listRV string) error {
	lrv, _ := eventcount.ParseResourceVersion(listRV) // 0 when unknown: the items' own maximum is used
	maxRV := lrv
	w.mu.Lock()
	clear(w.liveEvents) // the list is every live Event
	w.mu.Unlock()
	// The Event last yielded: the counter reports a counted one before the
	// iteration resumes, so its lag is observed with the right time.
	var yielded int64
	countable := func(yield func(eventcount.Event) bool) {
		for _, obj := range items {
			ev, rv, key, reason, ok := w.prepare(obj)
			if !ok {
				continue
			}
			maxRV = max(maxRV, rv)
			w.mu.Lock()
			w.lastEvent = max(w.lastEvent, ev.Created)
			w.seenLocked(ev, key, reason)
			report := w.reportLocked(ev, rv, reason)
			w.mu.Unlock()
			yielded = ev.EventTime
			if report && !yield(eventcount.Event{ResourceVersion: rv, UID: ev.UID, Key: key}) {
				return
			}
		}
	}
	n := w.counter.ObserveListFunc(countable, lrv, func(eventcount.Event) { w.lag.observe(yielded) })
	w.mu.Lock()
	w.reported = max(w.reported, maxRV)
	w.mu.Unlock()
	w.log.Debug("list counted", "events", len(items), "counted", n, "resourceVersion", listRV)
	if w.afterList != nil {
		w.afterList(len(items))
	}
	w.synced.Store(true)
	return nil
}

func (w *eventWatcher) seenLocked(ev *cachedEvent, key eventcount.Key, reason string) {
	if reason == "" && key.Repository != "" {
		w.liveEvents[key.Repository]++
	}
}

// repositoriesWithLiveEvents lists the repositories that have an Event
// alive.
func (w *eventWatcher) repositoriesWithLiveEvents() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.liveEvents))
	for repo := range w.liveEvents {
		out = append(out, repo)
	}
	return out
}

// Resync has nothing to do (no resync period).
func (w *eventWatcher) Resync() error { return nil }

// prepare slims obj and classifies it: the key of a countable Event, or why
// it is not countable; ok is false for objects that are not Events.
func (w *eventWatcher) prepare(obj any) (ev *cachedEvent, rv uint64, key eventcount.Key, reason string, ok bool) {
	o, err := slimEvent(obj)
	if ev, ok = o.(*cachedEvent); !ok || err != nil {
		return nil, 0, key, "", false
	}
	key, reason = classify(ev)
	rv, valid := eventcount.ParseResourceVersion(ev.ResourceVersion)
	if reason == "" && !valid {
		reason = reasonInvalidResourceVersion
	}
	return ev, rv, key, reason, true
}

// reportLocked reports ev if it cannot be counted, once per process, and
// says whether it can.
func (w *eventWatcher) reportLocked(ev *cachedEvent, rv uint64, reason string) bool {
	if reason == "" {
		return true
	}
	if reason == reasonInvalidResourceVersion {
		// No order to go by: remember the UID (never seen from a real
		// API server, whose resourceVersions are integers).
		id := ev.Namespace.Value() + "/" + ev.Name
		if _, seen := w.invalidRVSeen[id]; seen {
			return false
		}
		w.invalidRVSeen[id] = struct{}{}
	} else if rv <= w.reported {
		return false
	}
	w.uncountable[reason]++
	w.log.Warn("recorder Event not countable", "namespace", ev.Namespace.Value(), "event", ev.Name,
		"reason", reason, "kind", ev.Kind.Value(), "action", ev.Action.Value(), "resourceVersion", ev.ResourceVersion)
	return false
}

func (w *eventWatcher) snapshot(v *view) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v.uncountable = make(map[string]uint64, len(w.uncountable))
	for k, n := range w.uncountable {
		v.uncountable[k] = n
	}
	v.lastEvent = float64(w.lastEvent)
}
