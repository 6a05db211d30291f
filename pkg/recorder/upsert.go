package recorder

// The write engine: how one change is written into one object, whatever its
// kind. It knows a kind only by its objectKind (name, client, identity, the
// parts of an object) and a change only by its write (the object's names,
// the delivery, what applying it does); the rules of each kind are in its
// own file (pullrequest.go, branch.go, review.go, deployment.go).

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// objectKind is what the engine knows of one kind of object. It is the same
// for every change; what a change does to the object is its write.
type objectKind[T any] struct {
	// name is the Kind: the key in recentObjects, and the Event's
	// involvedObject.kind.
	name string
	// client is the kind's typed client in the recorder's namespace.
	client func(r *Recorder) objectClient[T]
	// identity says which pull request, branch or deployment an object
	// is about, from its spec.
	identity func(T) identity
	// keyField is the selectable field holding identity.key.
	keyField string
	// list lists the kind's objects in the recorder's namespace.
	list func(ctx context.Context, r *Recorder, opts metav1.ListOptions) ([]T, error)
	// rename writes repository (and, when not 0, its id) into the
	// object's spec.
	rename func(obj T, repository string, repositoryID int64)
	// spec is the object's spec, to compare two versions.
	spec func(T) any
	// status points into the object's status.
	status func(T) recordedStatus
}

// recordedStatus points at what every kind's status says: the recorder's
// bookkeeping (which delivery moved the object last, what it did being on
// that delivery's Event; which it applied recently; when the repository
// got its name); whole is the status, to compare two versions.
type recordedStatus struct {
	whole       any
	bookkeeping *stablev1.Bookkeeping
}

// bookkeeping is obj's status's stablev1.Bookkeeping, to change in place.
func (k objectKind[T]) bookkeeping(obj T) *stablev1.Bookkeeping { return k.status(obj).bookkeeping }

// meta is obj's ObjectMeta, to change in place.
func (k objectKind[T]) meta(obj T) *metav1.ObjectMeta {
	return any(obj).(metav1.ObjectMetaAccessor).GetObjectMeta().(*metav1.ObjectMeta)
}

// reference is obj as an Event's involvedObject.
func (k objectKind[T]) reference(obj T) corev1.ObjectReference {
	m := k.meta(obj)
	return corev1.ObjectReference{
		APIVersion: stablev1.SchemeGroupVersion.String(),
		Kind:       k.name,
		Name:       m.Name,
		Namespace:  m.Namespace,
		UID:        m.UID,
	}
}

// identity is which pull request, branch or deployment an object or a
// change is about: its repository (GitHub's id when known, which renames
// and transfers keep, and its current full name) and its key within it (the
// number, the branch name, the deployment id, as their selectable fields
// render them).
type identity struct {
	repository   string
	repositoryID int64
	key          string
}

// same reports whether a and b are one identity: by the repository id when
// both know it, else by the repository's name (a hand-made delivery, or an
// object recorded from one, which then learns its id).
func (a identity) same(b identity) bool {
	if a.key != b.key {
		return false
	}
	if a.repositoryID > 0 && b.repositoryID > 0 {
		return a.repositoryID == b.repositoryID
	}
	return a.repository == b.repository
}

// String renders an identity for logs (%q keeps odd bytes visible).
func (a identity) String() string {
	return fmt.Sprintf("%q (id %d) %q", a.repository, a.repositoryID, a.key)
}

// A write is what one change does to its object, as upsert takes it.
type write[T any] struct {
	names objectNames
	// namedAt is when the change's repository had the change's name
	// (githubevent.Change.NamedAt, else its OccurredAt): a change older
	// than the name an object has never names it back.
	namedAt time.Time
	// delivery is the change's delivery id (a reconcile pass's synthetic
	// one), remembered on the object.
	delivery string
	// digest is the payload's (PayloadDigest); "" skips the replay check.
	digest string
	// apply moves an object to the change; reports whether its state
	// moved.
	apply func(T) bool
	// sameState reports whether two versions say the same about the
	// object, counts (pushCount, reviewCount, ...) aside: a payload seen
	// before that changes nothing else is a replay. nil: the same spec.
	sameState func(a, b T) bool
	// isNew: the change says its object is new on GitHub (no object
	// expected yet: create first).
	isNew bool
}

// objectNames are where a change's object is: under name, the name its
// identity gives, unless it was created before its repository was renamed
// (then only a lookup by identity finds it).
type objectNames struct {
	name string
	// identity is the change's.
	identity identity
}

