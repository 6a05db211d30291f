package githubevent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// Changes built from the GitHub REST API rather than from a delivery, for
// reconcile passes (backfill and drift repair, pkg/reconcile). They carry a
// synthetic DeliveryID that depends only on what the API said, so two passes
// that read the same state build the same Change, and the recorder's
// exactly-once bookkeeping (status.recentDeliveries, the Event's name) makes the
// second a no-op. The prefix can never be a GitHub GUID.

// ReconciledIDPrefix starts every synthetic DeliveryID.
const ReconciledIDPrefix = "reconciled-"

func reconciledID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return ReconciledIDPrefix + hex.EncodeToString(h.Sum(nil)[:10])
}

// FromAPIPullRequest is the Change a pull request as GET
// /repos/{owner}/{repo}/pulls returns it (go-github's PullRequest, pulls.go
// List) tells: the same fields a pull_request delivery's pull_request
// object carries, ordered by the same updated_at. Its base repository is the
// repository listed: its id is the Change's RepositoryID, and its full name,
// when valid, the Change's Repository (GitHub answers a renamed
// repository's old name with its new one, through a 301 go-github follows).
func FromAPIPullRequest(repository string, pr *github.PullRequest) (Change, error) {
	if base := pr.GetBase().GetRepo(); checkRepository(base.GetFullName()) == nil {
		repository = base.GetFullName()
	}
	if err := checkRepository(repository); err != nil {
		return Change{}, err
	}
	if pr.GetNumber() <= 0 || !present(pr.GetUpdatedAt()) {
		return Change{}, fmt.Errorf("%w: pull request without a number or updated_at", ErrMismatch)
	}
	c := pullRequestFields(pr)
	c.Action = stablev1.ActionReconciled
	c.Draft = pr.Draft
	// The pulls list carries merge_commit_sha as a delivery does (lead
	// time attribution by SHA needs it).
	c.MergeCommitSHA = pr.GetMergeCommitSHA()
	var known bool
	if c.State, known = pullRequestState(pr); !known {
		return Change{}, fmt.Errorf("%w: pull request state %q", ErrMismatch, pr.GetState())
	}
	updated := pr.GetUpdatedAt().UTC().Truncate(time.Second)
	return Change{
		DeliveryID: reconciledID("pull_request", repository, strconv.Itoa(pr.GetNumber()),
			updated.Format(time.RFC3339), string(c.State), c.HeadSHA, c.Title),
		Event:        "pull_request",
		Repository:   repository,
		RepositoryID: max(pr.GetBase().GetRepo().GetID(), 0),
		Sender:       "gitpulse-reconcile",
		OccurredAt:   updated,
		TimeSource:   TimeFromUpdatedAt,
		PullRequest:  &c,
	}, nil
}

// FromAPIBranch is the Change a branch as GET /repos/{owner}/{repo}/branches
// returns it (go-github's Branch, repos.go ListBranches) tells: that it
// exists, with its head commit. The list carries no time, so the Change has
// none either (OccurredAt zero): the recorder only creates a missing object
// from it and never moves an existing one (pkg/recorder, branch.go).
func FromAPIBranch(repository string, b *github.Branch) (Change, error) {
	if err := checkRepository(repository); err != nil {
		return Change{}, err
	}
	if b.GetName() == "" {
		return Change{}, fmt.Errorf("%w: branch without a name", ErrMismatch)
	}
	sha := b.GetCommit().GetSHA()
	return Change{
		DeliveryID: reconciledID("branch", repository, b.GetName(), sha),
		Event:      "create",
		Repository: repository,
		Sender:     "gitpulse-reconcile",
		TimeSource: TimeFromArrival,
		Branch:     &BranchChange{Action: stablev1.ActionReconciled, Name: b.GetName(), HeadSHA: sha},
	}, nil
}

// FromAPIBranchAbsent is the Change a complete branch list of repository
// (GET /repos/{owner}/{repo}/branches, every page), read at listedAt,
// tells of a branch gitpulse records as existing that the list lacks: it
// was deleted, and its delete delivery was lost. It is ordered at
// listedAt, so a create or push delivered with a later time still wins
// (the branch was created again after the list was read).
func FromAPIBranchAbsent(repository, name string, listedAt time.Time) (Change, error) {
	if err := checkRepository(repository); err != nil {
		return Change{}, err
	}
	if name == "" {
		return Change{}, fmt.Errorf("%w: branch without a name", ErrMismatch)
	}
	at := listedAt.UTC().Truncate(time.Second)
	return Change{
		DeliveryID: reconciledID("branch-absent", repository, name, at.Format(time.RFC3339)),
		Event:      "delete",
		Repository: repository,
		Sender:     "gitpulse-reconcile",
		OccurredAt: at,
		TimeSource: TimeFromArrival,
		Branch:     &BranchChange{Action: stablev1.ActionDeleted, Name: name},
	}, nil
}

