package recorder

import (
	"testing"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
)

func reviewChange(id, action, state, submitted string) githubevent.Change {
	return githubevent.Change{
		DeliveryID: id, Event: "pull_request_review", Repository: "o/r", OccurredAt: at(submitted),
		Review: &githubevent.ReviewChange{
			Action: action, State: state, SubmittedAt: at(submitted),
			PullRequest: githubevent.PullRequestChange{Number: 1, State: stablev1.PullRequestOpen, User: "u", HeadBranch: "f", OpenedAt: at("09:00:00")},
		},
	}
}

func TestApplyReview_SameResultInEveryOrder(t *testing.T) {
	changes := []githubevent.Change{
		reviewChange("a", "submitted", "commented", "10:00:00"),
		reviewChange("b", "submitted", "changes_requested", "10:30:00"),
		reviewChange("c", "submitted", "approved", "11:00:00"),
		reviewChange("d", "edited", "approved", "11:00:00"),
		reviewChange("e", "submitted", "approved", "12:00:00"),
		reviewChange("f", "dismissed", "dismissed", "12:00:00"),
	}
	permutations(changes, func(order []githubevent.Change) {
		pr := &stablev1.PullRequest{}
		for _, ch := range order {
			applyReview(pr, ch)
		}
		s := pr.Spec
		if fmtT(s.FirstReviewAt) != "10:00:00" || fmtT(s.FirstApprovalAt) != "11:00:00" ||
			s.ReviewCount != 4 || s.ApprovalCount != 2 || s.DismissedCount != 1 {
			t.Fatalf("order %v: first review %s, approval %s, counts %d/%d/%d", ids(order),
				fmtT(s.FirstReviewAt), fmtT(s.FirstApprovalAt), s.ReviewCount, s.ApprovalCount, s.DismissedCount)
		}
		if s.Status != "open" || s.User != "u" || s.UpdatedAt != nil {
			t.Fatalf("a review-created object: %+v", s)
		}
	})
}

func TestApplyReview_LeavesPullRequestFieldsToPullRequestDeliveries(t *testing.T) {
	pr := &stablev1.PullRequest{}
	applyPullRequest(pr, prChange("p", "closed", stablev1.PullRequestMerged, "13:00:00"))
	applyReview(pr, reviewChange("r", "submitted", "approved", "11:00:00"))
	if pr.Spec.Status != "merged" || pr.Spec.Title != "closed" || pr.Status.LastDeliveryID != "p" {
		t.Fatalf("a review moved the pull request's own fields: %+v", pr.Spec)
	}
	// And a pull_request delivery replaces what a review filled in, whatever its time.
	pr = &stablev1.PullRequest{}
	applyReview(pr, reviewChange("r", "submitted", "approved", "11:00:00"))
	if !applyPullRequest(pr, prChange("p", "opened", stablev1.PullRequestOpen, "09:00:00")) || pr.Spec.Title != "opened" {
		t.Fatalf("pull_request delivery not applied over a review-created object: %+v", pr.Spec)
	}
	if pr.Spec.ReviewCount != 1 {
		t.Fatalf("review count lost: %d", pr.Spec.ReviewCount)
	}
}

func identifiedReview(id, action, state, submitted string, reviewID int64) githubevent.Change {
	ch := reviewChange(id, action, state, submitted)
	ch.Review.ID = reviewID
	return ch
}

// backfilledReviews is what githubevent.FromAPIReviews builds from a
// review list: states as the list has them now (a dismissed approval is
// DISMISSED).
func backfilledReviews(id string, listed ...githubevent.ReviewChange) githubevent.Change {
	ch := reviewChange(id, stablev1.ActionReconciled, "", "09:30:00")
	ch.Review.Listed = listed
	return ch
}

func listed(reviewID int64, state, submitted string) githubevent.ReviewChange {
	return githubevent.ReviewChange{Action: "submitted", ID: reviewID, State: state, SubmittedAt: at(submitted)}
}

