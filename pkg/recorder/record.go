package recorder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// Record applies ch and records its Event. The steps are ordered so that a
// retry of the same delivery after any failure finishes the job without
// doing any part twice:
//
//  1. If the delivery's Event exists (its name depends on the delivery id
//     alone), everything was done: Duplicate.
//  2. The object is upserted (get-modify-update, retried on conflict) with
//     the delivery id added to its recent-deliveries annotation in the same
//     write; if the id is already there, the write happened before and is
//     not repeated (so a push is never counted twice).
//  3. The status is derived from the object and written if it differs.
//  4. The Event is created; AlreadyExists means a concurrent copy of this
//     delivery won the race: Duplicate.
func (r *Recorder) Record(ctx context.Context, ch githubevent.Change) (Outcome, error) {
	return r.record(ctx, ch, "")
}

// record is Record with the payload's digest (PayloadDigest; "" skips the
// replay check): a payload identical to one of the object's recent ones
// under another delivery id is acknowledged as Replayed, and nothing is
// written — no state change, no pushCount, no Event to count.
func (r *Recorder) record(ctx context.Context, ch githubevent.Change, digest string) (Outcome, error) {
	if ch.Kind() == "" {
		return Ignored, nil
	}
	events := r.opts.Kube.CoreV1().Events(r.opts.Namespace)
	eventName := naming.EventName(ch.DeliveryID)
	switch _, err := events.Get(ctx, eventName, metav1.GetOptions{}); {
	case err == nil:
		return Duplicate, nil
	case !apierrors.IsNotFound(err):
		return "", fmt.Errorf("looking up event %s: %w", eventName, err)
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
	// already: the delivery had been applied by an earlier attempt.
	already bool
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
	// derive sets obj's status from its spec and annotations; reports
	// whether it changed.
	derive func(T) bool
	// sameState reports whether two versions of an object say the same
	// about it, counts (pushCount) aside.
	sameState func(a, b T) bool
	// identity says which pull request or branch obj is about, as
	// "<repository> <number or branch>", to compare with the change's.
	identity func(T) string
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

func upsert[E any, T recordedObject[E]](ctx context.Context, r *Recorder, c objectClient[T], k objectKind[T], names objectNames, ch githubevent.Change, digest string) (T, upsertResult, error) {
	var (
		out T
		res upsertResult
	)
	name := names.name
	retriable := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	err := retry.OnError(r.opts.Backoff, retriable, func() error {
		res = upsertResult{}
		name = names.name
		cur, err := c.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && names.legacy != "" && names.legacy != name {
			// An object recorded before names hashed an unambiguous
			// identity: keep using it if it is this identity's (a
			// legacy name shared by two identities stays with the one
			// its spec names; the other gets a new object).
			old, lerr := c.Get(ctx, names.legacy, metav1.GetOptions{})
			switch {
			case lerr == nil && k.identity(old) == names.identity:
				name, cur, err = names.legacy, old, nil
			case lerr != nil && !apierrors.IsNotFound(lerr):
				return lerr
			}
		}
		if err == nil && k.identity(cur) != names.identity {
			r.log.Error("BUG: the object named after this delivery's identity is about another one; nothing written",
				"delivery", ch.DeliveryID, "object", r.opts.Namespace+"/"+name,
				"objectIdentity", k.identity(cur), "deliveryIdentity", names.identity)
			return fmt.Errorf("%w: %s/%s is %q, the delivery is about %q",
				ErrIdentityMismatch, r.opts.Namespace, name, k.identity(cur), names.identity)
		}
		if apierrors.IsNotFound(err) {
			obj := T(new(E))
			m := metaOf(obj)
			m.Name, m.Namespace = name, r.opts.Namespace
			res.applied = k.apply(obj)
			remember(m, ch.DeliveryID, r.opts.RecentDeliveries)
			rememberPayload(m, digest, r.opts.RecentDeliveries)
			out, err = c.Create(ctx, obj, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		if seen(metaOf(cur), ch.DeliveryID) {
			res.already, out = true, cur
			return nil
		}
		obj := T(cur.DeepCopy())
		res.applied = k.apply(obj)
		// A replay is an identical payload that would change nothing but
		// counts. The same bytes can legitimately come again when the
		// state moved in between (a branch created, deleted and created
		// again within one second of pushed_at): that one is applied.
		if replayed(metaOf(cur), digest) && k.sameState(cur, obj) {
			res.replayed, out = true, cur
			return nil
		}
		remember(metaOf(obj), ch.DeliveryID, r.opts.RecentDeliveries)
		rememberPayload(metaOf(obj), digest, r.opts.RecentDeliveries)
		out, err = c.Update(ctx, obj, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return out, res, fmt.Errorf("writing %s/%s: %w", r.opts.Namespace, name, err)
	}
	if res.replayed {
		return out, res, nil
	}
	// The status is derived, so whichever writer comes last writes the
	// right one; a conflict means someone else wrote after us: re-derive.
	attempt := out
	err = retry.OnError(r.opts.Backoff, apierrors.IsConflict, func() error {
		next := T(attempt.DeepCopy())
		if !k.derive(next) {
			return nil
		}
		_, err := c.UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			fresh, gerr := c.Get(ctx, name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			attempt = fresh
		}
		return err
	})
	if err != nil {
		return out, res, fmt.Errorf("writing status of %s/%s: %w", r.opts.Namespace, name, err)
	}
	return out, res, nil
}

func (r *Recorder) recordPullRequest(ctx context.Context, ch githubevent.Change, digest string) (corev1.ObjectReference, upsertResult, error) {
	k := objectKind[*stablev1.PullRequest]{
		apply:     func(o *stablev1.PullRequest) bool { return applyPullRequest(o, ch) },
		derive:    derivePullRequestStatus,
		sameState: func(a, b *stablev1.PullRequest) bool { return equality.Semantic.DeepEqual(a.Spec, b.Spec) },
		identity: func(o *stablev1.PullRequest) string {
			return pullRequestIdentity(o.Spec.Repository, o.Spec.Number)
		},
	}
	names := objectNames{
		name:     naming.PullRequestName(ch.Repository, ch.PullRequest.Number),
		legacy:   naming.LegacyPullRequestName(ch.Repository, ch.PullRequest.Number),
		identity: pullRequestIdentity(ch.Repository, ch.PullRequest.Number),
	}
	obj, res, err := upsert(ctx, r, r.opts.Gitpulse.StableV1().PullRequests(r.opts.Namespace), k, names, ch, digest)
	if err != nil {
		return corev1.ObjectReference{}, res, err
	}
	return reference(githubevent.KindPullRequest, &obj.ObjectMeta), res, nil
}

func (r *Recorder) recordBranch(ctx context.Context, ch githubevent.Change, digest string) (corev1.ObjectReference, upsertResult, error) {
	k := objectKind[*stablev1.Branch]{
		apply:  func(o *stablev1.Branch) bool { return applyBranch(o, ch) },
		derive: deriveBranchStatus,
		sameState: func(a, b *stablev1.Branch) bool {
			x, y := a.Spec, b.Spec
			x.PushCount, y.PushCount = 0, 0
			return equality.Semantic.DeepEqual(x, y)
		},
		identity: func(o *stablev1.Branch) string {
			return branchIdentity(o.Spec.Repository, o.Spec.Name)
		},
	}
	names := objectNames{
		name:     naming.BranchName(ch.Repository, ch.Branch.Name),
		legacy:   naming.LegacyBranchName(ch.Repository, ch.Branch.Name),
		identity: branchIdentity(ch.Repository, ch.Branch.Name),
	}
	obj, res, err := upsert(ctx, r, r.opts.Gitpulse.StableV1().Branches(r.opts.Namespace), k, names, ch, digest)
	if err != nil {
		return corev1.ObjectReference{}, res, err
	}
	return reference(githubevent.KindBranch, &obj.ObjectMeta), res, nil
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

func derivePullRequestStatus(pr *stablev1.PullRequest) bool {
	want := pr.Status.DeepCopy()
	want.ObservedGeneration = pr.Generation
	want.LastDeliveryID = pr.Annotations[AnnotationLastAppliedDelivery]
	want.LastAction = pr.Annotations[AnnotationLastAppliedAction]
	want.ObservedUpdatedAt = pr.Spec.UpdatedAt
	meta.SetStatusCondition(&want.Conditions, readyCondition(pr.Generation, want.LastDeliveryID))
	if equality.Semantic.DeepEqual(*want, pr.Status) {
		return false
	}
	pr.Status = *want
	return true
}

func deriveBranchStatus(b *stablev1.Branch) bool {
	want := b.Status.DeepCopy()
	want.ObservedGeneration = b.Generation
	want.LastDeliveryID = b.Annotations[AnnotationLastAppliedDelivery]
	want.LastAction = b.Annotations[AnnotationLastAppliedAction]
	meta.SetStatusCondition(&want.Conditions, readyCondition(b.Generation, want.LastDeliveryID))
	if equality.Semantic.DeepEqual(*want, b.Status) {
		return false
	}
	b.Status = *want
	return true
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
