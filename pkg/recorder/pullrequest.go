package recorder

// A pull request: its PullRequest object, and every rule for writing a
// pull_request delivery or a pull request read from the API into it. Its
// reviews are review.go's; a merge's lead time attribution is leadtime.go's.

import (
	"context"
	"strconv"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// pullRequests is the PullRequest kind, as the write engine knows it.
var pullRequests = objectKind[*stablev1.PullRequest]{
	name: githubevent.KindPullRequest,
	client: func(r *Recorder) objectClient[*stablev1.PullRequest] {
		return r.opts.Gitpulse.StableV1().PullRequests(r.opts.Namespace)
	},
	identity: func(o *stablev1.PullRequest) identity {
		return identity{o.Spec.Repository, o.Spec.RepositoryID, strconv.FormatInt(o.Spec.Number, 10)}
	},
	keyField: "spec.number",
	list: func(ctx context.Context, r *Recorder, opts metav1.ListOptions) ([]*stablev1.PullRequest, error) {
		l, err := r.opts.Gitpulse.StableV1().PullRequests(r.opts.Namespace).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		return pointers(l.Items), nil
	},
	rename: func(o *stablev1.PullRequest, repository string, id int64) {
		o.Spec.Repository = repository
		if id > 0 {
			o.Spec.RepositoryID = id
		}
	},
	spec: func(o *stablev1.PullRequest) any { return o.Spec },
	status: func(o *stablev1.PullRequest) recordedStatus {
		s := &o.Status
		return recordedStatus{s, &s.Bookkeeping}
	},
}

// pullRequestNames are where the PullRequest of number in ch's repository
// is.
func pullRequestNames(ch githubevent.Change, number int64) objectNames {
	return objectNames{
		name:     naming.PullRequestName(ch.Repository, ch.RepositoryID, number),
		identity: identity{ch.Repository, ch.RepositoryID, strconv.FormatInt(number, 10)},
	}
}

// pointers are the addresses of items' elements.
func pointers[E any](items []E) []*E {
	out := make([]*E, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// deliverPullRequest records a pull_request delivery and, when it says the
// pull request is merged, brings the attribution of the repository's
// successful deployments up to date: the merge may be recorded after the
// deployment that shipped it succeeded.
func (r *Recorder) deliverPullRequest(ctx context.Context, ch githubevent.Change, digest string) (upsertResult, error) {
	_, res, err := upsert(ctx, r, pullRequests, write[*stablev1.PullRequest]{
		names:    pullRequestNames(ch, ch.PullRequest.Number),
		namedAt:  ch.NamedAt(),
		delivery: ch.DeliveryID,
		digest:   digest,
		apply:    func(o *stablev1.PullRequest) bool { return applyPullRequest(o, ch) },
		isNew:    ch.PullRequest.Action == stablev1.ActionOpened,
	})
	if err != nil || res.replayed || !ch.PullRequest.Merged {
		return res, err
	}
	return res, r.ship(ctx, ch.Repository, ch.RepositoryID, "")
}

// applyPullRequest moves pr to what ch says, unless ch is older than what pr
// already reflects, or would un-merge it (merged is final on GitHub, so a
// same-second "converted_to_draft" or a late "synchronize" never reopens a
// merged pull request). It reports whether the spec moved.
func applyPullRequest(pr *stablev1.PullRequest, ch githubevent.Change) bool {
	c := ch.PullRequest
	numberPullRequest(pr, ch.Repository, c.Number)
	s := &pr.Spec
	if !newer(ch.OccurredAt, s.UpdatedAt) || (s.Merged && !c.Merged) {
		if s.Status == "" { // never leave the required fields empty
			s.Status = string(c.State)
		}
		return false
	}
	if c.GitHubID > 0 {
		s.GitHubID = c.GitHubID
	}
	s.User = c.User
	s.Branch = c.HeadBranch
	s.Status = string(c.State)
	s.Title = c.Title
	s.BaseBranch = c.BaseBranch
	s.HeadSHA = c.HeadSHA
	s.URL = c.URL
	s.Merged = c.Merged
	if c.Draft != nil { // unknown (adapter shape): keep what we know
		s.Draft = *c.Draft
	}
	s.OpenedAt = timeOrNil(c.OpenedAt)
	s.ClosedAt = timeOrNil(c.ClosedAt)
	s.MergedAt = timeOrNil(c.MergedAt)
	s.MergeCommitSHA = c.MergeCommitSHA
	s.UpdatedAt = timeOrNil(ch.OccurredAt)
	markApplied(pullRequests.status(pr), ch)
	return true
}

// reconcilePullRequest writes a pull request read from the API, with the
// delivery's rules (it never moves backwards: updated_at, merged is final),
// and its reviews when the pass listed them
// (githubevent.FromAPIPullRequestWithReviews; review.go). A pull request
// from the API may be anything but new to GitHub.
func (r *Recorder) reconcilePullRequest(ctx context.Context, ch githubevent.Change, now metav1.Time) (upsertResult, error) {
	return reconcileWrite(ctx, r, pullRequests, write[*stablev1.PullRequest]{
		names:    pullRequestNames(ch, ch.PullRequest.Number),
		namedAt:  ch.NamedAt(),
		delivery: ch.DeliveryID,
		apply: func(o *stablev1.PullRequest) bool {
			before := o.Spec.DeepCopy()
			moved := applyPullRequest(o, ch) && !equality.Semantic.DeepEqual(*before, o.Spec)
			if ch.Review != nil && applyReconciledReviews(o, ch, now) {
				moved = true
			}
			if moved {
				markReconciled(&o.Status.Bookkeeping, now)
			}
			return moved
		},
	})
}

// fillPullRequest fills a spec from a review's copy of its pull request
// (review deliveries and review lists): only for a pull request the
// recorder has not seen yet, and without spec.updatedAt, so that the first
// pull_request delivery, whatever its time, replaces those fields. It
// reports whether it filled.
func fillPullRequest(s *stablev1.PullRequestSpec, c githubevent.PullRequestChange) bool {
	if s.UpdatedAt != nil || s.Status != "" {
		return false
	}
	s.User, s.Branch, s.Status, s.Title = c.User, c.HeadBranch, string(c.State), c.Title
	s.BaseBranch, s.HeadSHA, s.URL, s.Merged = c.BaseBranch, c.HeadSHA, c.URL, c.Merged
	s.OpenedAt, s.ClosedAt, s.MergedAt = timeOrNil(c.OpenedAt), timeOrNil(c.ClosedAt), timeOrNil(c.MergedAt)
	return true
}

// numberPullRequest writes what names a pull request on its object: the
// repository and the number.
func numberPullRequest(pr *stablev1.PullRequest, repository string, number int64) {
	s := &pr.Spec
	s.Repository, s.Number, s.ID = repository, number, strconv.FormatInt(number, 10)
}
