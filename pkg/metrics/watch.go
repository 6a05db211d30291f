package metrics

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/eventcount"
)

// Reasons an Event of the recorder is not countable (label values of
// gitpulse_metrics_events_uncountable_total).
const (
	reasonMissingRepository = "missing_repository"
	reasonInvalidRepository = "invalid_repository"
	reasonUnknownKind       = "unknown_kind"
	reasonMissingAction     = "missing_action"
	reasonUnknownAction     = "unknown_action"
	// reasonInvalidResourceVersion: the resourceVersion is not an integer,
	// so the Event cannot be placed against the checkpoint's watermark.
	reasonInvalidResourceVersion = "invalid_resource_version"
)

// otherAction is the action label of pull request actions GitHub may add
// later: counted (the total stays exact) without unbounded label values.
const otherAction = "other"

// pullRequestActions are GitHub's pull_request webhook actions, plus the
// recorder's "merged" for a closed and merged pull request.
var pullRequestActions = map[string]bool{
	"assigned": true, "auto_merge_disabled": true, "auto_merge_enabled": true, "closed": true,
	"converted_to_draft": true, "demilestoned": true, "dequeued": true, "edited": true, "enqueued": true,
	"labeled": true, "locked": true, stablev1.ActionMerged: true, "milestoned": true, "opened": true,
	"ready_for_review": true, "reopened": true, "review_request_removed": true, "review_requested": true,
	"synchronize": true, "unassigned": true, "unlabeled": true, "unlocked": true,
}

var branchActions = map[string]bool{
	stablev1.ActionCreated: true, stablev1.ActionPushed: true, stablev1.ActionDeleted: true,
}

// eventWatcher is the store of the Events reflector: it keeps no Event,
// it turns what the reflector delivers into counts. A list (or the initial
// events of a watch-list) arrives as one Replace, watch events as Add,
// Update and Delete, in resourceVersion order; replays (re-lists,
// reconnects) are harmless because the eventcount.Counter counts an Event
// only above the resourceVersion frontier it has observed.
type eventWatcher struct {
	counter *eventcount.Counter
	log     *slog.Logger
	synced  atomic.Bool
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
	watchStarts   map[string]uint64
	watchErrors   map[string]uint64
	// liveEvents is, per repository, how many of its Events are alive
	// (listed or added, not yet deleted): what the idle-slot sweep needs to
	// know of them, in one entry per repository instead of a cache.
	liveEvents map[string]int
}

var _ cache.TransformingStore = (*eventWatcher)(nil)

func newEventWatcher(counter *eventcount.Counter, log *slog.Logger) *eventWatcher {
	w := &eventWatcher{
		counter:       counter,
		log:           log,
		invalidRVSeen: map[string]struct{}{},
		uncountable:   map[string]uint64{},
		watchStarts:   map[string]uint64{},
		watchErrors:   map[string]uint64{},
		liveEvents:    map[string]int{},
	}
	for _, r := range []string{reasonMissingRepository, reasonInvalidRepository, reasonUnknownKind, reasonMissingAction, reasonUnknownAction, reasonInvalidResourceVersion} {
		w.uncountable[r] = 0
	}
	for _, r := range []string{"events", "pullrequests", "branches"} {
		w.watchStarts[r] = 0
		w.watchErrors[r] = 0
	}
	return w
}

// Transformer makes the reflector keep cachedEvents, not Events, in the
// temporary store it fills from a watch-list's initial events; their UIDs
// only while the counter needs them (UIDs retained from a version 1-2
// checkpoint).
func (w *eventWatcher) Transformer() cache.TransformFunc {
	return func(obj any) (any, error) {
		out, err := slimEvent(obj)
		if ev, ok := out.(*cachedEvent); ok && ev.UID != "" && !w.counter.HasLegacyUIDs() {
			ev.UID = ""
		}
		return out, err
	}
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
	if countable {
		w.counter.Observe(eventcount.Event{ResourceVersion: rv, UID: ev.UID, Key: key})
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
			if report && !yield(eventcount.Event{ResourceVersion: rv, UID: ev.UID, Key: key}) {
				return
			}
		}
	}
	n := w.counter.ObserveList(countable, lrv)
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

// watchStarted counts a watch call; every one after the first is a
// restart (a server-side timeout, a broken connection, an API server
// restart, or a re-list after 410 Gone).
func (w *eventWatcher) watchStarted(resource string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.watchStarts[resource]++
}

// watchFailed counts a list-and-watch that ended in an error (the reflector
// then re-lists, with backoff).
func (w *eventWatcher) watchFailed(ctx context.Context, resource string, r *cache.Reflector, err error) {
	w.mu.Lock()
	w.watchErrors[resource]++
	w.mu.Unlock()
	w.log.Info("watch failed, re-listing", "resource", resource, "error", err)
	cache.DefaultWatchErrorHandler(ctx, r, err)
}

func (w *eventWatcher) snapshot(v *view) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v.uncountable = make(map[string]uint64, len(w.uncountable))
	for k, n := range w.uncountable {
		v.uncountable[k] = n
	}
	v.watchRestarts = make(map[string]uint64, len(w.watchStarts))
	for k, n := range w.watchStarts {
		v.watchRestarts[k] = max(n, 1) - 1
	}
	v.watchErrors = make(map[string]uint64, len(w.watchErrors))
	for k, n := range w.watchErrors {
		v.watchErrors[k] = n
	}
	v.lastEvent = float64(w.lastEvent)
}

