package metrics

// Which recorder Events count, and under which key.

import (
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/eventcount"
)

// Reasons an Event of the recorder is not countable (label values of
// gitpulse_metrics_events_uncountable_total).
const (
	reasonMissingRepository = "missing_repository"
	reasonInvalidRepository = "invalid_repository"
	reasonUnknownKind       = "unknown_kind"
	reasonMissingAction     = "missing_action"
	reasonUnknownAction     = "unknown_action"
	// reasonInvalidResourceVersion: the resourceVersion is not an integer,
	// so the Event cannot be placed against the checkpoint's watermark.
	reasonInvalidResourceVersion = "invalid_resource_version"
	// reasonMissingEnvironment: a deployment Event without its
	// environment annotation.
	reasonMissingEnvironment = "missing_environment"
)

// otherAction is the action label of pull request actions GitHub may add
// later: counted (the total stays exact) without unbounded label values.
const otherAction = "other"

// The actions counted under their own label value (stablev1's one list).
var (
	pullRequestActions = setOf(stablev1.PullRequestActions)
	branchActions      = setOf(stablev1.BranchActions)
)

func setOf(values []string) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}

// classify returns the counter key of a recorder Event (with the raw
// repository), or why it cannot be counted.
func classify(ev *cachedEvent) (eventcount.Key, string) {
	repo := ev.Repository.Value()
	if repo == "" {
		return eventcount.Key{}, reasonMissingRepository
	}
	if !validRepository(repo) {
		return eventcount.Key{}, reasonInvalidRepository
	}
	kind := ev.Kind.Value()
	key := eventcount.Key{Kind: kind, Namespace: ev.Namespace.Value(), Repository: repo, Action: ev.Action.Value()}
	switch kind {
	case kindPullRequest:
		if key.Action == "" {
			return eventcount.Key{}, reasonMissingAction
		}
		if reviewActions[key.Action] {
			key.Kind = keyKindReview // dora.go
			break
		}
		if !pullRequestActions[key.Action] {
			key.Action = otherAction
		}
	case kindBranch:
		if key.Action == "" {
			return eventcount.Key{}, reasonMissingAction
		}
		if !branchActions[key.Action] {
			return eventcount.Key{}, reasonUnknownAction
		}
	case kindGitHubDeployment:
		return classifyDeployment(ev, key) // dora.go
	default:
		return eventcount.Key{}, reasonUnknownKind
	}
	return key, ""
}

// validRepository accepts what the recorder accepts (stablev1's one check):
// GitHub's owner/name, so no label value carries whitespace or a control
// character.
func validRepository(repo string) bool { return stablev1.ValidateRepository(repo) == nil }
