package githubevent

import (
	"testing"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// One rule says what a change is about, and so which kind it lands on and
// whose action, reason and message its Event gets.
func TestSubject_OnePartDecidesKindActionAndReason(t *testing.T) {
	pr := &PullRequestChange{Action: stablev1.ActionClosed, Merged: true, Number: 7}
	review := &ReviewChange{Action: "dismissed", PullRequest: PullRequestChange{Number: 7}}
	tests := []struct {
		name    string
		ch      Change
		subject Subject
		kind    string
		action  string
		reason  string
	}{
		{"nothing", Change{}, SubjectNone, "", "", ""},
		{"ignored", Change{Ignored: "ping"}, SubjectNone, "", "", ""},
		{"pull request", Change{PullRequest: pr}, SubjectPullRequest, KindPullRequest,
			stablev1.ActionMerged, stablev1.ReasonPullRequestMerged},
		{"pull request with its reviews", Change{PullRequest: pr, Review: review}, SubjectPullRequest, KindPullRequest,
			stablev1.ActionMerged, stablev1.ReasonPullRequestMerged},
		{"review alone", Change{Review: review}, SubjectReview, KindPullRequest,
			stablev1.ActionReviewDismissed, stablev1.ReasonPullRequestReviewDismissed},
		{"branch", Change{Branch: &BranchChange{Action: stablev1.ActionDeleted}}, SubjectBranch, KindBranch,
			stablev1.ActionDeleted, stablev1.ReasonBranchDeleted},
		{"deployment", Change{Deployment: &DeploymentChange{}}, SubjectDeployment, KindGitHubDeployment,
			stablev1.ActionCreated, stablev1.ReasonDeploymentCreated},
		{"deployment status", Change{Deployment: &DeploymentChange{Status: &DeploymentStatusChange{State: stablev1.DeploymentStateSuccess}}},
			SubjectDeployment, KindGitHubDeployment, stablev1.DeploymentStateSuccess, stablev1.ReasonDeploymentSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := tt.ch
			if got := ch.Subject(); got != tt.subject {
				t.Errorf("Subject() = %q, want %q", got, tt.subject)
			}
			if got := ch.Kind(); got != tt.kind {
				t.Errorf("Kind() = %q, want %q", got, tt.kind)
			}
			if got := ch.Action(); got != tt.action {
				t.Errorf("Action() = %q, want %q", got, tt.action)
			}
			if got := ch.Reason(); got != tt.reason {
				t.Errorf("Reason() = %q, want %q", got, tt.reason)
			}
			if (ch.Message() == "") != (tt.action == "") {
				t.Errorf("Message() = %q", ch.Message())
			}
		})
	}
}
