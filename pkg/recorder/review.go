package recorder

// A review: every rule for writing a pull_request_review delivery, or a
// pull request's review list read from the API, into the PullRequest
// (pullrequest.go) it is about. Counts move once per review id, whichever
// way the review arrived first (counted.go); nothing a review writes
// depends on order (earliest times, counts).

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
)

// deliverReview records a pull_request_review delivery, exactly once by
// delivery id (the counts, like a branch's pushCount, move once per
// distinct delivery).
func (r *Recorder) deliverReview(ctx context.Context, ch githubevent.Change, digest string) (upsertResult, error) {
	_, res, err := upsert(ctx, r, pullRequests, write[*stablev1.PullRequest]{
		names:    pullRequestNames(ch, ch.Review.PullRequest.Number),
		namedAt:  ch.NamedAt(),
		delivery: ch.DeliveryID,
		digest:   digest,
		apply:    func(o *stablev1.PullRequest) bool { return applyReview(o, ch) },
		sameState: func(a, b *stablev1.PullRequest) bool {
			x, y := a.Spec, b.Spec
			x.ReviewCount, x.ApprovalCount, x.DismissedCount = 0, 0, 0
			y.ReviewCount, y.ApprovalCount, y.DismissedCount = 0, 0, 0
			return equality.Semantic.DeepEqual(x, y)
		},
		// A review is never about a pull request GitHub just opened.
		isNew: false,
	})
	return res, err
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
// marked as the object's last applied one: status.lastDeliveryID stays the
// pull_request delivery's. It reports whether the spec moved.
func applyReview(pr *stablev1.PullRequest, ch githubevent.Change) bool {
	rv := ch.Review
	c := rv.PullRequest
	numberPullRequest(pr, ch.Repository, c.Number)
	s := &pr.Spec
	if c.GitHubID > 0 {
		s.GitHubID = c.GitHubID
	}
	moved := fillPullRequest(s, c)
	// Counted once per review id (counted.go): a review also read by a
	// reconcile pass's backfill is not counted twice.
	switch rv.Action {
	case "submitted":
		if countOnce(&pr.Status.CountedReviews, rv.ID, countedReview) {
			s.ReviewCount++
			moved = true
		}
		if rv.State == githubevent.ReviewApproved && countOnce(&pr.Status.CountedReviews, rv.ID, countedApproval) {
			s.ApprovalCount++
			moved = true
		}
	case "dismissed":
		if countOnce(&pr.Status.CountedReviews, rv.ID, countedDismissal) {
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
func applyReconciledReviews(pr *stablev1.PullRequest, ch githubevent.Change, now metav1.Time) bool {
	rv := ch.Review
	before := pr.Spec.DeepCopy()
	s := &pr.Spec
	if s.UpdatedAt == nil && s.Status == "" {
		numberPullRequest(pr, ch.Repository, rv.PullRequest.Number)
		fillPullRequest(s, rv.PullRequest)
	}
	set := readCounted(pr.Status.CountedReviews)
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
	set.write(&pr.Status.CountedReviews)
	markReconciled(&pr.Status.Bookkeeping, now)
	return true
}

// reconcileReviews writes a pull request's review list read alone
// (githubevent.FromAPIReviews).
func (r *Recorder) reconcileReviews(ctx context.Context, ch githubevent.Change, now metav1.Time) (upsertResult, error) {
	return reconcileWrite(ctx, r, pullRequests, write[*stablev1.PullRequest]{
		names:    pullRequestNames(ch, ch.Review.PullRequest.Number),
		namedAt:  ch.NamedAt(),
		delivery: ch.DeliveryID,
		apply:    func(o *stablev1.PullRequest) bool { return applyReconciledReviews(o, ch, now) },
	})
}