// upsertResult is what writing a change did.
type upsertResult struct {
	// object is the object written (or found), for the Event; zero when
	// nothing was written.
	object corev1.ObjectReference
	// applied: this call moved the object's state.
	applied bool
	// already: the delivery had been applied by an earlier attempt, at
	// appliedAt (zero when a legacy entry does not say).
	already   bool
	appliedAt time.Time
	// replayed: the payload is a recent one's under another delivery id;
	// nothing was written.
	replayed bool
	// renamedFrom, when not "", is the repository name the object had
	// before this write gave it the change's (a rename or transfer).
	renamedFrom string
}

// objectClient is the part of a generated typed client the recorder uses;
// PullRequestInterface, BranchInterface and GitHubDeploymentInterface
// satisfy it as they are.
type objectClient[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
	UpdateStatus(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// recordedObject is a *PullRequest, a *Branch or a *GitHubDeployment: its
// generated DeepCopy and its ObjectMeta.
type recordedObject[E any] interface {
	*E
	DeepCopy() *E
	metav1.ObjectMetaAccessor
}

// dropManagedFields asks the API server to keep no managed fields on the
// object this update writes. The recorder is the objects' one writer and
// never uses server-side apply, so the field ownership the API server
// records on every write says only "the recorder owns everything" — yet it
// was a third of a PullRequest's bytes and half its fields, paid again by
// every list, watch and etcd read, and each update paid the API server's
// structured-merge diff to keep it. One empty entry is the documented way
// to clear them ("Clearing managedFields", Server-Side Apply); an object
// left without them is not tracked again on later updates
// (k8s.io/apimachinery managedfields/internal skipnonapplied.go), and a
// server-side apply by someone else starts tracking afresh. A create
// cannot clear them: the API server always tracks a create.
func dropManagedFields(m *metav1.ObjectMeta) {
	m.ManagedFields = []metav1.ManagedFieldsEntry{{}}
}

// metaOf is obj's ObjectMeta, to change in place.
func metaOf(obj metav1.ObjectMetaAccessor) *metav1.ObjectMeta {
	return obj.GetObjectMeta().(*metav1.ObjectMeta)
}

// ErrIdentityMismatch: the object under the name derived from a delivery's
// identity is about another pull request, branch or deployment. Names hash
// an unambiguous identity, so this is a bug (or a hand-made object), never
// bad input: the delivery answers 500 and nothing is written.
var ErrIdentityMismatch = errors.New("object belongs to another identity")

// locate finds the change's object: under its name (read is a cache's or
// the API server's Get), else by its identity (find), which finds an object
// created before its repository was renamed, or one recorded from a
// delivery without the repository id. A nil object means none exists yet;
// it is then to be created under names.name.
func locate[T comparable](names objectNames, read func(string) (T, error), find func() (T, error)) (string, T, error) {
	var none T
	cur, err := read(names.name)
	switch {
	case err == nil:
		return names.name, cur, nil
	case !apierrors.IsNotFound(err):
		return names.name, none, err
	}
	if cur, err = find(); err != nil || cur == none {
		return names.name, none, err
	}
	return metaOf(any(cur).(metav1.ObjectMetaAccessor)).Name, cur, nil
}

// find lists the kind's objects of id by their selectable fields: by the
// repository id and key when the id is known, then by the repository's name
// and key (an object recorded without the id, or by a change without one).
// Of several (a hand-made object beside a recorded one), the oldest wins.
func (k objectKind[T]) find(ctx context.Context, r *Recorder, id identity) (T, error) {
	var none T
	var selectors []fields.Selector
	if id.repositoryID > 0 {
		selectors = append(selectors, fields.AndSelectors(
			repositoryIDSelector(id.repositoryID), fields.OneTermEqualSelector(k.keyField, id.key)))
	}
	selectors = append(selectors, fields.AndSelectors(
		repositorySelector(id.repository), fields.OneTermEqualSelector(k.keyField, id.key)))
	for _, sel := range selectors {
		// From the API server's watch cache as it is (resourceVersion 0):
		// a consistent list waits for the cache to catch up with etcd,
		// tens of milliseconds a lookup, which a first backfill pays for
		// every new object. What this finds was named before a rename or
		// recorded without the id, not a moment ago; the name's own GET
		// (locate) was a consistent read.
		items, err := k.list(ctx, r, metav1.ListOptions{FieldSelector: sel.String(), ResourceVersion: "0"})
		if err != nil {
			return none, fmt.Errorf("looking up %s %s: %w", k.name, id, err)
		}
		var found T
		ok := false
		for _, o := range items {
			if !k.identity(o).same(id) {
				continue
			}
			if !ok || k.meta(o).CreationTimestamp.Before(&k.meta(found).CreationTimestamp) ||
				(k.meta(o).CreationTimestamp.Equal(&k.meta(found).CreationTimestamp) && k.meta(o).Name < k.meta(found).Name) {
				found, ok = o, true
			}
		}
		if ok {
			return found, nil
		}
	}
	return none, nil
}

// follow names obj, which w's change was just applied to (apply writes the
// change's repository name), after the change's repository: its id when
// the change knows it and, when the name differs from cur's, the new name
// with the time it was given (status.repositoryNamedAt) — unless the
// change is older than cur's name, which then stays. It returns the name
// cur had when obj takes another.
func (k objectKind[T]) follow(cur, obj T, w write[T]) string {
	was, id := k.identity(cur), w.names.identity
	if id.repositoryID > 0 && k.identity(obj).repositoryID != id.repositoryID {
		k.rename(obj, k.identity(obj).repository, id.repositoryID)
	}
	if was.repository == k.identity(obj).repository {
		return ""
	}
	if at := k.bookkeeping(cur).RepositoryNamedAt; at != nil && w.namedAt.Before(at.Time) {
		k.rename(obj, was.repository, 0)
		return ""
	}
	k.nameAt(obj, w.namedAt)
	return was.repository
}

// nameAt records when obj's repository had the name it has now.
func (k objectKind[T]) nameAt(obj T, at time.Time) {
	if !at.IsZero() {
		k.bookkeeping(obj).RepositoryNamedAt = timeOrNil(at)
	}
}

// upsert writes the change into its object (steps 1 and 2 of record).
//
// Where it starts: the object as this replica last wrote it, if it
// remembers it (by the name the change's identity gives, whatever the
// object's own name is); else, when the change is about something new on
// GitHub (a pull request opened, a branch created) and this replica has
// not seen the repository renamed, no object at all (create first;
// AlreadyExists means one exists after all); else the object located on
// the API server (locate). Whatever it started from, a conflict or
// AlreadyExists sends it to the API server.
func upsert[E any, T recordedObject[E]](ctx context.Context, r *Recorder, k objectKind[T], w write[T]) (T, upsertResult, error) {
	var (
		out  T
		res  upsertResult
		name string
		cur  T
		err  error
	)
	c := k.client(r)
	names := w.names
	key := names.name // the recentObjects key: the name the identity gives
	sameState := w.sameState
	if sameState == nil {
		sameState = func(a, b T) bool { return equality.Semantic.DeepEqual(k.spec(a), k.spec(b)) }
	}
	live := func(name string) (T, error) { return c.Get(ctx, name, metav1.GetOptions{}) }
	find := func() (T, error) { return k.find(ctx, r, names.identity) }
	fromCache := true
	if o, ok := r.objects.get(k.name, key); ok {
		cur = o.(T)
		name = metaOf(cur).Name
	} else if w.isNew && !r.renamed.has(names.identity.repositoryID) {
		name = names.name
	} else {
		fromCache = false
		name, cur, err = locate(names, live, find)
	}
	backoff := r.opts.Backoff
	now := r.opts.Now()
	for {
		if err != nil {
			return out, res, fmt.Errorf("reading %s/%s: %w", r.opts.Namespace, name, err)
		}
		res = upsertResult{}
		var werr error
		switch {
		case cur == nil:
			obj := T(new(E))
			m := metaOf(obj)
			m.Name, m.Namespace = name, r.opts.Namespace
			res.applied = w.apply(obj)
			if id := names.identity.repositoryID; id > 0 {
				k.rename(obj, k.identity(obj).repository, id)
			}
			k.nameAt(obj, w.namedAt)
			remember(k.bookkeeping(obj), w.delivery, w.digest, now, r.opts.DeliveryWindow, r.opts.RecentDeliveries)
			out, werr = c.Create(ctx, obj, metav1.CreateOptions{})
		case !k.identity(cur).same(names.identity) && !fromCache:
			r.log.Error("BUG: the object named after this delivery's identity is about another one; nothing written",
				"delivery", w.delivery, "object", r.opts.Namespace+"/"+name,
				"objectIdentity", k.identity(cur).String(), "deliveryIdentity", names.identity.String())
			return out, res, fmt.Errorf("%w: %s/%s is %s, the delivery is about %s",
				ErrIdentityMismatch, r.opts.Namespace, name, k.identity(cur), names.identity)
		case !k.identity(cur).same(names.identity):
			werr = apierrors.NewConflict(schema.GroupResource{}, name, errors.New("cached object has another identity"))
		default:
			if at, ok := appliedAt(k.bookkeeping(cur), w.delivery); ok {
				res.already, res.appliedAt, out = true, at, cur
				r.objects.add(k.name, key, out)
				res.object = k.reference(out)
				return out, res, nil
			}
			obj := T(cur.DeepCopy())
			res.applied = w.apply(obj)
			res.renamedFrom = k.follow(cur, obj, w)
			// A replay is an identical payload that would change nothing but
			// counts. The same bytes can legitimately come again when the
			// state moved in between (a branch created, deleted and created
			// again within one second of pushed_at): that one is applied.
			if replayed(k.bookkeeping(cur), w.digest) && sameState(cur, obj) {
				if fromCache { // decide on the live object, not the cache's
					werr = apierrors.NewConflict(schema.GroupResource{}, name, errors.New("replay seen in the cache"))
					break
				}
				res.replayed, out = true, cur
				res.object = k.reference(out)
				return out, res, nil
			}
			remember(k.bookkeeping(obj), w.delivery, w.digest, now, r.opts.DeliveryWindow, r.opts.RecentDeliveries)
			dropManagedFields(metaOf(obj))
			// The status rides in the same write: the CRDs have no status
			// subresource.
			out, werr = c.Update(ctx, obj, metav1.UpdateOptions{})
		}
		if werr == nil {
			r.objects.add(k.name, key, out)
			res.object = k.reference(out)
			if res.renamedFrom != "" {
				r.renamed.add(names.identity.repositoryID)
				r.log.Info("object follows its repository's rename", "delivery", w.delivery,
					"object", r.opts.Namespace+"/"+name, "from", res.renamedFrom, "to", k.identity(out).repository)
			}
			return out, res, nil
		}
		r.objects.forget(k.name, key)
		if !apierrors.IsConflict(werr) && !apierrors.IsAlreadyExists(werr) && !(fromCache && apierrors.IsNotFound(werr)) {
			return out, res, fmt.Errorf("writing %s/%s: %w", r.opts.Namespace, name, werr)
		}
		// What we started from was behind: someone else wrote first (another
		// replica, a concurrent copy of a delivery), the object we
		// remembered was deleted, or the one we took for new exists. Decide
		// again on the live object; only a second conflict in a row waits
		// (many deliveries about one busy branch converge on one object).
		if !fromCache {
			if backoff.Steps < 1 {
				return out, res, fmt.Errorf("writing %s/%s: %w", r.opts.Namespace, name, werr)
			}
			select {
			case <-time.After(backoff.Step()):
			case <-ctx.Done():
				return out, res, fmt.Errorf("writing %s/%s: %w", r.opts.Namespace, name, ctx.Err())
			}
		}
		fromCache = false
		name, cur, err = locate(names, live, find)
	}
}

// reconcileWrite is upsert for a reconcile pass. Nothing is written when the
// live object already says what the change says (or the change was applied
// before): a pass that finds no drift writes nothing, and the result is
// neither applied nor already. Otherwise the pass decides on the live
// object: the objects the recorder remembers writing may have been deleted
// by hand since, which is the drift a pass repairs (and a pass is rare
// enough for the extra read). Nothing the API says is new on GitHub, and
// nothing it says is a payload to check for replay.
func reconcileWrite[E any, T recordedObject[E]](ctx context.Context, r *Recorder, k objectKind[T], w write[T]) (upsertResult, error) {
	same, err := unchanged(ctx, r, k, w)
	if err != nil || same {
		return upsertResult{}, err
	}
	r.objects.forget(k.name, w.names.name)
	w.isNew, w.digest, w.sameState = false, "", nil
	_, res, err := upsert(ctx, r, k, w)
	return res, err
}

// unchanged reports, before any write, whether applying the change to the
// current object would leave its spec as it is (or the change was applied
// before), so that a pass without drift writes nothing.
func unchanged[E any, T recordedObject[E]](ctx context.Context, r *Recorder, k objectKind[T], w write[T]) (bool, error) {
	cur, err := k.client(r).Get(ctx, w.names.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, err
	}
	if seen(k.bookkeeping(cur), w.delivery) {
		return true, nil
	}
	next := T(cur.DeepCopy())
	moved := w.apply(next)
	if k.follow(cur, next, w) != "" || k.identity(next).repositoryID != k.identity(cur).repositoryID {
		return false, nil // the object learns its repository's id or new name
	}
	if !moved {
		return true, nil
	}
	return equality.Semantic.DeepEqual(k.spec(cur), k.spec(next)), nil
}
