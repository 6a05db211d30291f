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
	"k8s.io/apimachinery/pkg/runtime/schema"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// objectKind is what the engine knows of one kind of object. It is the same
// for every change; what a change does to the object is its write.
type objectKind[T any] struct {
	// name is the Kind: the key in recentObjects, and the
	// Event's involvedObject.kind.
	name string
	// client is the kind's typed client in the recorder's namespace.
	client func(r *Recorder) objectClient[T]
	// identity says which pull request, branch or deployment an object
	// is about, rendered as objectNames.identity renders a change's.
	identity func(T) string
	// spec is the object's spec, to compare two versions.
	spec func(T) any
	// status points into the object's status.
	status func(T) recordedStatus
}

// recordedStatus points at what every kind's status says: which delivery
// moved the object last and what it did; whole is the status, to compare
// two versions.
type recordedStatus struct {
	whole          any
	lastDeliveryID *string
	lastAction     *string
}

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

// A write is what one change does to its object, as upsert takes it.
type write[T any] struct {
	names objectNames
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

// objectNames are where a change's object lives: its name, and the
// identity it holds.
type objectNames struct {
	name string
	// identity is the change's, as objectKind.identity renders an object's.
	identity string
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

// metaOf is obj's ObjectMeta, to change in place.
func metaOf(obj metav1.ObjectMetaAccessor) *metav1.ObjectMeta {
	return obj.GetObjectMeta().(*metav1.ObjectMeta)
}

// ErrIdentityMismatch: the object under the name derived from a delivery's
// identity is about another pull request, branch or deployment. Names hash
// an unambiguous identity, so this is a bug (or a hand-made object), never
// bad input: the delivery answers 500 and nothing is written.
var ErrIdentityMismatch = errors.New("object belongs to another identity")

// locate finds the change's object under its name; a nil object means
// none exists yet. read is a cache's or the API server's Get.
func locate[T comparable](names objectNames, read func(string) (T, error)) (string, T, error) {
	var none T
	cur, err := read(names.name)
	switch {
	case err == nil:
		return names.name, cur, nil
	case !apierrors.IsNotFound(err):
		return names.name, none, err
	}
	return names.name, none, nil
}

// upsert writes the change into its object (steps 1 and 2 of record).
//
// Where it starts: the object as this replica last wrote it, if it
// remembers it; else, when the change is about something new on GitHub (a
// pull request opened, a branch created), no object at all (create first; AlreadyExists means one
// exists after all); else the object read from the API server. Whatever it
// started from, a conflict or AlreadyExists sends it to the API server.
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
	sameState := w.sameState
	if sameState == nil {
		sameState = func(a, b T) bool { return equality.Semantic.DeepEqual(k.spec(a), k.spec(b)) }
	}
	live := func(name string) (T, error) { return c.Get(ctx, name, metav1.GetOptions{}) }
	fromCache := true
	if o, ok := r.objects.get(k.name, names.name); ok {
		name, cur = names.name, o.(T)
	} else if w.isNew {
		name = names.name
	} else {
		fromCache = false
		name, cur, err = locate(names, live)
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
			remember(m, w.delivery, now, r.opts.DeliveryWindow, r.opts.RecentDeliveries)
			rememberPayload(m, w.digest, DefaultRecentPayloads)
			out, werr = c.Create(ctx, obj, metav1.CreateOptions{})
		case k.identity(cur) != names.identity && !fromCache:
			r.log.Error("BUG: the object named after this delivery's identity is about another one; nothing written",
				"delivery", w.delivery, "object", r.opts.Namespace+"/"+name,
				"objectIdentity", k.identity(cur), "deliveryIdentity", names.identity)
			return out, res, fmt.Errorf("%w: %s/%s is %q, the delivery is about %q",
				ErrIdentityMismatch, r.opts.Namespace, name, k.identity(cur), names.identity)
		case k.identity(cur) != names.identity:
			werr = apierrors.NewConflict(schema.GroupResource{}, name, errors.New("cached object has another identity"))
		default:
			if at, ok := appliedAt(metaOf(cur), w.delivery); ok {
				res.already, res.appliedAt, out = true, at, cur
				r.objects.add(k.name, name, out)
				res.object = k.reference(out)
				return out, res, nil
			}
			obj := T(cur.DeepCopy())
			res.applied = w.apply(obj)
			// A replay is an identical payload that would change nothing but
			// counts. The same bytes can legitimately come again when the
			// state moved in between (a branch created, deleted and created
			// again within one second of pushed_at): that one is applied.
			if replayed(metaOf(cur), w.digest) && sameState(cur, obj) {
				if fromCache { // decide on the live object, not the cache's
					werr = apierrors.NewConflict(schema.GroupResource{}, name, errors.New("replay seen in the cache"))
					break
				}
				res.replayed, out = true, cur
				res.object = k.reference(out)
				return out, res, nil
			}
			remember(metaOf(obj), w.delivery, now, r.opts.DeliveryWindow, r.opts.RecentDeliveries)
			rememberPayload(metaOf(obj), w.digest, DefaultRecentPayloads)
			// The status rides in the same write: the CRDs have no status
			// subresource.
			out, werr = c.Update(ctx, obj, metav1.UpdateOptions{})
		}
		if werr == nil {
			r.objects.add(k.name, name, out)
			res.object = k.reference(out)
			return out, res, nil
		}
		r.objects.forget(k.name, name)
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
		name, cur, err = locate(names, live)
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
	if seen(metaOf(cur), w.delivery) {
		return true, nil
	}
	next := T(cur.DeepCopy())
	if !w.apply(next) {
		return true, nil
	}
	return equality.Semantic.DeepEqual(k.spec(cur), k.spec(next)), nil
}
