package metrics

// The compact records the object caches and the Events reflector keep
// instead of full objects.

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"unique"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
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
	Created int64
	// EventTime is the Event's eventTime in Unix nanoseconds, 0 when it has
	// none. The recorder writes it with microsecond precision just before
	// it creates the Event; gitpulse_metrics_event_lag_seconds measures
	// from it (creationTimestamp has whole seconds, too coarse for a lag of
	// milliseconds).
	EventTime int64
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
	var eventTime int64
	if !ev.EventTime.IsZero() {
		eventTime = ev.EventTime.UnixNano()
	}
	return &cachedEvent{
		EventTime:       eventTime,
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

// The PullRequest, Branch and GitHubDeployment caches keep compact records
// too: gitpulse keeps every object it ever recorded, and a typed object,
// even slimmed to its spec and a trimmed ObjectMeta, held about 1.2 KB each
// (BenchmarkObjectCache_BytesPerObject). A record holds only what
// aggregateObjects and releaseIdleRepositories read, with the same interned
// strings as cachedEvent, plus what the informer needs (cachedObject).

// unixTime is a time in Unix seconds, noTime when absent. The objects'
// times are metav1.Time, which the API serializes with whole seconds, so
// nothing the histograms observe is lost.
type unixTime int64

// noTime is an absent time (a nil *metav1.Time): no time the API can
// serialize (years 0000 to 9999) is this far back, so even the Unix epoch
// stays a time.
const noTime unixTime = math.MinInt64

func timeOf(t *metav1.Time) unixTime {
	if t == nil {
		return noTime
	}
	return unixTime(t.Unix())
}

// since is to - from in seconds, or false when either is absent or to is
// before from (clock trouble or a hand-made object: left out).
func since(from, to unixTime) (float64, bool) {
	if from == noTime || to == noTime || to < from {
		return 0, false
	}
	return float64(to - from), true
}

// cachedObject is what every record keeps: its identity in its store
// (recordstore.go), and the repository the families and the
// idle-repository sweep read. Nothing reads an object's UID or
// resourceVersion here (the reflector takes the list's and the watch
// events' own), so they are not kept.
//
// It is a runtime.Object (a list page's items are) and, through
// GetObjectMeta, a meta.Accessor.
type cachedObject struct {
	// Name is the object's name as a 128-bit hash: nothing reads the name
	// itself, and at 100k objects the strings were 8 MB of the live heap.
	Name      nameHash
	Namespace unique.Handle[string]
	// Repository is repositoryOf(spec.repository, the repository
	// annotation): "" when the object has no valid one (it is left out).
	Repository unique.Handle[string]
	// RepositoryID is spec.repositoryID (0: unknown), and NamedAt when the
	// object was given Repository (status.repositoryNamedAt, 0 without
	// it): the families label every object of one id with the name of
	// the one named last (renames.go).
	RepositoryID int64
	NamedAt      unixTime
}

func newCachedObject(m *metav1.ObjectMeta, specRepository string, repositoryID int64, namedAt *metav1.Time) cachedObject {
	named := unixTime(0)
	if namedAt != nil {
		named = unixTime(namedAt.Unix())
	}
	return cachedObject{
		Name: hashName(m.Name), Namespace: intern(m.Namespace),
		Repository:   intern(repositoryOf(specRepository, m.Annotations)),
		RepositoryID: max(repositoryID, 0), NamedAt: named,
	}
}

// object is the record's common part (recordstore.go keys records by it).
func (o *cachedObject) object() *cachedObject { return o }

// GetObjectMeta returns a fresh ObjectMeta with the fields kept, for
// meta.Accessor: the namespace, and the name's hash in hexadecimal.
func (o *cachedObject) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Name: o.Name.String(), Namespace: o.Namespace.Value()}
}

// nameHash is a name hashed with two process-wide random seeds
// (hash/maphash): 128 bits, so two of a namespace's objects share one with a
// probability of about n²/2¹²⁹ (10⁻²⁹ at 100k), and no one outside the
// process can choose names that do.
type nameHash [2]uint64

var nameSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func hashName(name string) nameHash {
	return nameHash{maphash.String(nameSeeds[0], name), maphash.String(nameSeeds[1], name)}
}

func (h nameHash) String() string { return fmt.Sprintf("%016x%016x", h[0], h[1]) }

// GetObjectKind has no kind to report: the record never leaves this process.
func (o *cachedObject) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// cachedPullRequest is what the PullRequest cache keeps per object.
type cachedPullRequest struct {
	cachedObject
	// State is spec.status; Merged is spec.merged.
	State  unique.Handle[string]
	Merged bool
	// Created is the creationTimestamp (the oldest open time of a pull
	// request without openedAt); the others are the spec's times.
	Created, OpenedAt, MergedAt, FirstReviewAt, FirstApprovalAt unixTime
}

// cachedBranch is what the Branch cache keeps per object.
type cachedBranch struct {
	cachedObject
	// State is spec.state.
	State unique.Handle[string]
}

// cachedDeployment is what the GitHubDeployment cache keeps per object.
type cachedDeployment struct {
	cachedObject
	// Environment is environmentLabel(spec.environment).
	Environment                    unique.Handle[string]
	FirstSuccessAt, FirstFailureAt unixTime
	Changes                        []cachedChange
}