// applyAnyReview is what the recorder does with a change on a PullRequest: a
// delivery (applyReview) or a reconcile pass's review list.
func applyAnyReview(pr *stablev1.PullRequest, ch githubevent.Change) {
	if ch.Review.Action == stablev1.ActionReconciled {
		applyReconciledReviews(pr, ch, testNow)
		return
	}
	applyReview(pr, ch)
}

// A review delivered and also read by a backfill is counted once, in
// every order, and the backfill's list (which has lost that a dismissed
// review was an approval) never undoes what a delivery told.
func TestReconciledReviews_CountedOnceWithDeliveriesInEveryOrder(t *testing.T) {
	backfill := backfilledReviews("reconciled-1",
		listed(101, githubevent.ReviewCommented, "10:00:00"),
		listed(102, githubevent.ReviewDismissed, "11:00:00"),
		listed(103, githubevent.ReviewApproved, "12:30:00"))
	changes := []githubevent.Change{
		identifiedReview("a", "submitted", "commented", "10:00:00", 101),
		identifiedReview("b", "submitted", "approved", "11:00:00", 102),
		identifiedReview("c", "dismissed", "dismissed", "11:00:00", 102),
		identifiedReview("d", "submitted", "approved", "12:30:00", 103),
		backfill,
		// A second pass reading the same list.
		backfill,
	}
	permutations(changes, func(order []githubevent.Change) {
		pr := &stablev1.PullRequest{}
		for _, ch := range order {
			applyAnyReview(pr, ch)
		}
		s := pr.Spec
		if s.ReviewCount != 3 || s.ApprovalCount != 2 || s.DismissedCount != 1 ||
			fmtT(s.FirstReviewAt) != "10:00:00" || fmtT(s.FirstApprovalAt) != "11:00:00" {
			t.Fatalf("order %v: reviews %d approvals %d dismissed %d first %s approval %s", ids(order),
				s.ReviewCount, s.ApprovalCount, s.DismissedCount, fmtT(s.FirstReviewAt), fmtT(s.FirstApprovalAt))
		}
	})
}

func TestReconciledReviews_FromScratchAndOnOlderObjects(t *testing.T) {
	list := backfilledReviews("reconciled-1",
		listed(101, githubevent.ReviewCommented, "10:00:00"),
		listed(102, githubevent.ReviewApproved, "11:00:00"))
	for _, tt := range []struct {
		name string
		// before is the object's state: counted by deliveries of a
		// gitpulse that kept no review ids.
		before                        stablev1.PullRequestSpec
		reviews, approvals, dismissed int64
		moved                         bool
	}{
		{name: "no object yet", reviews: 2, approvals: 1, moved: true},
		{name: "counted before ids were kept: not counted again",
			before:  stablev1.PullRequestSpec{Status: "open", ReviewCount: 2, ApprovalCount: 1, FirstReviewAt: timeOrNil(at("10:00:00")), FirstApprovalAt: timeOrNil(at("11:00:00"))},
			reviews: 2, approvals: 1},
		{name: "one counted before, one lost",
			before:  stablev1.PullRequestSpec{Status: "open", ReviewCount: 1, FirstReviewAt: timeOrNil(at("10:00:00"))},
			reviews: 2, approvals: 1, moved: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pr := &stablev1.PullRequest{Spec: tt.before}
			moved := applyReconciledReviews(pr, list, testNow)
			s := pr.Spec
			if moved != tt.moved || s.ReviewCount != tt.reviews || s.ApprovalCount != tt.approvals || s.DismissedCount != tt.dismissed {
				t.Fatalf("moved %v reviews %d approvals %d dismissed %d; want %v %d %d %d", moved,
					s.ReviewCount, s.ApprovalCount, s.DismissedCount, tt.moved, tt.reviews, tt.approvals, tt.dismissed)
			}
			if fmtT(s.FirstReviewAt) != "10:00:00" || fmtT(s.FirstApprovalAt) != "11:00:00" {
				t.Fatalf("first review %s approval %s", fmtT(s.FirstReviewAt), fmtT(s.FirstApprovalAt))
			}
			if again := applyReconciledReviews(pr, list, testLater); again {
				t.Fatal("the same list moved the object a second time")
			}
		})
	}
}
