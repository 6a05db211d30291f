package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/eventcount"
)

func minutes(m int) *metav1.Time {
	t := metav1.NewTime(time.Unix(1_700_000_000+int64(m)*60, 0))
	return &t
}

// doraView: one pull request reviewed after 30 minutes and approved after
// 90; in production a failed deployment (minute 200), one that fails
// (minute 260) and then succeeds (minute 300) shipping pull request 1 by
// SHA and 2 by window, and a later one listing pull request 2 again; in
// staging a success only.
func doraView() *view {
	dep := func(name, env string, failure, success *metav1.Time, changes ...stablev1.DeployedChange) *stablev1.GitHubDeployment {
		return &stablev1.GitHubDeployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "gitpulse"},
			Spec: stablev1.GitHubDeploymentSpec{Repository: "acme/api", Environment: env, FirstFailureAt: failure,
				FirstSuccessAt: success, Changes: changes},
		}
	}
	v := &view{
		counts: map[eventcount.Key]uint64{
			{Kind: keyKindReview, Namespace: "gitpulse", Repository: "acme/api", Action: "review_submitted"}:                                                3,
			{Kind: kindGitHubDeployment, Namespace: "gitpulse", Repository: "acme/api", Action: "created", Environment: "production"}:                       3,
			{Kind: kindGitHubDeployment, Namespace: "gitpulse", Repository: "acme/api", Action: "failure", Environment: "production"}:                       2,
			{Kind: kindGitHubDeployment, Namespace: "gitpulse", Repository: "acme/api", Action: "success", Environment: "production"}:                       2,
			{Kind: kindGitHubDeployment, Namespace: "gitpulse", Repository: "acme/api", Action: stablev1.DeploymentStateInProgress, Environment: "staging"}: 1,
		},
	}
	objects := aggregateObjects(compactObjects([]*stablev1.PullRequest{{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "gitpulse"},
		Spec: stablev1.PullRequestSpec{Repository: "acme/api", Status: "merged", OpenedAt: minutes(0),
			FirstReviewAt: minutes(30), FirstApprovalAt: minutes(90)},
	}}, nil, []*stablev1.GitHubDeployment{
		dep("d1", "production", minutes(200), nil),
		dep("d2", "production", minutes(260), minutes(300),
			stablev1.DeployedChange{Number: 1, OpenedAt: minutes(0), By: "sha"},
			stablev1.DeployedChange{Number: 2, OpenedAt: minutes(100), By: "window"}),
		dep("d3", "production", nil, minutes(400), stablev1.DeployedChange{Number: 2, OpenedAt: minutes(100), By: "sha"}),
		dep("d4", "staging", nil, minutes(250), stablev1.DeployedChange{Number: 1, OpenedAt: minutes(0), By: "sha"}),
	}))
	return v.admitObjects(newRepoCap(10), objects)
}

func TestDORAFamilies_ReportTheView(t *testing.T) {
	tests := []struct {
		family string
		want   string
	}{{
		family: "gitpulse_pull_request_review_events_total",
		want: `# HELP gitpulse_pull_request_review_events_total Pull request review deliveries recorded (submitted, edited, dismissed), one per distinct Event of the recorder.
# TYPE gitpulse_pull_request_review_events_total counter
gitpulse_pull_request_review_events_total{action="submitted",namespace="gitpulse",repository="acme/api"} 3
`,
	}, {
		// Created deliveries are not statuses; success, failure and error
		// are always there.
		family: "gitpulse_deployments_total",
		want: `# HELP gitpulse_deployments_total Deployment status deliveries recorded, by environment and state, one per distinct Event of the recorder.
# TYPE gitpulse_deployments_total counter
gitpulse_deployments_total{environment="production",namespace="gitpulse",repository="acme/api",state="error"} 0
gitpulse_deployments_total{environment="production",namespace="gitpulse",repository="acme/api",state="failure"} 2
gitpulse_deployments_total{environment="production",namespace="gitpulse",repository="acme/api",state="success"} 2
gitpulse_deployments_total{environment="staging",namespace="gitpulse",repository="acme/api",state="error"} 0
gitpulse_deployments_total{environment="staging",namespace="gitpulse",repository="acme/api",state="failure"} 0
gitpulse_deployments_total{environment="staging",namespace="gitpulse",repository="acme/api",state="in_progress"} 1
gitpulse_deployments_total{environment="staging",namespace="gitpulse",repository="acme/api",state="success"} 0
`,
	}}
	for _, tt := range tests {
		t.Run(tt.family, func(t *testing.T) {
			if err := testutil.CollectAndCompare(newCollector(doraView), strings.NewReader(tt.want), tt.family); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDORAFamilies_Histograms(t *testing.T) {
	v := doraView()
	type obs struct {
		count uint64
		sum   float64
	}
	collect := func(samples []sample) map[string]obs {
		out := map[string]obs{}
		for _, s := range samples {
			out[strings.Join(s.labels, "/")] = obs{s.hist.count, s.hist.sum}
		}
		return out
	}
	check := func(name string, got map[string]obs, want map[string]obs) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s %s: %+v, want %+v", name, k, got[k], w)
			}
		}
	}
	check("first review", collect(v.objects.firstReview.samples(false)),
		map[string]obs{"gitpulse/acme/api": {1, 30 * 60}})
	check("approval", collect(v.objects.approval.samples(false)),
		map[string]obs{"gitpulse/acme/api": {1, 90 * 60}})
	// Pull request 2 counts once in production, for d2 (the earlier success).
	check("lead time", collect(v.objects.leadTimes.samples(true)), map[string]obs{
		"gitpulse/acme/api/production": {2, (300 + 200) * 60},
		"gitpulse/acme/api/staging":    {1, 250 * 60},
	})
	// Production was down from minute 200 (d1) to 300 (d2's success); d2's
	// own failure at 260 is inside that outage. Staging never failed.
	check("recovery", collect(v.objects.recoveries.samples(true)), map[string]obs{
		"gitpulse/acme/api/production": {1, 100 * 60},
		"gitpulse/acme/api/staging":    {0, 0},
	})
}

func TestClassify_ReviewAndDeploymentEvents(t *testing.T) {
	ev := func(kind, action, env string) *cachedEvent {
		return &cachedEvent{Namespace: intern("gitpulse"), Kind: intern(kind), Action: intern(action),
			Repository: intern("acme/api"), Environment: intern(env)}
	}
	tests := []struct {
		name       string
		ev         *cachedEvent
		wantKind   string
		wantAction string
		wantEnv    string
		wantReason string
	}{
		{"a review is not a pull_request delivery", ev("PullRequest", "review_submitted", ""), keyKindReview, "review_submitted", "", ""},
		{"deployment status by state", ev("GitHubDeployment", "success", "production"), kindGitHubDeployment, "success", "production", ""},
		{"deployment created", ev("GitHubDeployment", "created", "production"), kindGitHubDeployment, "created", "production", ""},
		{"a state GitHub adds later", ev("GitHubDeployment", "teleported", "production"), kindGitHubDeployment, "other", "production", ""},
		{"an environment with a space", ev("GitHubDeployment", "failure", "eu west"), kindGitHubDeployment, "failure", "eu_west", ""},
		{"no environment", ev("GitHubDeployment", "failure", ""), "", "", "", reasonMissingEnvironment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, reason := classify(tt.ev)
			if reason != tt.wantReason || key.Kind != tt.wantKind || key.Action != tt.wantAction || key.Environment != tt.wantEnv {
				t.Fatalf("classify = %+v %q", key, reason)
			}
		})
	}
}