// cachedChange is a spec.changes entry: the pull request's number and when
// it was opened.
type cachedChange struct {
	Number   int64
	OpenedAt unixTime
}

var (
	_ runtime.Object            = (*cachedPullRequest)(nil)
	_ runtime.Object            = (*cachedBranch)(nil)
	_ runtime.Object            = (*cachedDeployment)(nil)
	_ metav1.ObjectMetaAccessor = (*cachedPullRequest)(nil)
	_ metav1.ObjectMetaAccessor = (*cachedBranch)(nil)
	_ metav1.ObjectMetaAccessor = (*cachedDeployment)(nil)
)

// DeepCopyObject copies the record (every field is a value).
func (p *cachedPullRequest) DeepCopyObject() runtime.Object {
	c := *p
	return &c
}

// DeepCopyObject copies the record (every field is a value).
func (b *cachedBranch) DeepCopyObject() runtime.Object {
	c := *b
	return &c
}

// DeepCopyObject copies the record and its changes.
func (d *cachedDeployment) DeepCopyObject() runtime.Object {
	c := *d
	c.Changes = slices.Clone(d.Changes)
	return &c
}

// compactObject turns a PullRequest, Branch or GitHubDeployment into the
// record its cache keeps. Anything else (a record already,
// cache.DeletedFinalStateUnknown) is returned as is, so applying it twice is
// harmless.
func compactObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *stablev1.PullRequest:
		s := &o.Spec
		return &cachedPullRequest{
			cachedObject: newCachedObject(&o.ObjectMeta, s.Repository, s.RepositoryID, o.Status.RepositoryNamedAt),
			State:        intern(s.Status),
			Merged:       s.Merged,
			Created:      unixTime(o.CreationTimestamp.Unix()),
			OpenedAt:     timeOf(s.OpenedAt), MergedAt: timeOf(s.MergedAt),
			FirstReviewAt: timeOf(s.FirstReviewAt), FirstApprovalAt: timeOf(s.FirstApprovalAt),
		}, nil
	case *stablev1.Branch:
		return &cachedBranch{cachedObject: newCachedObject(&o.ObjectMeta, o.Spec.Repository, o.Spec.RepositoryID, o.Status.RepositoryNamedAt), State: intern(o.Spec.State)}, nil
	case *stablev1.GitHubDeployment:
		s := &o.Spec
		d := &cachedDeployment{
			cachedObject:   newCachedObject(&o.ObjectMeta, s.Repository, s.RepositoryID, o.Status.RepositoryNamedAt),
			Environment:    intern(environmentLabel(s.Environment)),
			FirstSuccessAt: timeOf(s.FirstSuccessAt), FirstFailureAt: timeOf(s.FirstFailureAt),
		}
		if len(s.Changes) > 0 {
			d.Changes = make([]cachedChange, len(s.Changes))
			for i, c := range s.Changes {
				d.Changes[i] = cachedChange{Number: c.Number, OpenedAt: timeOf(c.OpenedAt)}
			}
		}
		return d, nil
	}
	return obj, nil
}

// slimList is one page of a list whose items were made compact records as
// the page arrived (slimPage). client-go v0.33's reflector gathers every
// page of a first list before it hands the items to the store (its pager
// appends them to one list), and the store's transform runs only then: with
// the full objects, a first list of 70,000 pull requests would hold 70,000
// decoded objects at once. With slimPage as the list function it holds one
// page of them, and the records.
//
// It is a list to apimachinery (meta.ListAccessor through ListMeta,
// meta.EachListItem and meta.ExtractList through Items).
type slimList struct {
	metav1.TypeMeta
	metav1.ListMeta
	Items []runtime.Object
}

var _ metav1.ListInterface = (*slimList)(nil)

// DeepCopyObject copies the page (the records themselves are shared: nothing
// modifies a record).
func (l *slimList) DeepCopyObject() runtime.Object {
	c := *l
	l.ListMeta.DeepCopyInto(&c.ListMeta)
	c.Items = slices.Clone(l.Items)
	return &c
}

// slimPage wraps a list function so that each page it returns holds what
// transform makes of its items instead of the items.
func slimPage[L runtime.Object](list func(context.Context, metav1.ListOptions) (L, error), transform cache.TransformFunc) cache.ListWithContextFunc {
	return func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		page, err := list(ctx, o)
		if err != nil {
			return nil, err
		}
		return slimmed(page, transform)
	}
}

// slimmed is page with its items transformed.
func slimmed(page runtime.Object, transform cache.TransformFunc) (*slimList, error) {
	m, err := meta.ListAccessor(page)
	if err != nil {
		return nil, err
	}
	out := &slimList{ListMeta: metav1.ListMeta{
		ResourceVersion: m.GetResourceVersion(), Continue: m.GetContinue(), RemainingItemCount: m.GetRemainingItemCount(),
	}}
	err = meta.EachListItem(page, func(item runtime.Object) error {
		slim, err := transform(item)
		if err != nil {
			return err
		}
		obj, ok := slim.(runtime.Object)
		if !ok {
			return fmt.Errorf("transform of %T returned %T, not an object", item, slim)
		}
		out.Items = append(out.Items, obj)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
