package recorder

import (
	"context"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// recordReview records a pull_request_review delivery on its PullRequest
// with the generic upsert: exactly once by delivery id (the counts, like a
// branch's pushCount, move once per distinct delivery), and order-safe
// because nothing it writes depends on order (earliest times, counts).
func (r *Recorder) recordReview(ctx context.Context, ch githubevent.Change, digest string) (corev1.ObjectReference, upsertResult, error) {
	number := ch.Review.PullRequest.Number
	k := pullRequestKind(ch)
	k.apply = func(o *stablev1.PullRequest) bool { return applyReview(o, ch) }
	k.sameState = func(a, b *stablev1.PullRequest) bool {
		x, y := a.Spec, b.Spec
		x.ReviewCount, x.ApprovalCount, x.DismissedCount = 0, 0, 0
		y.ReviewCount, y.ApprovalCount, y.DismissedCount = 0, 0, 0
		return equality.Semantic.DeepEqual(x, y)
	}
	// A review is never about a pull request GitHub just opened.
	k.isNew = func(githubevent.Change) bool { return false }
	names := objectNames{
		name:     naming.PullRequestName(ch.Repository, number),
		legacy:   naming.LegacyPullRequestName(ch.Repository, number),
		identity: pullRequestIdentity(ch.Repository, number),
	}
	obj, res, err := upsert(ctx, r, r.opts.Gitpulse.StableV1().PullRequests(r.opts.Namespace), k, names, ch, digest)
	if err != nil {
		return corev1.ObjectReference{}, res, err
	}
	return reference(githubevent.KindPullRequest, &obj.ObjectMeta), res, nil
}

// applyReview adds what a review delivery says to pr:
//
//   - submitted counts a review (and an approval when its state is
//     approved); dismissed counts a dismissal; edited counts nothing; each
//     once per review id (counted.go);
//   - firstReviewAt and firstApprovalAt become the earliest submitted_at
//     seen (of any review state, resp. approved), so the order deliveries
//     arrive in does not matter.
//
// A pull request the recorder has not seen yet is filled from the review's
// copy of it, without spec.updatedAt, so that the first pull_request
// delivery, whatever its time, replaces those fields. The delivery is not
// marked as the object's last applied one: status.lastAction stays the
// pull_request action. It reports whether the spec moved.
func applyReview(pr *stablev1.PullRequest, ch githubevent.Change) bool {
	rv := ch.Review
	c := rv.PullRequest
	identify(&pr.ObjectMeta, ch.Repository)
	setLabel(&pr.ObjectMeta, stablev1.LabelPullRequestNumber, strconv.FormatInt(c.Number, 10))
	s := &pr.Spec
	s.Repository, s.Number, s.ID = ch.Repository, c.Number, strconv.FormatInt(c.Number, 10)
	moved := false
	if s.UpdatedAt == nil && s.Status == "" {
		s.User, s.Branch, s.Status, s.Title = c.User, c.HeadBranch, string(c.State), c.Title
		s.BaseBranch, s.HeadSHA, s.URL, s.Merged = c.BaseBranch, c.HeadSHA, c.URL, c.Merged
		s.OpenedAt, s.ClosedAt, s.MergedAt = timeOrNil(c.OpenedAt), timeOrNil(c.ClosedAt), timeOrNil(c.MergedAt)
		moved = true
	}
	// Counted once per review id (counted.go): a review also read by a
	// reconcile pass's backfill is not counted twice.
	switch rv.Action {
	case "submitted":
		if countOnce(&pr.ObjectMeta, AnnotationCountedReviews, rv.ID, countedReview) {
			s.ReviewCount++
			moved = true
		}
		if rv.State == githubevent.ReviewApproved && countOnce(&pr.ObjectMeta, AnnotationCountedReviews, rv.ID, countedApproval) {
			s.ApprovalCount++
			moved = true
		}
	case "dismissed":
		if countOnce(&pr.ObjectMeta, AnnotationCountedReviews, rv.ID, countedDismissal) {
			s.DismissedCount++
			moved = true
		}
	}
	if !rv.SubmittedAt.IsZero() && rv.State != "pending" {
		moved = earliest(&s.FirstReviewAt, rv.SubmittedAt) || moved
		if rv.State == githubevent.ReviewApproved {
			moved = earliest(&s.FirstApprovalAt, rv.SubmittedAt) || moved
		}
	}
	return moved
}

// earliest sets *at to t when t is before it (or it is unset); reports
// whether it moved.
func earliest(at **metav1.Time, t time.Time) bool {
	t = t.UTC().Truncate(time.Second)
	if *at != nil && !t.Before((*at).Time) {
		return false
	}
	*at = timeOrNil(t)
	return true
}
