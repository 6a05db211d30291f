package recorder

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// Reconciled: a reconcile pass changed the object (backfill or drift
// repair) and wrote its one Reconciled Event.
const Reconciled Outcome = "reconciled"

// RecordReconciled records a Change built from the GitHub REST API
// (githubevent.FromAPIPullRequest, FromAPIBranch, FromAPIReviews,
// FromAPIDeployment) by a reconcile pass. It
// goes through the same upsert as a delivery, so the same ordering rules
// hold: a pull request never moves backwards (updated_at, merged is final)
// and a delivery that arrives later still wins when newer. A branch from the
// API carries no time, so it only creates a missing object (with its head),
// never moves an existing one.
//
// Nothing is written when the object already says what the API says (a pass
// that finds no drift writes nothing): the outcome is Duplicate. When it
// writes, the object gets AnnotationReconciledAt and one Event with reason
// Reconciled and reportingController ReconcilerController, which the
// metrics function's delivery counters do not select. The Change's
// synthetic DeliveryID depends only on the API's state, so overlapping
// passes write once: the second finds the id in recent-deliveries, or its
// Event already exists.
func (r *Recorder) RecordReconciled(ctx context.Context, ch githubevent.Change) (Outcome, error) {
	if !strings.HasPrefix(ch.DeliveryID, githubevent.ReconciledIDPrefix) {
		return "", fmt.Errorf("recorder: %q is not a reconciled change", ch.DeliveryID)
	}
	if ch.Kind() == "" || !r.ownerAllowed(ch.Repository) {
		return Ignored, nil
	}
	now := r.opts.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	var (
		ref  corev1.ObjectReference
		res  upsertResult
		err  error
		skip bool
	)
	switch ch.Kind() {
	case githubevent.KindPullRequest:
		if ch.Review != nil && ch.PullRequest == nil { // reconciled_dora.go
			ref, res, skip, err = r.reconcileReviews(ctx, ch, now)
			break
		}
		ref, res, skip, err = r.reconcilePullRequest(ctx, ch, now)
	case githubevent.KindGitHubDeployment:
		ref, res, skip, err = r.reconcileDeployment(ctx, ch, now)
	case githubevent.KindBranch:
		ref, res, skip, err = r.reconcileBranch(ctx, ch, now)
	}
	switch {
	case err != nil:
		return "", err
	case skip || res.already || !res.applied:
		return Duplicate, nil
	}
	created, err := r.createReconciledEvent(ctx, ch, ref)
	if err != nil {
		return "", err
	}
	if !created {
		return Duplicate, nil
	}
	return Reconciled, nil
}

// unchanged reports, before any write, whether applying the change to the
// current object would leave its spec as it is (or the change was applied
// before), so that a pass without drift writes nothing.
func unchanged[E any, T recordedObject[E]](ctx context.Context, c objectClient[T], name string, ch githubevent.Change, apply func(T) bool, spec func(T) any) (bool, error) {
	cur, err := c.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, err
	}
	if seen(metaOf(cur), ch.DeliveryID) {
		return true, nil
	}
	next := T(cur.DeepCopy())
	if !apply(next) {
		return true, nil
	}
	return equality.Semantic.DeepEqual(spec(cur), spec(next)), nil
}

func (r *Recorder) reconcilePullRequest(ctx context.Context, ch githubevent.Change, now string) (corev1.ObjectReference, upsertResult, bool, error) {
	apply := func(o *stablev1.PullRequest) bool {
		moved := applyPullRequest(o, ch)
		if ch.Review != nil && applyReconciledReviews(o, ch, now) {
			moved = true
		}
		return moved
	}
	spec := func(o *stablev1.PullRequest) any { return o.Spec }
	client := r.opts.Gitpulse.StableV1().PullRequests(r.opts.Namespace)
	names := pullRequestNames(ch)
	if same, err := unchanged(ctx, client, names.name, ch, apply, spec); err != nil || same {
		return corev1.ObjectReference{}, upsertResult{}, same, err
	}
	k := pullRequestKind(ch)
	k.apply = func(o *stablev1.PullRequest) bool {
		before := o.Spec.DeepCopy()
		moved := applyPullRequest(o, ch) && !equality.Semantic.DeepEqual(*before, o.Spec)
		// The pull request's reviews, when the pass listed them
		// (githubevent.FromAPIPullRequestWithReviews; reconciled_dora.go).
		if ch.Review != nil && applyReconciledReviews(o, ch, now) {
			moved = true
		}
		if moved {
			setAnnotation(&o.ObjectMeta, stablev1.AnnotationReconciledAt, now)
		}
		return moved
	}
	// A pull request from the API may be anything but new to GitHub.
	k.isNew = func(githubevent.Change) bool { return false }
	r.forgetRemembered(k.kind, names)
	obj, res, err := upsert(ctx, r, client, k, names, ch, "")
	if err != nil {
		return corev1.ObjectReference{}, res, false, err
	}
	return reference(githubevent.KindPullRequest, &obj.ObjectMeta), res, false, nil
}

// applyReconciledBranch creates what a branch from the API says, on a new
// object only: the list has no time to order it against deliveries by.
func applyReconciledBranch(b *stablev1.Branch, ch githubevent.Change, now string) bool {
	identify(&b.ObjectMeta, ch.Repository)
	setAnnotation(&b.ObjectMeta, stablev1.AnnotationBranch, ch.Branch.Name)
	s := &b.Spec
	s.Name, s.Repository = ch.Branch.Name, ch.Repository
	if s.State != "" {
		return false
	}
	s.State = string(stablev1.BranchCreated)
	s.HeadSHA = ch.Branch.HeadSHA
	markApplied(&b.ObjectMeta, ch)
	setAnnotation(&b.ObjectMeta, stablev1.AnnotationReconciledAt, now)
	return true
}

