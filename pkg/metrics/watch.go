package metrics

import (
	"context"
	"log/slog"
	"sync"
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

// eventWatcher turns informer notifications about recorder Events into
// counts. Informer replays (re-lists, reconnects) are harmless: counting is
// by UID in the eventcount.Counter.
type eventWatcher struct {
	counter *eventcount.Counter
	repos   *repoCap
	log     *slog.Logger

	mu              sync.Mutex
	uncountableSeen map[types.UID]struct{}
	uncountable     map[string]uint64
	lastEvent       int64
	watchStarts     map[string]uint64
	watchErrors     map[string]uint64
}

func newEventWatcher(counter *eventcount.Counter, repos *repoCap, log *slog.Logger) *eventWatcher {
	w := &eventWatcher{
		counter:         counter,
		repos:           repos,
		log:             log,
		uncountableSeen: map[types.UID]struct{}{},
		uncountable:     map[string]uint64{},
		watchStarts:     map[string]uint64{},
		watchErrors:     map[string]uint64{},
	}
	for _, r := range []string{reasonMissingRepository, reasonInvalidRepository, reasonUnknownKind, reasonMissingAction, reasonUnknownAction} {
		w.uncountable[r] = 0
	}
	for _, r := range []string{"events", "pullrequests", "branches"} {
		w.watchStarts[r] = 0
		w.watchErrors[r] = 0
	}
	return w
}

func (w *eventWatcher) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { w.observe(obj) },
		UpdateFunc: func(oldObj, newObj any) {
			// The recorder never updates an Event; an "update" is a replay
			// after a re-list, or a new Event under a recycled name.
			if o, ok := oldObj.(*cachedEvent); ok {
				if n, ok := newObj.(*cachedEvent); ok && o.UID != n.UID {
					w.forget(o)
				}
			}
			w.observe(newObj)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if ev, ok := obj.(*cachedEvent); ok {
				w.forget(ev)
			}
		},
	}
}

func (w *eventWatcher) observe(obj any) {
	ev, ok := obj.(*cachedEvent)
	if !ok {
		return
	}
	key, reason := classify(ev)
	if reason != "" {
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, seen := w.uncountableSeen[ev.UID]; !seen {
			w.uncountableSeen[ev.UID] = struct{}{}
			w.uncountable[reason]++
			w.log.Warn("recorder Event not countable", "namespace", ev.Namespace.Value(), "event", ev.Name,
				"reason", reason, "kind", ev.Kind.Value(), "action", ev.Action.Value())
		}
		return
	}
	// Only an Event about to be counted may take one of the capped
	// repository slots; replays of counted ones must not use them up.
	if !w.counter.Counted(ev.UID) {
		key.Repository = w.repos.admit(key.Repository)
	}
	w.counter.Observe(ev.UID, key)
	w.mu.Lock()
	defer w.mu.Unlock()
	if t := ev.Created; t > w.lastEvent {
		w.lastEvent = t
	}
}

func (w *eventWatcher) forget(ev *cachedEvent) {
	w.counter.Forget(ev.UID)
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.uncountableSeen, ev.UID)
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