// classify returns the counter key of a recorder Event (with the raw
// repository), or why it cannot be counted.
func classify(ev *cachedEvent) (eventcount.Key, string) {
	repo := ev.Repository.Value()
	if repo == "" {
		return eventcount.Key{}, reasonMissingRepository
	}
	if !validRepository(repo) {
		return eventcount.Key{}, reasonInvalidRepository
	}
	kind := ev.Kind.Value()
	key := eventcount.Key{Kind: kind, Namespace: ev.Namespace.Value(), Repository: repo, Action: ev.Action.Value()}
	switch kind {
	case kindPullRequest:
		if key.Action == "" {
			return eventcount.Key{}, reasonMissingAction
		}
		if !pullRequestActions[key.Action] {
			key.Action = otherAction
		}
	case kindBranch:
		if key.Action == "" {
			return eventcount.Key{}, reasonMissingAction
		}
		if !branchActions[key.Action] {
			return eventcount.Key{}, reasonUnknownAction
		}
	default:
		return eventcount.Key{}, reasonUnknownKind
	}
	return key, ""
}

// validRepository accepts what the recorder accepts (stablev1's one check):
// GitHub's owner/name, so no label value carries whitespace or a control
// character.
func validRepository(repo string) bool { return stablev1.ValidateRepository(repo) == nil }

// cachedEvent is what the Events informer caches per recorder Event: only
// what counting reads, in about 100 bytes plus the name, UID and
// resourceVersion strings (a *corev1.Event, even emptied, is a struct of
// about 600 bytes, and an annotations map for the repository costs a few
// hundred more). The few distinct values (namespace, kind, action,
// repository) are interned with package unique: each field is one pointer,
// the strings are shared by every Event that carries them, and the runtime
// drops a value once no Event refers to it (so an unbounded stream of
// repositories cannot grow a table forever).
//
// It is a runtime.Object and, through GetObjectMeta, a meta.Accessor, which is
// all the informer's store, key function and update handling need. Nothing
// reads the cached objects except the handlers in this file.
type cachedEvent struct {
	Name string
	UID  types.UID
	// ResourceVersion is kept for the informer: it delivers an update whose
	// resourceVersion did not change as a resync, which handlers without a
	// resync period never see; a new Event under a recycled name must
	// reach UpdateFunc.
	ResourceVersion string
	// Created is the Event's creationTimestamp in Unix seconds
	// (gitpulse_metrics_last_event_timestamp_seconds).
	Created   int64
	Namespace unique.Handle[string]
	// Kind is the involved object's kind.
	Kind unique.Handle[string]
	// Action is the Event's action.
	Action unique.Handle[string]
	// Repository is the Event's stablev1.AnnotationRepository annotation,
	// "" when it has none: a plain field instead of an annotations map.
	Repository unique.Handle[string]
}

var (
	_ runtime.Object            = (*cachedEvent)(nil)
	_ metav1.ObjectMetaAccessor = (*cachedEvent)(nil)
)

// GetObjectMeta returns a fresh ObjectMeta with the fields kept, for
// meta.Accessor (the store's key function, the informer's resourceVersion
// comparison).
func (e *cachedEvent) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{
		Name: e.Name, Namespace: e.Namespace.Value(), UID: e.UID, ResourceVersion: e.ResourceVersion,
		CreationTimestamp: metav1.Unix(e.Created, 0),
	}
}

// GetObjectKind has no kind to report: the object never leaves this process.
func (e *cachedEvent) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject copies the event (every field is a value).
func (e *cachedEvent) DeepCopyObject() runtime.Object {
	c := *e
	return &c
}

// intern returns s's canonical handle (see cachedEvent).
func intern(s string) unique.Handle[string] { return unique.Make(s) }

// slimEvent turns a *corev1.Event into the cachedEvent the informer keeps,
// so the cache stays small however large the recorder's Events are
// (messages, related objects, managed fields, other annotations). Anything
// else (a cachedEvent already, cache.DeletedFinalStateUnknown) is returned
// as is, so applying it twice is harmless.
func slimEvent(obj any) (any, error) {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return obj, nil
	}
	return &cachedEvent{
		Name:            ev.Name,
		UID:             ev.UID,
		ResourceVersion: ev.ResourceVersion,
		Created:         ev.CreationTimestamp.Unix(),
		Namespace:       intern(ev.Namespace),
		Kind:            intern(ev.InvolvedObject.Kind),
		Action:          intern(ev.Action),
		Repository:      intern(ev.Annotations[stablev1.AnnotationRepository]),
	}, nil
}

// slimObject drops managed fields, status and annotations other than the
// repository from PullRequests and Branches: the gauges read only the spec.
func slimObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *stablev1.PullRequest:
		out := &stablev1.PullRequest{ObjectMeta: slimMeta(o.ObjectMeta), Spec: o.Spec}
		out.Spec.Title, out.Spec.URL, out.Spec.HeadSHA = "", "", ""
		return out, nil
	case *stablev1.Branch:
		return &stablev1.Branch{ObjectMeta: slimMeta(o.ObjectMeta), Spec: o.Spec}, nil
	}
	return obj, nil
}

func slimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID,
		ResourceVersion: m.ResourceVersion, CreationTimestamp: m.CreationTimestamp,
	}
	if repo, ok := m.Annotations[stablev1.AnnotationRepository]; ok {
		out.Annotations = map[string]string{stablev1.AnnotationRepository: repo}
	}
	return out
}
