package githubevent

import (
	"github.com/google/go-github/v60/github"
)

// A pull_request delivery is the recorder's most frequent and one of its
// largest (~25 KB: the pull request with both repositories, every user's
// URLs, _links). The recorder reads a few dozen members of it, so it
// decodes only those, into go-github's own types (the same JSON
// spellings, the same Timestamp that takes RFC 3339 and Unix seconds),
// instead of the whole github.PullRequestEvent: the profile of a loaded
// recorder had go-github's decode at a sixth of its CPU. A member it reads
// with the wrong JSON type is refused as before; the members it does not
// read are only checked to be JSON. members.go finds the members it reads
// in one validating pass and decodes only those.

// slimPullRequestEvent is what fromPullRequest reads of a pull_request
// payload.
type slimPullRequestEvent struct {
	slimPullRequestPayload
	Number *int `json:"number,omitempty"`
}

// slimPullRequestPayload is what the recorder reads of both a pull_request
// and a pull_request_review payload (embedded: encoding/json reads its
// members as the outer struct's).
type slimPullRequestPayload struct {
	Action      *string          `json:"action,omitempty"`
	PullRequest *slimPullRequest `json:"pull_request,omitempty"`
	Repo        *slimRepository  `json:"repository,omitempty"`
	Sender      *slimUser        `json:"sender,omitempty"`
}

// slimPullRequest is what pullRequestFields, pullRequestState, draftOf and
// fromPullRequest read of a pull request.
type slimPullRequest struct {
	ID             *int64            `json:"id,omitempty"`
	Number         *int              `json:"number,omitempty"`
	State          *string           `json:"state,omitempty"`
	Title          *string           `json:"title,omitempty"`
	Draft          *bool             `json:"draft,omitempty"`
	Merged         *bool             `json:"merged,omitempty"`
	MergeCommitSHA *string           `json:"merge_commit_sha,omitempty"`
	HTMLURL        *string           `json:"html_url,omitempty"`
	CreatedAt      *github.Timestamp `json:"created_at,omitempty"`
	UpdatedAt      *github.Timestamp `json:"updated_at,omitempty"`
	ClosedAt       *github.Timestamp `json:"closed_at,omitempty"`
	MergedAt       *github.Timestamp `json:"merged_at,omitempty"`
	User           *slimUser         `json:"user,omitempty"`
	Head           *slimBranch       `json:"head,omitempty"`
	Base           *slimBranch       `json:"base,omitempty"`
}

type slimBranch struct {
	Ref *string `json:"ref,omitempty"`
	SHA *string `json:"sha,omitempty"`
}

type slimRepository struct {
	ID       *int64  `json:"id,omitempty"`
	FullName *string `json:"full_name,omitempty"`
}

type slimUser struct {
	Login *string `json:"login,omitempty"`
}

func (u *slimUser) github() *github.User {
	if u == nil {
		return nil
	}
	return &github.User{Login: u.Login}
}

func (b *slimBranch) github() *github.PullRequestBranch {
	if b == nil {
		return nil
	}
	return &github.PullRequestBranch{Ref: b.Ref, SHA: b.SHA}
}

func (r *slimRepository) github() *github.Repository {
	if r == nil {
		return nil
	}
	return &github.Repository{ID: r.ID, FullName: r.FullName}
}

func (p *slimPullRequest) github() *github.PullRequest {
	if p == nil {
		return nil
	}
	return &github.PullRequest{
		ID: p.ID, Number: p.Number, State: p.State, Title: p.Title, Draft: p.Draft, Merged: p.Merged,
		MergeCommitSHA: p.MergeCommitSHA, HTMLURL: p.HTMLURL,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, ClosedAt: p.ClosedAt, MergedAt: p.MergedAt,
		User: p.User.github(), Head: p.Head.github(), Base: p.Base.github(),
	}
}

// parsePullRequestEvent decodes a pull_request payload's members the
// recorder reads into a github.PullRequestEvent (the others left nil).
func parsePullRequestEvent(data []byte) (any, error) {
	var s slimPullRequestEvent
	if err := decodeFast(data, &s, (*slimPullRequestEvent).members); err != nil {
		return nil, err
	}
	return &github.PullRequestEvent{Action: s.Action, Number: s.Number, Sender: s.Sender.github(),
		Repo: s.Repo.github(), PullRequest: s.PullRequest.github()}, nil
}

// A pull_request_review delivery carries the same pull request as a
// pull_request one, and the review: go-github's whole
// PullRequestReviewEvent made 739 allocations of octokit's first example as
// the adapter sends it (BenchmarkParse_AdapterShapedPayloads), for the
// members below.

// slimPullRequestReviewEvent is what fromReview reads of a
// pull_request_review payload.
type slimPullRequestReviewEvent struct {
	slimPullRequestPayload
	Review *slimReview `json:"review,omitempty"`
}

type slimReview struct {
	ID          *int64            `json:"id,omitempty"`
	State       *string           `json:"state,omitempty"`
	SubmittedAt *github.Timestamp `json:"submitted_at,omitempty"`
	User        *slimUser         `json:"user,omitempty"`
}

// parsePullRequestReviewEvent decodes a pull_request_review payload's
// members the recorder reads into a github.PullRequestReviewEvent (the
// others left nil).
func parsePullRequestReviewEvent(data []byte) (any, error) {
	var s slimPullRequestReviewEvent
	if err := decodeFast(data, &s, (*slimPullRequestReviewEvent).members); err != nil {
		return nil, err
	}
	e := &github.PullRequestReviewEvent{Action: s.Action, Sender: s.Sender.github(),
		Repo: s.Repo.github(), PullRequest: s.PullRequest.github()}
	if r := s.Review; r != nil {
		e.Review = &github.PullRequestReview{ID: r.ID, State: r.State, SubmittedAt: r.SubmittedAt, User: r.User.github()}
	}
	return e, nil
}
