package recorder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// Record applies ch and records its Event, in two API requests when
// nothing competes: one write of the object (the change, its status and the
// delivery id together) and the Event create. The steps are ordered so that
// a retry of the same delivery after any failure finishes the job without
// doing any part twice:
//
//  1. The object is read from the informer cache when there is one (else
//     from the API server). If its remembered deliveries hold this one,
//     the change is in place: go to 3 (or stop, see there).
//  2. The object is created, or updated under the resourceVersion it was
//     read at, with the change, the delivery id and the status derived
//     from them in one write. A conflict or AlreadyExists means the read
//     was behind (a stale cache, a concurrent writer): the object is read
//     again from the API server and the decision taken again, so nothing
//     is ever decided on a stale object.
//  3. The Event is created; AlreadyExists means a concurrent copy or an
//     earlier attempt wrote it: Duplicate. A delivery applied longer ago
//     than the Events' TTL is Duplicate without trying: its Event was
//     written and has expired (or, if every attempt failed for that long,
//     is given up rather than risk counting it twice).
func (r *Recorder) Record(ctx context.Context, ch githubevent.Change) (Outcome, error) {
	return r.record(ctx, ch, "")
}

// eventTTLMargin is how much sooner than the Events' TTL the recorder
// stops retrying an Event create for an applied delivery: room for the
// clocks of two replicas (one wrote the applied time, the other compares
// it with its own) to differ. At most half of a (test-sized) TTL.
const eventTTLMargin = 5 * time.Minute

// record is Record with the payload's digest (PayloadDigest; "" skips the
// replay check): a payload identical to one of the object's recent ones
// under another delivery id is acknowledged as Replayed, and nothing is
// written — no state change, no pushCount, no Event to count.
func (r *Recorder) record(ctx context.Context, ch githubevent.Change, digest string) (Outcome, error) {
	if ch.Kind() == "" {
		return Ignored, nil
	}
	var (
		ref corev1.ObjectReference
		res upsertResult
		err error
	)
	switch ch.Kind() {
	case githubevent.KindPullRequest:
		if ch.Review != nil { // review.go
			ref, res, err = r.recordReview(ctx, ch, digest)
			break
		}
		ref, res, err = r.recordPullRequestAndShip(ctx, ch, digest) // leadtime.go
	case githubevent.KindBranch:
		ref, res, err = r.recordBranch(ctx, ch, digest)
	case githubevent.KindGitHubDeployment: // deployment.go
		ref, res, err = r.recordDeployment(ctx, ch, digest)
	}
	if err != nil {
		return "", err
	}
	if res.replayed {
		return Replayed, nil
	}
	if res.already && !res.appliedAt.IsZero() && r.opts.Now().Sub(res.appliedAt) >= r.opts.EventTTL-min(eventTTLMargin, r.opts.EventTTL/2) {
		return Duplicate, nil
	}
	created, err := r.createEvent(ctx, ch, ref)
	switch {
	case err != nil:
		return "", err
	case !created:
		return Duplicate, nil
	case res.already:
		return Completed, nil
	case !res.applied:
		return Stale, nil
	}
	return Recorded, nil
}

