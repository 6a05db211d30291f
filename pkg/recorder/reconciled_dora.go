package recorder

// Reviews and deployments from a reconcile pass's backfill (pkg/reconcile):
// the same objects and the same ordering rules as their deliveries
// (review.go, deployment.go); counts move once per review or status id,
// whichever way it arrived first (counted.go).

import (
	"context"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// applyReconciledReviews adds the reviews a pull request's review list
// (githubevent.FromAPIReviews) holds to pr:
//
//   - firstReviewAt / firstApprovalAt become the earliest submitted_at, as
//     for deliveries (order-free);
//   - each review id not counted yet is counted (reviewCount; approvalCount
//     when its state is APPROVED; dismissedCount when DISMISSED) and
//     recorded as counted, so its delivery, arriving later, counts nothing;
//   - a count is never lowered, and is raised to at least the number of ids
//     recorded for it: an object whose reviews were counted by deliveries
//     before the ids were kept gets its count right, not doubled.
//
// A pull request without an object is filled from the list's copy, as a
// review delivery does. It reports whether the spec moved.
func applyReconciledReviews(pr *stablev1.PullRequest, ch githubevent.Change, now string) bool {
	rv := ch.Review
	before := pr.Spec.DeepCopy()
	identify(&pr.ObjectMeta, ch.Repository)
	s := &pr.Spec
	if s.UpdatedAt == nil && s.Status == "" {
		c := rv.PullRequest
		setLabel(&pr.ObjectMeta, stablev1.LabelPullRequestNumber, strconv.FormatInt(c.Number, 10))
		s.Repository, s.Number, s.ID = ch.Repository, c.Number, strconv.FormatInt(c.Number, 10)
		s.User, s.Branch, s.Status, s.Title = c.User, c.HeadBranch, string(c.State), c.Title
		s.BaseBranch, s.HeadSHA, s.URL, s.Merged = c.BaseBranch, c.HeadSHA, c.URL, c.Merged
		s.OpenedAt, s.ClosedAt, s.MergedAt = timeOrNil(c.OpenedAt), timeOrNil(c.ClosedAt), timeOrNil(c.MergedAt)
	}
	set := readCounted(&pr.ObjectMeta, AnnotationCountedReviews)
	for _, l := range rv.Listed {
		set.add(l.ID, countedReview)
		earliest(&s.FirstReviewAt, l.SubmittedAt)
		switch l.State {
		case githubevent.ReviewApproved:
			set.add(l.ID, countedApproval)
			earliest(&s.FirstApprovalAt, l.SubmittedAt)
		case githubevent.ReviewDismissed:
			set.add(l.ID, countedDismissal)
		}
	}
	s.ReviewCount = max(s.ReviewCount, set.with(countedReview))
	s.ApprovalCount = max(s.ApprovalCount, set.with(countedApproval))
	s.DismissedCount = max(s.DismissedCount, set.with(countedDismissal))
	if equality.Semantic.DeepEqual(*before, pr.Spec) {
		return false
	}
	set.write(&pr.ObjectMeta, AnnotationCountedReviews)
	setAnnotation(&pr.ObjectMeta, stablev1.AnnotationReconciledAt, now)
	return true
}

func (r *Recorder) reconcileReviews(ctx context.Context, ch githubevent.Change, now string) (corev1.ObjectReference, upsertResult, bool, error) {
	apply := func(o *stablev1.PullRequest) bool { return applyReconciledReviews(o, ch, now) }
	spec := func(o *stablev1.PullRequest) any { return o.Spec }
	client := r.opts.Gitpulse.StableV1().PullRequests(r.opts.Namespace)
	number := ch.Review.PullRequest.Number
	names := objectNames{
		name:     naming.PullRequestName(ch.Repository, number),
		legacy:   naming.LegacyPullRequestName(ch.Repository, number),
		identity: pullRequestIdentity(ch.Repository, number),
	}
	if same, err := unchanged(ctx, client, names.name, ch, apply, spec); err != nil || same {
		return corev1.ObjectReference{}, upsertResult{}, same, err
	}
	k := pullRequestKind(ch)
	k.apply = apply
	k.isNew = func(githubevent.Change) bool { return false }
	r.forgetRemembered(k.kind, names)
	obj, res, err := upsert(ctx, r, client, k, names, ch, "")
	if err != nil {
		return corev1.ObjectReference{}, res, false, err
	}
	return reference(githubevent.KindPullRequest, &obj.ObjectMeta), res, false, nil
}

// applyReconciledDeployment moves o to what a deployment and its listed
// statuses (githubevent.FromAPIDeployment) say, with the rules of
// applyDeployment: the deployment's fields by its updated_at, the latest
// state by the status's time then id, first success and failure the
// earliest seen; statusCount counts each status id once (raised to at
// least the ids recorded, never lowered). It reports whether the spec
// moved.
func applyReconciledDeployment(o *stablev1.GitHubDeployment, ch githubevent.Change, now string) bool {
	before := o.Spec.DeepCopy()
	d := *ch.Deployment
	d.Status, d.Statuses = nil, nil
	plain := ch
	plain.Deployment = &d
	applyDeployment(o, plain)
	s := &o.Spec
	set := readCounted(&o.ObjectMeta, AnnotationCountedStatuses)
	for _, st := range ch.Deployment.Statuses {
		set.add(st.ID, 0)
		if s.StateAt == nil || st.At.After(s.StateAt.Time) || (st.At.Equal(s.StateAt.Time) && st.ID >= s.StateID) {
			s.State, s.StateAt, s.StateID = st.State, timeOrNil(st.At), st.ID
		}
		switch {
		case st.State == stablev1.DeploymentStateSuccess:
			earliest(&s.FirstSuccessAt, st.At)
		case stablev1.IsDeploymentFailure(st.State):
			earliest(&s.FirstFailureAt, st.At)
		}
	}
	s.StatusCount = max(s.StatusCount, set.with(0))
	if equality.Semantic.DeepEqual(*before, o.Spec) {
		return false
	}
	set.write(&o.ObjectMeta, AnnotationCountedStatuses)
	markApplied(&o.ObjectMeta, ch)
	setAnnotation(&o.ObjectMeta, stablev1.AnnotationReconciledAt, now)
	return true
}

func (r *Recorder) reconcileDeployment(ctx context.Context, ch githubevent.Change, now string) (corev1.ObjectReference, upsertResult, bool, error) {
	apply := func(o *stablev1.GitHubDeployment) bool { return applyReconciledDeployment(o, ch, now) }
	spec := func(o *stablev1.GitHubDeployment) any { return o.Spec }
	client := r.opts.Gitpulse.StableV1().GitHubDeployments(r.opts.Namespace)
	names := objectNames{
		name:     naming.DeploymentName(ch.Repository, ch.Deployment.ID),
		identity: deploymentIdentity(ch.Repository, ch.Deployment.ID),
	}
	if same, err := unchanged(ctx, client, names.name, ch, apply, spec); err != nil || same {
		return corev1.ObjectReference{}, upsertResult{}, same, err
	}
	k := deploymentKind(ch)
	k.apply = apply
	k.sameState = func(a, b *stablev1.GitHubDeployment) bool { return equality.Semantic.DeepEqual(a.Spec, b.Spec) }
	r.forgetRemembered(k.kind, names)
	obj, res, err := upsert(ctx, r, client, k, names, ch, "")
	if err != nil {
		return corev1.ObjectReference{}, res, false, err
	}
	return reference(githubevent.KindGitHubDeployment, &obj.ObjectMeta), res, false, nil
}

// Ship brings the lead time attribution of repository's successful
// deployments up to date with the objects (leadtime.go ship): a reconcile
// pass calls it once per repository after its backfill, so backfilled
// merges and deployments attribute as delivered ones do. It writes nothing
// when the attribution is already there.
func (r *Recorder) Ship(ctx context.Context, repository string) error {
	if !r.ownerAllowed(repository) {
		return nil
	}
	return r.ship(ctx, repository, "")
}
