package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/liatrio/gitpulse/pkg/eventcount"
)

// eventWatcher is the store of the Events reflector: it keeps no Event,
// it turns what the reflector delivers into counts. A list (or the initial
// events of a watch-list) arrives as one Replace, watch events as Add,
// Update and Delete, in resourceVersion order; replays (re-lists,
// reconnects) are harmless because the eventcount.Counter counts an Event
// only above the resourceVersion frontier it has observed. A list read in
// pages (listInPages) is staged page by page instead, a few dozen bytes per
// Event, and its Replace carries no items.
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
	// list is the list being read, staged until its Replace.
	list stagedList
}

// stagedList is what a list's Events are to the counter, staged as its
// pages arrive and counted at once by its Replace, as a list always was:
// the counter moves its frontier over a whole list, never over part of one
// (a list restarted after a failed page is staged afresh, so nothing in it
// is counted twice).
type stagedList struct {
	events []stagedEvent
	// uncountable are the Events that cannot be counted, reported at the
	// Replace (rare: kept whole).
	uncountable []uncountableEvent
	live        map[string]int // liveEvents, as of this list
	maxRV       uint64
	items       int
	// uids: the counter still retains legacy UIDs, so each Event's is kept.
	uids bool
}

// stagedEvent is a countable Event of a list being read: 32 bytes, and 16
// more when the counter needs its UID. (The Events themselves, slimmed,
// were ~200 bytes each, all kept by the reflector's pager until the list
// ended: ~20 MB at 100,000.)
type stagedEvent struct {
	rv        uint64
	eventTime int64
	key       unique.Handle[eventcount.Key]
	uid       types.UID
}

type uncountableEvent struct {
	ev     *cachedEvent
	rv     uint64
	reason string
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
	// Never with w.mu held: the two locks are never nested.
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

// Replace is a complete list at resourceVersion listRV: its items (none
// when listInPages staged them page by page) and what was staged are
// counted in one step, without building a second list.
func (w *eventWatcher) Replace(items []any, listRV string) error {
	if len(items) > 0 {
		uids := w.counter.HasLegacyUIDs() // the counter's lock, never inside w.mu
		w.mu.Lock()
		if w.list.live == nil { // not read in pages
			w.beginListLocked(uids)
		}
		w.mu.Unlock()
		w.stage(items)
	}
	w.mu.Lock()
	l := w.list
	w.list = stagedList{}
	if l.live == nil {
		l.live = map[string]int{}
	}
	w.liveEvents = l.live // the list is every live Event
	for _, u := range l.uncountable {
		w.reportLocked(u.ev, u.rv, u.reason)
	}
	w.mu.Unlock()
	lrv, _ := eventcount.ParseResourceVersion(listRV) // 0 when unknown: the items' own maximum is used
	// The Event last yielded: the counter reports a counted one before the
	// iteration resumes, so its lag is observed with the right time.
	var yielded int64
	countable := func(yield func(eventcount.Event) bool) {
		for _, e := range l.events {
			yielded = e.eventTime
			if !yield(eventcount.Event{ResourceVersion: e.rv, UID: e.uid, Key: e.key.Value()}) {
				return
			}
		}
	}
	n := w.counter.ObserveListFunc(countable, lrv, func(eventcount.Event) { w.lag.observe(yielded) })
	w.mu.Lock()
	w.reported = max(w.reported, lrv, l.maxRV)
	w.mu.Unlock()
	w.log.Debug("list counted", "events", l.items, "counted", n, "resourceVersion", listRV)
	if w.afterList != nil {
		w.afterList(l.items)
	}
	w.synced.Store(true)
	return nil
}

// beginListLocked starts staging a new list, dropping what an unfinished
// one staged.
func (w *eventWatcher) beginListLocked(uids bool) {
	w.list = stagedList{live: map[string]int{}, uids: uids}
}

// stage classifies a list's items into w.list.
func (w *eventWatcher) stage(items []any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := &w.list
	for _, obj := range items {
		ev, rv, key, reason, ok := w.prepare(obj)
		if !ok {
			continue
		}
		l.items++
		l.maxRV = max(l.maxRV, rv)
		w.lastEvent = max(w.lastEvent, ev.Created)
		if reason != "" {
			l.uncountable = append(l.uncountable, uncountableEvent{ev, rv, reason})
			continue
		}
		if key.Repository != "" {
			l.live[key.Repository]++
		}
		e := stagedEvent{rv: rv, eventTime: ev.EventTime, key: unique.Make(key)}
		if l.uids {
			e.uid = ev.UID
		}
		l.events = append(l.events, e)
	}
}

// listInPages is the Events' list for their reflector: each page is staged
// for counting as it arrives (stage), and the reflector's pager is handed
// the page's metadata without its items, so that it keeps none of them
// until the list ends; the first page of a list starts a new staging. A
// page is a *corev1.EventList, or a *slimList of the records slimEvent
// makes (eventLister.listSlim).
func (w *eventWatcher) listInPages(list func(context.Context, metav1.ListOptions) (runtime.Object, error)) cache.ListWithContextFunc {
	return func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		page, err := list(ctx, o)
		if err != nil {
			return nil, err
		}
		var items []any
		var lm metav1.ListMeta
		switch p := page.(type) {
		case *corev1.EventList:
			lm = p.ListMeta
			items = make([]any, len(p.Items))
			for i := range p.Items {
				items[i] = &p.Items[i]
			}
		case *slimList:
			lm = p.ListMeta
			items = make([]any, len(p.Items))
			for i, it := range p.Items {
				items[i] = it
			}
		default:
			return nil, fmt.Errorf("listing Events: a page of %T", page)
		}
		if o.Continue == "" {
			uids := w.counter.HasLegacyUIDs() // the counter's lock, never inside w.mu
			w.mu.Lock()
			w.beginListLocked(uids)
			w.mu.Unlock()
		}
		w.stage(items)
		return &slimList{ListMeta: metav1.ListMeta{
			ResourceVersion: lm.ResourceVersion, Continue: lm.Continue, RemainingItemCount: lm.RemainingItemCount,
		}}, nil
	}
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