func (r *Recorder) reconcileBranch(ctx context.Context, ch githubevent.Change, now string) (corev1.ObjectReference, upsertResult, bool, error) {
	apply := func(o *stablev1.Branch) bool { return applyReconciledBranch(o, ch, now) }
	client := r.opts.Gitpulse.StableV1().Branches(r.opts.Namespace)
	names := branchNames(ch)
	if ch.Branch.Action == stablev1.ActionDeleted {
		// Absent from GitHub's list (FromAPIBranchAbsent): the delete
		// delivery's rules, at the time the list was read.
		apply = func(o *stablev1.Branch) bool {
			moved := applyBranch(o, ch)
			if moved {
				setAnnotation(&o.ObjectMeta, stablev1.AnnotationReconciledAt, now)
			}
			return moved
		}
		// Only an object that exists is marked: absence never creates one.
		switch _, err := client.Get(ctx, names.name, metav1.GetOptions{}); {
		case apierrors.IsNotFound(err):
			return corev1.ObjectReference{}, upsertResult{}, true, nil
		case err != nil:
			return corev1.ObjectReference{}, upsertResult{}, false, err
		}
	}
	if same, err := unchanged(ctx, client, names.name, ch, apply, func(o *stablev1.Branch) any { return o.Spec }); err != nil || same {
		return corev1.ObjectReference{}, upsertResult{}, same, err
	}
	k := branchKind(ch)
	k.apply = apply
	// Counts are not the API's to move: a listed branch never pushes.
	k.sameState = func(a, b *stablev1.Branch) bool { return equality.Semantic.DeepEqual(a.Spec, b.Spec) }
	k.isNew = func(githubevent.Change) bool { return false }
	r.forgetRemembered(k.kind, names)
	obj, res, err := upsert(ctx, r, client, k, names, ch, "")
	if err != nil {
		return corev1.ObjectReference{}, res, false, err
	}
	return reference(githubevent.KindBranch, &obj.ObjectMeta), res, false, nil
}

// createReconciledEvent writes the pass's one Event for the object. Only
// the pass whose write applied the change gets here (a concurrent pass
// that read the same state finds the synthetic id in recent-deliveries);
// the name is the id's and the object's UID, so a retry of this pass gets
// AlreadyExists, while the same state written again into an object
// recreated after a deletion (drift repair) gets an Event of its own.
func (r *Recorder) createReconciledEvent(ctx context.Context, ch githubevent.Change, ref corev1.ObjectReference) (bool, error) {
	now := r.opts.Now()
	owner, name, _ := strings.Cut(ch.Repository, "/")
	msg := ch.Message() + " (from the GitHub API)"
	for len(msg) > maxMessageBytes {
		_, size := utf8.DecodeLastRuneInString(msg)
		msg = msg[:len(msg)-size]
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      naming.EventName(ch.DeliveryID + "-" + uidPrefix(ref)),
			Namespace: r.opts.Namespace,
			Annotations: map[string]string{
				stablev1.AnnotationRepository: ch.Repository,
			},
			Labels: map[string]string{
				stablev1.LabelRepositoryOwner: naming.LabelValue(owner),
				stablev1.LabelRepositoryName:  naming.LabelValue(name),
			},
		},
		InvolvedObject:      ref,
		Reason:              stablev1.ReasonReconciled,
		Message:             msg,
		Type:                corev1.EventTypeNormal,
		Action:              stablev1.ActionReconciled,
		Source:              corev1.EventSource{Component: stablev1.SourceComponent, Host: r.opts.Instance},
		ReportingController: stablev1.ReconcilerController,
		ReportingInstance:   r.opts.Instance,
		FirstTimestamp:      metav1.NewTime(now),
		LastTimestamp:       metav1.NewTime(now),
		EventTime:           metav1.NewMicroTime(now),
		Count:               1,
	}
	if ch.Deployment != nil { // as a delivered deployment's Event (record.go)
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

// Namespace is where the recorder writes (and a reconcile pass reads).
func (r *Recorder) Namespace() string { return r.opts.Namespace }

func uidPrefix(ref corev1.ObjectReference) string {
	uid := string(ref.UID)
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return uid
}

// forgetRemembered makes a pass decide on the live object: the objects the
// recorder remembers writing may have been deleted by hand since, which is
// the drift a pass repairs (and a pass is rare enough for the extra read).
func (r *Recorder) forgetRemembered(kind string, names objectNames) {
	r.objects.forget(kind, names.name)
	if names.legacy != "" {
		r.objects.forget(kind, names.legacy)
	}
}

// RecordedBranches lists the names of repository's Branch objects in state
// created, for a reconcile pass to compare with GitHub's branch list.
func (r *Recorder) RecordedBranches(ctx context.Context, repository string) ([]string, error) {
	owner, name, _ := strings.Cut(repository, "/")
	sel := labels.SelectorFromSet(labels.Set{
		stablev1.LabelRepositoryOwner: naming.LabelValue(owner),
		stablev1.LabelRepositoryName:  naming.LabelValue(name),
	})
	var out []string
	opts := metav1.ListOptions{LabelSelector: sel.String(), Limit: 500}
	for {
		list, err := r.opts.Gitpulse.StableV1().Branches(r.opts.Namespace).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, b := range list.Items {
			// Label values are shortened for long names: the spec says.
			if b.Spec.Repository == repository && b.Spec.State == string(stablev1.BranchCreated) {
				out = append(out, b.Spec.Name)
			}
		}
		if list.Continue == "" {
			return out, nil
		}
		opts.Continue = list.Continue
	}
}
