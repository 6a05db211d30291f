package githubevent

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// TypePullRequestReview is the CloudEvent type of review deliveries.
const TypePullRequestReview = TypePrefix + "pull_request_review"

// TimeFromSubmittedAt: a review delivery is placed at review.submitted_at.
const TimeFromSubmittedAt TimeSource = "review.submitted_at"

// Review states as webhook payloads spell them (GitHub's webhook docs for
// pull_request_review; the REST API upper-cases them, so they are compared
// lower-cased).
const (
	ReviewApproved         = "approved"
	ReviewChangesRequested = "changes_requested"
	ReviewCommented        = "commented"
	ReviewDismissed        = "dismissed"
)

// ReviewChange is what a pull_request_review delivery says. Fields read from
// both shapes: action, review.{id, state, submitted_at, user.login}, the
// embedded pull_request (number, title, user, head/base ref and sha, URL,
// state, created/closed/merged times; merged is told by merged_at, because
// the adapter's struct for it has no merged field) and the repository.
// review.commit_id is dropped by the adapter's v5 struct, so it is not used.
type ReviewChange struct {
	// Action is GitHub's: submitted, edited or dismissed.
	Action string
	// ID is the review's id.
	ID int64
	// State is the review's state, lower-cased (approved, commented,
	// changes_requested, dismissed).
	State string
	// SubmittedAt is when the review was submitted (zero when absent).
	SubmittedAt time.Time
	// Reviewer is the review author's login.
	Reviewer string
	// PullRequest is the pull request the review is about, as the
	// payload describes it (used only to fill an object that does not
	// exist yet; pull_request deliveries own those fields).
	PullRequest PullRequestChange
	// Listed, for a Change built from the REST API (FromAPIReviews, Action
	// "reconciled"), is every submitted review of the pull request.
	Listed []ReviewChange
}

func (ch *Change) fromReview(p *github.PullRequestReviewEvent) error {
	pr, rv := p.GetPullRequest(), p.GetReview()
	if pr == nil || rv == nil || p.GetAction() == "" {
		return fmt.Errorf("%w: pull_request_review without review, pull_request or action", ErrMismatch)
	}
	ch.Repository, ch.RepositoryID = p.GetRepo().GetFullName(), p.GetRepo().GetID()
	if err := checkRepository(ch.Repository); err != nil {
		return err
	}
	if pr.GetNumber() <= 0 {
		return fmt.Errorf("%w: pull_request_review without a positive pull request number", ErrMismatch)
	}
	ch.Sender = p.GetSender().GetLogin()
	switch p.GetAction() {
	case "submitted", "edited", "dismissed":
	default:
		// GitHub documents no other; a new one is acknowledged, not
		// counted under a label nobody declared.
		ch.Ignored = "pull_request_review action " + p.GetAction() + " is not recorded"
		return nil
	}
	c := &ReviewChange{
		Action:      p.GetAction(),
		ID:          rv.GetID(),
		State:       strings.ToLower(rv.GetState()),
		SubmittedAt: orZero(rv.GetSubmittedAt()),
		Reviewer:    rv.GetUser().GetLogin(),
		PullRequest: pullRequestFields(pr),
	}
	var known bool
	if c.PullRequest.State, known = pullRequestState(pr); !known {
		c.PullRequest.State = stablev1.PullRequestOpen
	}
	// The review's own time; a review carries no other. Without it (a
	// pending review is never delivered submitted, but be safe) the pull
	// request's updated_at, then the CloudEvent time.
	switch {
	case !c.SubmittedAt.IsZero():
		ch.OccurredAt, ch.TimeSource = c.SubmittedAt, TimeFromSubmittedAt
	case present(pr.GetUpdatedAt()):
		ch.OccurredAt, ch.TimeSource = pr.GetUpdatedAt().Time, TimeFromUpdatedAt
	}
	ch.Review = c
	return nil
}

// reviewRules: a pull_request_review delivery, or a review list read from
// the API alone; both land on the PullRequest.
type reviewRules struct{}

func (reviewRules) kind() string { return KindPullRequest }

// action is a review Event's action (fromReview records only these three;
// a review list read from the API counts as submitted).
func (reviewRules) action(ch Change) string {
	switch ch.Review.Action {
	case "edited":
		return stablev1.ActionReviewEdited
	case "dismissed":
		return stablev1.ActionReviewDismissed
	}
	return stablev1.ActionReviewSubmitted
}

func (rr reviewRules) reason(ch Change) string {
	switch rr.action(ch) {
	case stablev1.ActionReviewEdited:
		return stablev1.ReasonPullRequestReviewEdited
	case stablev1.ActionReviewDismissed:
		return stablev1.ReasonPullRequestReviewDismissed
	}
	return stablev1.ReasonPullRequestReviewed
}

func (reviewRules) message(ch Change, who string) string {
	r := ch.Review
	verb := r.Action
	switch r.Action {
	case "submitted":
		verb = "submitted a review (" + strings.ReplaceAll(r.State, "_", " ") + ") of"
	case "edited":
		verb = "edited a review of"
	case "dismissed":
		verb = "dismissed a review of"
	case stablev1.ActionReconciled:
		verb = fmt.Sprintf("read %d reviews of", len(r.Listed))
	}
	return fmt.Sprintf("%s %s pull request #%d %q in %s", who, verb, r.PullRequest.Number, r.PullRequest.Title, ch.Repository)
}
