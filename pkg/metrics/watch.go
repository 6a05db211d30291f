package metrics

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
			if o, ok := oldObj.(*corev1.Event); ok {
				if n, ok := newObj.(*corev1.Event); ok && o.UID != n.UID {
					w.forget(o)
				}
			}
			w.observe(newObj)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if ev, ok := obj.(*corev1.Event); ok {
				w.forget(ev)
			}
		},
	}
}

func (w *eventWatcher) observe(obj any) {
	ev, ok := obj.(*corev1.Event)
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
			w.log.Warn("recorder Event not countable", "namespace", ev.Namespace, "event", ev.Name,
				"reason", reason, "kind", ev.InvolvedObject.Kind, "action", ev.Action)
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
	if t := ev.CreationTimestamp.Unix(); t > w.lastEvent {
		w.lastEvent = t
	}
}

func (w *eventWatcher) forget(ev *corev1.Event) {
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
func classify(ev *corev1.Event) (eventcount.Key, string) {
	repo := ev.Annotations[stablev1.AnnotationRepository]
	if repo == "" {
		return eventcount.Key{}, reasonMissingRepository
	}
	if !validRepository(repo) {
		return eventcount.Key{}, reasonInvalidRepository
	}
	key := eventcount.Key{Kind: ev.InvolvedObject.Kind, Namespace: ev.Namespace, Repository: repo, Action: ev.Action}
	switch ev.InvolvedObject.Kind {
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

// validRepository accepts GitHub's owner/name: one slash, both parts
// non-empty, no whitespace, bounded length.
func validRepository(repo string) bool {
	owner, name, ok := strings.Cut(repo, "/")
	return ok && owner != "" && name != "" && len(repo) <= 140 &&
		!strings.Contains(name, "/") && !strings.ContainsFunc(repo, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// slimEvent keeps only what counting needs, so the informer's cache stays
// small however large the recorder's Events are (messages, related objects,
// managed fields).
func slimEvent(obj any) (any, error) {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return obj, nil // e.g. cache.DeletedFinalStateUnknown
	}
	out := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:              ev.Name,
			Namespace:         ev.Namespace,
			UID:               ev.UID,
			ResourceVersion:   ev.ResourceVersion,
			CreationTimestamp: ev.CreationTimestamp,
		},
		InvolvedObject: corev1.ObjectReference{Kind: ev.InvolvedObject.Kind},
		Action:         ev.Action,
	}
	if repo, ok := ev.Annotations[stablev1.AnnotationRepository]; ok {
		out.Annotations = map[string]string{stablev1.AnnotationRepository: repo}
	}
	return out, nil
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
