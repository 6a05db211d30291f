package recorder

// Lead time attribution: which merged pull requests a deployment shipped.
// The rule and its limits are in docs/dora.md.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// Why a pull request was attributed to a deployment (DeployedChange.By).
const (
	attributedBySHA    = "sha"
	attributedByWindow = "window"
)

// shipped is what attribution reads: the repository's pull requests and
// deployments as the API server had them.
type shipped struct {
	pullRequests []stablev1.PullRequest
	deployments  []stablev1.GitHubDeployment
}

// listShipped lists the namespace's pull requests and deployments of
// repository: by its GitHub id when known (selectable field
// spec.repositoryID: objects not yet following a rename are included), else
// by its name (selectable field spec.repository). A list without
// resourceVersion is a consistent read, which ship's argument needs.
func (r *Recorder) listShipped(ctx context.Context, repository string, repositoryID int64) (*shipped, error) {
	opts := metav1.ListOptions{FieldSelector: repositorySelector(repository).String()}
	ours := func(name string, id int64) bool { return name == repository }
	if repositoryID > 0 {
		opts = metav1.ListOptions{FieldSelector: repositoryIDSelector(repositoryID).String()}
		ours = func(_ string, id int64) bool { return id == repositoryID }
	}
	client := r.opts.Gitpulse.StableV1()
	prs, err := client.PullRequests(r.opts.Namespace).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("listing pull requests of %s for lead time: %w", repository, err)
	}
	deps, err := client.GitHubDeployments(r.opts.Namespace).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("listing deployments of %s for lead time: %w", repository, err)
	}
	in := &shipped{}
	for _, pr := range prs.Items {
		if ours(pr.Spec.Repository, pr.Spec.RepositoryID) {
			in.pullRequests = append(in.pullRequests, pr)
		}
	}
	for _, d := range deps.Items {
		if ours(d.Spec.Repository, d.Spec.RepositoryID) {
			in.deployments = append(in.deployments, d)
		}
	}
	return in, nil
}

// Ship brings the lead time attribution of repository's successful
// deployments up to date with the objects (ship): a reconcile pass calls it
// once per repository after its backfill, so backfilled merges and
// deployments attribute as delivered ones do. It writes nothing when the
// attribution is already there.
func (r *Recorder) Ship(ctx context.Context, repository string) error {
	if !r.ownerAllowed(repository) {
		return nil
	}
	return r.ship(ctx, repository, 0, "")
}

// ship brings the attribution of every successful deployment of repository
// (in environment, or in all when it is "") up to date with what the API
// server holds: each gets the pull requests attribution finds, added to
// those it has (never removed; see below).
//
// Why this is order-safe: a merge and a success are each written before
// ship reads, so of two concurrent deliveries at least one reads the
// other's write, and adding is commutative. Adding only means that a
// deployment that was attributed a window before the environment's
// previous success was known keeps those pull requests too; the lead time
// metric counts each pull request once per environment, for the
// deployment that succeeded first (docs/dora.md).
func (r *Recorder) ship(ctx context.Context, repository string, repositoryID int64, environment string) error {
	in, err := r.listShipped(ctx, repository, repositoryID)
	if err != nil {
		return err
	}
	client := r.opts.Gitpulse.StableV1().GitHubDeployments(r.opts.Namespace)
	for i := range in.deployments {
		d := &in.deployments[i]
		if d.Spec.FirstSuccessAt == nil || (environment != "" && d.Spec.Environment != environment) {
			continue
		}
		found := attribution(&d.Spec, in)
		if contains(d.Spec.Changes, found) {
			continue
		}
		cur := d
		err := retry.RetryOnConflict(r.opts.Backoff, func() error {
			if !addChanges(&cur.Spec, found) {
				return nil
			}
			dropManagedFields(&cur.ObjectMeta)
			_, err := client.Update(ctx, cur, metav1.UpdateOptions{})
			if err == nil {
				return nil
			}
			fresh, gerr := client.Get(ctx, d.Name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			cur = fresh
			return err
		})
		if err != nil {
			return fmt.Errorf("attributing changes to %s/%s: %w", r.opts.Namespace, d.Name, err)
		}
	}
	return nil
}

// attribution is the merged pull requests deployment s shipped to its
// environment, given that it has succeeded:
//
//   - those whose merge commit SHA is the deployed SHA ("sha"), and
//   - those merged into the deployed ref (the pull request's base branch)
//     after the environment's previous successful deployment was created
//     and no later than s was created ("window"). The previous successful
//     deployment is the one of the same repository and environment with a
//     success and the latest creation time before s's. Without one (the
//     first success gitpulse knows of there) only "sha" applies: everything
//     ever merged is not what the first deployment shipped.
func attribution(s *stablev1.GitHubDeploymentSpec, in *shipped) []stablev1.DeployedChange {
	if s.CreatedAt == nil {
		return nil
	}
	var prev *metav1.Time
	for i := range in.deployments {
		d := &in.deployments[i].Spec
		if d.DeploymentID == s.DeploymentID || d.Environment != s.Environment || d.FirstSuccessAt == nil || d.CreatedAt == nil {
			continue
		}
		if d.CreatedAt.Before(s.CreatedAt) && (prev == nil || d.CreatedAt.After(prev.Time)) {
			prev = d.CreatedAt
		}
	}
	ref := strings.TrimPrefix(s.Ref, "refs/heads/")
	var changes []stablev1.DeployedChange
	for i := range in.pullRequests {
		p := &in.pullRequests[i].Spec
		if !p.Merged || p.MergedAt == nil {
			continue
		}
		by := ""
		switch {
		case s.SHA != "" && p.MergeCommitSHA == s.SHA:
			by = attributedBySHA
		case prev != nil && p.BaseBranch == ref && p.MergedAt.After(prev.Time) && !p.MergedAt.After(s.CreatedAt.Time):
			by = attributedByWindow
		default:
			continue
		}
		changes = append(changes, stablev1.DeployedChange{Number: p.Number, OpenedAt: p.OpenedAt, MergedAt: p.MergedAt, By: by})
	}
	return changes
}

// contains reports whether every change in found is in have.
func contains(have, found []stablev1.DeployedChange) bool {
	for _, c := range found {
		if !slices.ContainsFunc(have, func(h stablev1.DeployedChange) bool { return h.Number == c.Number }) {
			return false
		}
	}
	return true
}

// addChanges adds to s the changes of found it does not have (by pull
// request number; an attributed change keeps its first record), sorted by
// number; reports whether it added any.
func addChanges(s *stablev1.GitHubDeploymentSpec, found []stablev1.DeployedChange) bool {
	added := false
	for _, c := range found {
		if !contains(s.Changes, []stablev1.DeployedChange{c}) {
			s.Changes = append(s.Changes, c)
			added = true
		}
	}
	if added {
		slices.SortFunc(s.Changes, func(a, b stablev1.DeployedChange) int { return cmp.Compare(a.Number, b.Number) })
		s.ChangeCount = int64(len(s.Changes))
	}
	return added
}
