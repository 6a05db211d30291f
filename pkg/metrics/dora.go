package metrics

// Review latency and the four DORA keys (docs/dora.md): the families, and
// how review and deployment Events are classified. Kept apart from
// families.go so that the rows there stay the core contract.

import (
	"strings"
	"unicode"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/eventcount"
)

const (
	kindGitHubDeployment = stablev1.KindGitHubDeployment
	// keyKindReview is the counter key kind of review Events: their
	// involvedObject is a PullRequest, but they are not pull_request
	// deliveries and must not count in gitpulse_pull_request_events_total
	// or pull_requests_total.
	keyKindReview = "PullRequestReview"
	// otherState is the state label of deployment states GitHub may add.
	otherState = "other"
)

var (
	reviewActions    = setOf(stablev1.ReviewActions)
	deploymentStates = setOf(stablev1.DeploymentStates)
)

// recoveryBuckets suit restoring an environment in minutes to a week:
// 1m, 5m, 10m, 30m, 1h, 3h, 6h, 12h, 1d, 2d, 1w.
var recoveryBuckets = []float64{60, 300, 600, 1800, 3600, 10800, 21600, 43200, 86400, 172800, 604800}

// classifyDeployment keys a deployment Event: its environment (label-safe)
// and its action (created, or the status state; unknown states count as
// "other" so that the total stays exact).
func classifyDeployment(ev *cachedEvent, key eventcount.Key) (eventcount.Key, string) {
	if key.Action == "" {
		return eventcount.Key{}, reasonMissingAction
	}
	key.Environment = environmentLabel(ev.Environment.Value())
	if key.Environment == "" {
		return eventcount.Key{}, reasonMissingEnvironment
	}
	if key.Action != stablev1.ActionCreated && !deploymentStates[key.Action] {
		key.Action = otherState
	}
	return key, ""
}

// environmentLabel is a GitHub environment name as a label value: GitHub
// allows spaces in them, and no label value of gitpulse carries whitespace
// or a control character, so those become "_".
func environmentLabel(env string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return '_'
		}
		return r
	}, env)
}

// doraFamilies are the review and deployment counters and the review,
// lead-time and recovery histograms; the histograms read the object-derived
// series (objectfamilies.go).
func doraFamilies() []family {
	return []family{
		{
			name:   "gitpulse_pull_request_review_events_total",
			help:   "Pull request review deliveries recorded (submitted, edited, dismissed), one per distinct Event of the recorder.",
			kind:   kindCounter,
			labels: []string{"namespace", "repository", "action"},
			generate: func(v *view) []sample {
				var out []sample
				for k, c := range v.counts {
					if k.Kind == keyKindReview {
						out = append(out, sample{labels: []string{k.Namespace, k.Repository, strings.TrimPrefix(k.Action, "review_")}, value: float64(c)})
					}
				}
				return out
			},
		},
		{
			name:     "gitpulse_deployments_total",
			help:     "Deployment status deliveries recorded, by environment and state, one per distinct Event of the recorder.",
			kind:     kindCounter,
			labels:   []string{"namespace", "repository", "environment", "state"},
			generate: func(v *view) []sample { return v.deploymentCounts() },
		},
		{
			name:   "gitpulse_pull_request_time_to_first_review_seconds",
			help:   "Time from opening to the first submitted review of the pull requests that exist, from their timestamps.",
			kind:   kindHistogram,
			labels: []string{"namespace", "repository"},
			generate: func(v *view) []sample {
				return v.objects.firstReview.samples(false)
			},
		},
		{
			name:   "gitpulse_pull_request_time_to_approval_seconds",
			help:   "Time from opening to the first approving review of the pull requests that exist, from their timestamps.",
			kind:   kindHistogram,
			labels: []string{"namespace", "repository"},
			generate: func(v *view) []sample {
				return v.objects.approval.samples(false)
			},
		},
		{
			name:     "gitpulse_change_lead_time_seconds",
			help:     "Time from a merged pull request's opening to the first success of the first deployment that shipped it to an environment.",
			kind:     kindHistogram,
			labels:   []string{"namespace", "repository", "environment"},
			generate: func(v *view) []sample { return v.objects.leadTimes.samples(true) },
		},
		{
			name:     "gitpulse_failed_deployment_recovery_seconds",
			help:     "Time from a deployment failure in an environment to the next successful deployment there.",
			kind:     kindHistogram,
			labels:   []string{"namespace", "repository", "environment"},
			generate: func(v *view) []sample { return v.objects.recoveries.samples(true) },
		},
	}
}

// deploymentCounts emits the status counts of every (namespace,
// repository, environment) with a deployment Event, and success, failure
// and error at zero when absent, so that ratios over them have series.
func (v *view) deploymentCounts() []sample {
	type envKey struct{ namespace, repository, environment string }
	counts := map[envKey]map[string]uint64{}
	for k, c := range v.counts {
		if k.Kind != kindGitHubDeployment {
			continue
		}
		ek := envKey{k.Namespace, k.Repository, k.Environment}
		if counts[ek] == nil {
			counts[ek] = map[string]uint64{stablev1.DeploymentStateSuccess: 0, stablev1.DeploymentStateFailure: 0, stablev1.DeploymentStateError: 0}
		}
		if k.Action != stablev1.ActionCreated {
			counts[ek][k.Action] += c
		}
	}
	var out []sample
	for ek, byState := range counts {
		for state, c := range byState {
			out = append(out, sample{labels: []string{ek.namespace, ek.repository, ek.environment, state}, value: float64(c)})
		}
	}
	return out
}