type upsertResult struct {
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
// PullRequestInterface and BranchInterface satisfy it as they are.
type objectClient[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
	UpdateStatus(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// recordedObject is a *PullRequest or a *Branch: its generated DeepCopy and
// its ObjectMeta.
type recordedObject[E any] interface {
	*E
	DeepCopy() *E
	metav1.ObjectMetaAccessor
}

// objectKind is what the two kinds do differently.
type objectKind[T any] struct {
	// apply moves obj to the change; reports whether the state moved.
	apply func(T) bool
	// derive sets obj's status from its spec and annotations, as of
	// metadata.generation generation.
	derive func(obj T, generation int64)
	// sameState reports whether two versions of an object say the same
	// about it, counts (pushCount) aside.
	sameState func(a, b T) bool
	// sameContent reports whether two versions have the same spec and
	// status: whether the API server will leave the generation alone.
	sameContent func(a, b T) bool
	// statusStored reports whether the API server kept the status sent
	// in the main write (it drops it when the status is a subresource).
	statusStored func(sent, got T) bool
	// identity says which pull request or branch obj is about, as
	// "<repository> <number or branch>", to compare with the change's.
	identity func(T) string
	// kind names the kind in recentObjects and legacyNames.
	kind string
	// isNew reports whether the change says its object is new on GitHub
	// (no object expected yet: create first).
	isNew func(githubevent.Change) bool
}

// metaOf is obj's ObjectMeta, to change in place.
func metaOf(obj metav1.ObjectMetaAccessor) *metav1.ObjectMeta {
	return obj.GetObjectMeta().(*metav1.ObjectMeta)
}

// ErrIdentityMismatch: the object under the name derived from a delivery's
// identity is about another pull request or branch. Names hash an
// unambiguous identity, so this is a bug (or a hand-made object), never bad
// input: the delivery answers 500 and nothing is written.
var ErrIdentityMismatch = errors.New("object belongs to another identity")

// objectNames are where a change's object may live: its name, and the name
// older gitpulse versions gave it (adopted when it holds the same identity).
type objectNames struct {
	name, legacy string
	// identity is the change's, as objectKind.identity renders an object's.
	identity string
}

// locate finds the change's object: under its name, else under its legacy
// name if that one holds the same identity (an object recorded before
// names hashed an unambiguous identity; a legacy name shared by two
// identities stays with the one its spec names, the other gets a new
// object). A nil object means none exists yet. read is a cache's or the
// API server's Get.
func locate[T comparable](k objectKind[T], names objectNames, read func(string) (T, error)) (string, T, error) {
	var none T
	cur, err := read(names.name)
	switch {
	case err == nil:
		return names.name, cur, nil
	case !apierrors.IsNotFound(err):
		return names.name, none, err
	case names.legacy == "" || names.legacy == names.name:
		return names.name, none, nil
	}
	old, err := read(names.legacy)
	switch {
	case err == nil && k.identity(old) == names.identity:
		return names.legacy, old, nil
	case err != nil && !apierrors.IsNotFound(err):
		return names.name, none, err
	}
	return names.name, none, nil
}

// upsert writes the change into its object (step 1 and 2 of Record).
//
// Where it starts: the object as this replica last wrote it, if it
// remembers it; else, when the change is about something new on GitHub (a
// pull request opened, a branch created) and no object is known to be under
// its legacy name, no object at all (create first; AlreadyExists means one
// exists after all); else the object read from the API server. Whatever it
// started from, a conflict or AlreadyExists sends it to the API server.
func upsert[E any, T recordedObject[E]](ctx context.Context, r *Recorder, c objectClient[T], k objectKind[T], names objectNames, ch githubevent.Change, digest string) (T, upsertResult, error) {
	var (
		out  T
		res  upsertResult
		name string
		cur  T
		err  error
	)
	live := func(name string) (T, error) { return c.Get(ctx, name, metav1.GetOptions{}) }
	legacyAbsent := names.legacy == "" || names.legacy == names.name || r.legacy.absent(k.kind, names.legacy)
	fromCache := true
	if o, ok := r.objects.get(k.kind, names.name); ok {
		name, cur = names.name, o.(T)
	} else if o, ok := r.objects.get(k.kind, names.legacy); ok && !legacyAbsent {
		name, cur = names.legacy, o.(T)
	} else if legacyAbsent && k.isNew(ch) {
		name = names.name
	} else {
		fromCache = false
		name, cur, err = locate(k, names, live)
	}
	backoff := r.opts.Backoff
	now := r.opts.Now()
	for {
		if err != nil {
			return out, res, fmt.Errorf("reading %s/%s: %w", r.opts.Namespace, name, err)
		}
		res = upsertResult{}
		var (
			werr error
			sent T
		)
		switch {
		case cur == nil:
			obj := T(new(E))
			m := metaOf(obj)
			m.Name, m.Namespace = name, r.opts.Namespace
			res.applied = k.apply(obj)
			remember(m, ch.DeliveryID, now, r.opts.DeliveryWindow, r.opts.RecentDeliveries)
			rememberPayload(m, digest, DefaultRecentPayloads)
			k.derive(obj, 1) // a created object's generation
			sent = obj
			out, werr = c.Create(ctx, obj, metav1.CreateOptions{})
		case k.identity(cur) != names.identity && !fromCache:
			r.log.Error("BUG: the object named after this delivery's identity is about another one; nothing written",
				"delivery", ch.DeliveryID, "object", r.opts.Namespace+"/"+name,
				"objectIdentity", k.identity(cur), "deliveryIdentity", names.identity)
			return out, res, fmt.Errorf("%w: %s/%s is %q, the delivery is about %q",
				ErrIdentityMismatch, r.opts.Namespace, name, k.identity(cur), names.identity)
		case k.identity(cur) != names.identity:
			werr = apierrors.NewConflict(schema.GroupResource{}, name, errors.New("cached object has another identity"))
		default:
			if at, ok := appliedAt(metaOf(cur), ch.DeliveryID); ok {
				res.already, res.appliedAt, out = true, at, cur
				r.objects.add(k.kind, name, out)
				return out, res, nil
			}
			obj := T(cur.DeepCopy())
			res.applied = k.apply(obj)
			// A replay is an identical payload that would change nothing but
			// counts. The same bytes can legitimately come again when the
			// state moved in between (a branch created, deleted and created
			// again within one second of pushed_at): that one is applied.
			if replayed(metaOf(cur), digest) && k.sameState(cur, obj) {
				if fromCache { // decide on the live object, not the cache's
					werr = apierrors.NewConflict(schema.GroupResource{}, name, errors.New("replay seen in the cache"))
					break
				}
				res.replayed, out = true, cur
				return out, res, nil
			}
			remember(metaOf(obj), ch.DeliveryID, now, r.opts.DeliveryWindow, r.opts.RecentDeliveries)
			rememberPayload(metaOf(obj), digest, DefaultRecentPayloads)
			// The status rides in the same write (the CRDs have no status
			// subresource): derived for the generation the API server will
			// give the object, which it bumps when spec or status change.
			generation := metaOf(cur).Generation
			k.derive(obj, generation)
			if !k.sameContent(cur, obj) {
				k.derive(obj, generation+1)
			}
			sent = obj
			out, werr = c.Update(ctx, obj, metav1.UpdateOptions{})
		}
		if werr == nil {
			if !k.statusStored(sent, out) {
				// A CRD that still has the status subresource (one
				// installed by an older gitpulse) drops the status from
				// the main write: write it the old way.
				if out, werr = writeStatus(ctx, r, c, k, out); werr != nil {
					r.objects.forget(k.kind, name)
					return out, res, werr
				}
			}
			r.objects.add(k.kind, name, out)
			return out, res, nil
		}
		r.objects.forget(k.kind, name)
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
		name, cur, err = locate(k, names, live)
	}
}

// writeStatus derives obj's status and writes it through the status
// subresource, re-deriving on a fresh read after a conflict (the status is
// derived, so whichever writer comes last writes the right one).
func writeStatus[E any, T recordedObject[E]](ctx context.Context, r *Recorder, c objectClient[T], k objectKind[T], obj T) (T, error) {
	out, attempt := obj, obj
	name := metaOf(obj).Name
	err := retry.OnError(r.opts.Backoff, apierrors.IsConflict, func() error {
		next := T(attempt.DeepCopy())
		k.derive(next, metaOf(next).Generation)
		if k.sameContent(attempt, next) {
			return nil
		}
		written, err := c.UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			fresh, gerr := c.Get(ctx, name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			attempt = fresh
		}
		if err == nil {
			out = written
		}
		return err
	})
	if err != nil {
		return out, fmt.Errorf("writing status of %s/%s: %w", r.opts.Namespace, name, err)
	}
	return out, nil
}

// pullRequestKind is what a PullRequest does in upsert, for change ch.
func pullRequestKind(ch githubevent.Change) objectKind[*stablev1.PullRequest] {
	return objectKind[*stablev1.PullRequest]{
		apply:     func(o *stablev1.PullRequest) bool { return applyPullRequest(o, ch) },
		derive:    derivePullRequestStatus,
		sameState: func(a, b *stablev1.PullRequest) bool { return equality.Semantic.DeepEqual(a.Spec, b.Spec) },
		sameContent: func(a, b *stablev1.PullRequest) bool {
			return equality.Semantic.DeepEqual(a.Spec, b.Spec) && equality.Semantic.DeepEqual(a.Status, b.Status)
		},
		statusStored: func(sent, got *stablev1.PullRequest) bool {
			return statusStored(sent.Status.ObservedGeneration, got.Status.ObservedGeneration,
				sent.Status.LastDeliveryID, got.Status.LastDeliveryID, got.Status.Conditions)
		},
		identity: func(o *stablev1.PullRequest) string {
			return pullRequestIdentity(o.Spec.Repository, o.Spec.Number)
		},
		kind:  githubevent.KindPullRequest,
		isNew: func(ch githubevent.Change) bool { return ch.PullRequest.Action == stablev1.ActionOpened },
	}
}

// pullRequestNames are the names ch's PullRequest may have.
func pullRequestNames(ch githubevent.Change) objectNames {
	return objectNames{
		name:     naming.PullRequestName(ch.Repository, ch.PullRequest.Number),
		legacy:   naming.LegacyPullRequestName(ch.Repository, ch.PullRequest.Number),
		identity: pullRequestIdentity(ch.Repository, ch.PullRequest.Number),
	}
}

func (r *Recorder) recordPullRequest(ctx context.Context, ch githubevent.Change, digest string) (corev1.ObjectReference, upsertResult, error) {
	obj, res, err := upsert(ctx, r, r.opts.Gitpulse.StableV1().PullRequests(r.opts.Namespace), pullRequestKind(ch), pullRequestNames(ch), ch, digest)
	if err != nil {
		return corev1.ObjectReference{}, res, err
	}
	return reference(githubevent.KindPullRequest, &obj.ObjectMeta), res, nil
}

// branchKind is what a Branch does in upsert, for change ch.
func branchKind(ch githubevent.Change) objectKind[*stablev1.Branch] {
	return objectKind[*stablev1.Branch]{
		apply:  func(o *stablev1.Branch) bool { return applyBranch(o, ch) },
		derive: deriveBranchStatus,
		sameState: func(a, b *stablev1.Branch) bool {
			x, y := a.Spec, b.Spec
			x.PushCount, y.PushCount = 0, 0
			return equality.Semantic.DeepEqual(x, y)
		},
		sameContent: func(a, b *stablev1.Branch) bool {
			return equality.Semantic.DeepEqual(a.Spec, b.Spec) && equality.Semantic.DeepEqual(a.Status, b.Status)
		},
		statusStored: func(sent, got *stablev1.Branch) bool {
			return statusStored(sent.Status.ObservedGeneration, got.Status.ObservedGeneration,
				sent.Status.LastDeliveryID, got.Status.LastDeliveryID, got.Status.Conditions)
		},
		identity: func(o *stablev1.Branch) string {
			return branchIdentity(o.Spec.Repository, o.Spec.Name)
		},
		kind: githubevent.KindBranch,
		// A branch created again after a deletion has an object: that
		// costs one AlreadyExists, and a read.
		isNew: func(ch githubevent.Change) bool {
			return ch.Branch.Action == stablev1.ActionCreated || (ch.Branch.Action == stablev1.ActionPushed && ch.Branch.Created)
		},
	}
}

// branchNames are the names ch's Branch may have.
func branchNames(ch githubevent.Change) objectNames {
	return objectNames{
		name:     naming.BranchName(ch.Repository, ch.Branch.Name),
		legacy:   naming.LegacyBranchName(ch.Repository, ch.Branch.Name),
		identity: branchIdentity(ch.Repository, ch.Branch.Name),
	}
}

func (r *Recorder) recordBranch(ctx context.Context, ch githubevent.Change, digest string) (corev1.ObjectReference, upsertResult, error) {
	obj, res, err := upsert(ctx, r, r.opts.Gitpulse.StableV1().Branches(r.opts.Namespace), branchKind(ch), branchNames(ch), ch, digest)
	if err != nil {
		return corev1.ObjectReference{}, res, err
	}
	return reference(githubevent.KindBranch, &obj.ObjectMeta), res, nil
}

func statusStored(sentGen, gotGen int64, sentID, gotID string, got []metav1.Condition) bool {
	return sentGen == gotGen && sentID == gotID && meta.IsStatusConditionTrue(got, stablev1.ConditionReady)
}

// pullRequestIdentity and branchIdentity render an identity for the
// mismatch check and its log line (%q keeps odd bytes visible).
func pullRequestIdentity(repository string, number int64) string {
	return fmt.Sprintf("%q #%d", repository, number)
}

func branchIdentity(repository, branch string) string {
	return fmt.Sprintf("%q branch %q", repository, branch)
}

func reference(kind string, m *metav1.ObjectMeta) corev1.ObjectReference {
	return corev1.ObjectReference{
		APIVersion: stablev1.SchemeGroupVersion.String(),
		Kind:       kind,
		Name:       m.Name,
		Namespace:  m.Namespace,
		UID:        m.UID,
	}
}

// derivePullRequestStatus and deriveBranchStatus derive the status from
// the spec and the recorder's annotations alone, as of generation.
func derivePullRequestStatus(pr *stablev1.PullRequest, generation int64) {
	s := &pr.Status
	s.ObservedGeneration = generation
	s.LastDeliveryID = pr.Annotations[AnnotationLastAppliedDelivery]
	s.LastAction = pr.Annotations[AnnotationLastAppliedAction]
	s.ObservedUpdatedAt = pr.Spec.UpdatedAt
	meta.SetStatusCondition(&s.Conditions, readyCondition(generation, s.LastDeliveryID))
}

func deriveBranchStatus(b *stablev1.Branch, generation int64) {
	s := &b.Status
	s.ObservedGeneration = generation
	s.LastDeliveryID = b.Annotations[AnnotationLastAppliedDelivery]
	s.LastAction = b.Annotations[AnnotationLastAppliedAction]
	meta.SetStatusCondition(&s.Conditions, readyCondition(generation, s.LastDeliveryID))
}

// maxMessageBytes is the API server's limit on an Event's message.
const maxMessageBytes = 1024

// createEvent writes the delivery's one Event. Its name is derived from the
// delivery id rather than generated (as tools/events and tools/record do),
// because exactly one Event per delivery is the contract: the API server's
// AlreadyExists is what makes a redelivered or concurrent copy a no-op. It
// reports false when the Event already existed.
func (r *Recorder) createEvent(ctx context.Context, ch githubevent.Change, ref corev1.ObjectReference) (bool, error) {
	now := r.opts.Now()
	owner, name, _ := strings.Cut(ch.Repository, "/")
	msg := ch.Message()
	for len(msg) > maxMessageBytes {
		_, size := utf8.DecodeLastRuneInString(msg)
		msg = msg[:len(msg)-size]
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      naming.EventName(ch.DeliveryID),
			Namespace: r.opts.Namespace,
			Annotations: map[string]string{
				stablev1.AnnotationDeliveryID: ch.DeliveryID,
				stablev1.AnnotationRepository: ch.Repository,
			},
			Labels: map[string]string{
				stablev1.LabelRepositoryOwner: naming.LabelValue(owner),
				stablev1.LabelRepositoryName:  naming.LabelValue(name),
			},
		},
		InvolvedObject:      ref,
		Reason:              ch.Reason(),
		Message:             msg,
		Type:                corev1.EventTypeNormal,
		Action:              ch.Action(),
		Source:              corev1.EventSource{Component: stablev1.SourceComponent, Host: r.opts.Instance},
		ReportingController: stablev1.ReportingController,
		ReportingInstance:   r.opts.Instance,
		FirstTimestamp:      metav1.NewTime(now),
		LastTimestamp:       metav1.NewTime(now),
		EventTime:           metav1.NewMicroTime(now),
		Count:               1,
	}
	if ch.Deployment != nil { // the metrics function counts deployments by environment
		ev.Annotations[stablev1.AnnotationEnvironment] = ch.Deployment.Environment
	}
	_, err := r.opts.Kube.CoreV1().Events(r.opts.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("creating event %s: %w", ev.Name, err)
	}
	return true, nil
}
