package recorder

// Lead time attribution: which merged pull requests a deployment shipped.
// The rule and its limits are in docs/dora.md.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// Why a pull request was attributed to a deployment (DeployedChange.By).
const (
	attributedBySHA    = "sha"
	attributedByWindow = "window"
)

// leadTimeInputs are the repository's pull requests and deployments as the
// API server had them when a success status arrived.
type leadTimeInputs struct {
	pullRequests []stablev1.PullRequest
	deployments  []stablev1.GitHubDeployment
}

// leadTimeInputs lists the namespace's pull requests and deployments of
// repository (by the repository labels, then the exact spec.repository:
// label values are a lossy form of the name).
func (r *Recorder) leadTimeInputs(ctx context.Context, repository string) (*leadTimeInputs, error) {
	owner, name, _ := strings.Cut(repository, "/")
	sel := labels.SelectorFromSet(labels.Set{
		stablev1.LabelRepositoryOwner: naming.LabelValue(owner),
		stablev1.LabelRepositoryName:  naming.LabelValue(name),
	}).String()
	client := r.opts.Gitpulse.StableV1()
	prs, err := client.PullRequests(r.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing pull requests of %s for lead time: %w", repository, err)
	}
	deps, err := client.GitHubDeployments(r.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing deployments of %s for lead time: %w", repository, err)
	}
	in := &leadTimeInputs{}
	for _, pr := range prs.Items {
		if pr.Spec.Repository == repository {
			in.pullRequests = append(in.pullRequests, pr)
		}
	}
	for _, d := range deps.Items {
		if d.Spec.Repository == repository {
			in.deployments = append(in.deployments, d)
		}
	}
	return in, nil
}

// attribute sets o.Spec.Changes to the merged pull requests o shipped to
// its environment, given that it has succeeded:
//
//   - those whose merge commit SHA is the deployed SHA ("sha"), and
//   - those merged into the deployed ref (the pull request's base branch)
//     after the environment's previous successful deployment was created
//     and no later than o was created ("window"). The previous successful
//     deployment is the one of the same repository and environment with a
//     success and the latest creation time before o's. Without one (the
//     first success gitpulse sees there) only "sha" applies: everything ever
//     merged is not what the first deployment shipped.
//
// The set is recomputed from what the API server holds each time a success
// status of o is recorded, so a later success status (or a redelivery)
// picks up pull requests recorded since. It reports whether it changed.
func attribute(o *stablev1.GitHubDeployment, in *leadTimeInputs) bool {
	s := &o.Spec
	if s.CreatedAt == nil {
		return false
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
	slices.SortFunc(changes, func(a, b stablev1.DeployedChange) int { return cmp.Compare(a.Number, b.Number) })
	if equality.Semantic.DeepEqual(changes, s.Changes) || (len(changes) == 0 && len(s.Changes) == 0) {
		return false
	}
	s.Changes, s.ChangeCount = changes, int64(len(changes))
	return true
}
