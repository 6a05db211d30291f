package metrics

// The slim types the caches and the Events reflector keep instead of full objects.

import (
	"unique"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

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
	// Environment is a deployment Event's stablev1.AnnotationEnvironment.
	Environment unique.Handle[string]
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
		Environment:     intern(ev.Annotations[stablev1.AnnotationEnvironment]),
	}, nil
}

// slimObject drops managed fields, status and annotations other than the
// repository from PullRequests, Branches and GitHubDeployments: the gauges
// and histograms read only the spec.
func slimObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *stablev1.PullRequest:
		out := &stablev1.PullRequest{ObjectMeta: slimMeta(o.ObjectMeta), Spec: o.Spec}
		out.Spec.Title, out.Spec.URL, out.Spec.HeadSHA = "", "", ""
		return out, nil
	case *stablev1.Branch:
		return &stablev1.Branch{ObjectMeta: slimMeta(o.ObjectMeta), Spec: o.Spec}, nil
	case *stablev1.GitHubDeployment:
		out := &stablev1.GitHubDeployment{ObjectMeta: slimMeta(o.ObjectMeta), Spec: o.Spec}
		out.Spec.SHA, out.Spec.Ref, out.Spec.Task, out.Spec.Creator = "", "", "", ""
		return out, nil
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