// FromAPIReviews is the Change the reviews of pull request pr, as GET
// /repos/{owner}/{repo}/pulls/{pull_number}/reviews returns them (GitHub's
// REST docs "List reviews for a pull request": every review, in
// chronological order, state upper-cased: APPROVED, CHANGES_REQUESTED,
// COMMENTED, DISMISSED, PENDING; go-github pulls_reviews.go ListReviews),
// tell. Each listed review becomes a ReviewChange with Action "submitted"
// (and, when its state is DISMISSED, also counts as dismissed); pending
// reviews (not submitted, no submitted_at) are left out. A dismissed
// review's original state is not in the list, so whether it was an approval
// is unknown (docs/dora.md). The pull request's own fields come from pr, as
// the pulls list returned it, and only fill an object that does not exist.
func FromAPIReviews(repository string, pr *github.PullRequest, reviews []*github.PullRequestReview) (Change, error) {
	base, err := FromAPIPullRequest(repository, pr)
	if err != nil {
		return Change{}, err
	}
	c := &ReviewChange{Action: stablev1.ActionReconciled, PullRequest: *base.PullRequest}
	parts := []string{"reviews", base.Repository, strconv.Itoa(pr.GetNumber())}
	for _, rv := range reviews {
		state := strings.ToLower(rv.GetState())
		if rv.GetID() <= 0 || state == "pending" || state == "" || !present(rv.GetSubmittedAt()) {
			continue
		}
		at := rv.GetSubmittedAt().UTC().Truncate(time.Second)
		c.Listed = append(c.Listed, ReviewChange{Action: "submitted", ID: rv.GetID(), State: state,
			SubmittedAt: at, Reviewer: rv.GetUser().GetLogin()})
		parts = append(parts, strconv.FormatInt(rv.GetID(), 10), state, at.Format(time.RFC3339))
	}
	return Change{
		DeliveryID:   reconciledID(parts...),
		Event:        "pull_request_review",
		Repository:   base.Repository,
		RepositoryID: base.RepositoryID,
		Sender:       "gitpulse-reconcile",
		OccurredAt:   base.OccurredAt,
		TimeSource:   TimeFromUpdatedAt,
		Review:       c,
	}, nil
}

// FromAPIPullRequestWithReviews is FromAPIPullRequest's Change carrying,
// as its Review, what FromAPIReviews reads from the pull request's review
// list: one Change, so a pass writes a pull request and its reviews in one
// write with one Reconciled Event. Its DeliveryID depends on both.
func FromAPIPullRequestWithReviews(repository string, pr *github.PullRequest, reviews []*github.PullRequestReview) (Change, error) {
	ch, err := FromAPIPullRequest(repository, pr)
	if err != nil {
		return Change{}, err
	}
	rc, err := FromAPIReviews(repository, pr, reviews)
	if err != nil {
		return Change{}, err
	}
	if len(rc.Review.Listed) > 0 {
		ch.Review = rc.Review
		ch.DeliveryID = reconciledID(ch.DeliveryID, rc.DeliveryID)
	}
	return ch, nil
}

// FromAPIDeployment is the Change a deployment and its statuses, as GET
// /repos/{owner}/{repo}/deployments and GET
// .../deployments/{deployment_id}/statuses return them (GitHub's REST docs
// "List deployments" and "List deployment statuses"; go-github
// repos_deployments.go ListDeployments, ListDeploymentStatuses), tell: the
// same fields a deployment_status delivery carries, every status listed
// (in any order: the recorder orders them by their own time and id).
func FromAPIDeployment(repository string, d *github.Deployment, statuses []*github.DeploymentStatus) (Change, error) {
	if d.GetID() <= 0 {
		return Change{}, fmt.Errorf("%w: deployment without an id", ErrMismatch)
	}
	ch := Change{Event: "deployment", Sender: "gitpulse-reconcile"}
	repo := &github.Repository{FullName: github.String(repository)}
	if err := ch.fromDeployment(d, repo, ch.Sender, nil, false); err != nil {
		return Change{}, err
	}
	ch.Sender = "gitpulse-reconcile"
	parts := []string{"deployment", repository, strconv.FormatInt(d.GetID(), 10),
		ch.Deployment.UpdatedAt.UTC().Format(time.RFC3339)}
	ch.Deployment.Statuses = []DeploymentStatusChange{}
	for _, st := range statuses {
		s := DeploymentStatusChange{ID: st.GetID(), State: strings.ToLower(st.GetState()), At: orZero(st.GetUpdatedAt())}
		if s.At.IsZero() {
			s.At = orZero(st.GetCreatedAt())
		}
		if s.ID <= 0 || s.State == "" || s.At.IsZero() || len(s.State) > 40 {
			continue
		}
		s.At = s.At.UTC().Truncate(time.Second)
		ch.Deployment.Statuses = append(ch.Deployment.Statuses, s)
		parts = append(parts, strconv.FormatInt(s.ID, 10), s.State, s.At.Format(time.RFC3339))
	}
	ch.DeliveryID = reconciledID(parts...)
	return ch, nil
}
