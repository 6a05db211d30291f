package githubevent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/google/go-github/v60/github"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// Changes built from the GitHub REST API rather than from a delivery, for
// reconcile passes (backfill and drift repair, pkg/reconcile). They carry a
// synthetic DeliveryID that depends only on what the API said, so two passes
// that read the same state build the same Change, and the recorder's
// exactly-once bookkeeping (recent-deliveries, the Event's name) makes the
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
// object carries, ordered by the same updated_at.
func FromAPIPullRequest(repository string, pr *github.PullRequest) (Change, error) {
	if err := checkRepository(repository); err != nil {
		return Change{}, err
	}
	if pr.GetNumber() <= 0 || !present(pr.GetUpdatedAt()) {
		return Change{}, fmt.Errorf("%w: pull request without a number or updated_at", ErrMismatch)
	}
	c := &PullRequestChange{
		Action:     stablev1.ActionReconciled,
		Number:     int64(pr.GetNumber()),
		Title:      pr.GetTitle(),
		User:       pr.GetUser().GetLogin(),
		HeadBranch: pr.GetHead().GetRef(),
		BaseBranch: pr.GetBase().GetRef(),
		HeadSHA:    pr.GetHead().GetSHA(),
		URL:        pr.GetHTMLURL(),
		// The list endpoint has no "merged" member; merged_at says it.
		Merged:   pr.GetMerged() || present(pr.GetMergedAt()),
		Draft:    pr.Draft,
		OpenedAt: orZero(pr.GetCreatedAt()),
		ClosedAt: orZero(pr.GetClosedAt()),
		MergedAt: orZero(pr.GetMergedAt()),
	}
	switch {
	case c.Merged:
		c.State = stablev1.PullRequestMerged
	case pr.GetState() == "closed":
		c.State = stablev1.PullRequestClosed
	case pr.GetState() == "open":
		c.State = stablev1.PullRequestOpen
	default:
		return Change{}, fmt.Errorf("%w: pull request state %q", ErrMismatch, pr.GetState())
	}
	updated := pr.GetUpdatedAt().UTC().Truncate(time.Second)
	return Change{
		DeliveryID: reconciledID("pull_request", repository, strconv.Itoa(pr.GetNumber()),
			updated.Format(time.RFC3339), string(c.State), c.HeadSHA, c.Title),
		Event:       "pull_request",
		Repository:  repository,
		Sender:      "gitpulse-reconcile",
		OccurredAt:  updated,
		TimeSource:  TimeFromUpdatedAt,
		PullRequest: c,
	}, nil
}

// FromAPIBranch is the Change a branch as GET /repos/{owner}/{repo}/branches
// returns it (go-github's Branch, repos.go ListBranches) tells: that it
// exists, with its head commit. The list carries no time, so the Change has
// none either (OccurredAt zero): the recorder only creates a missing object
// from it and never moves an existing one (pkg/recorder, reconciled.go).
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
