package recorder

import (
	"testing"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"k8s.io/apimachinery/pkg/fields"
)

// Every subject a change can have is recorded, delivered and reconciled.
func TestSubjects_EverySubjectHasItsRules(t *testing.T) {
	for _, s := range []githubevent.Subject{githubevent.SubjectPullRequest, githubevent.SubjectBranch,
		githubevent.SubjectReview, githubevent.SubjectDeployment} {
		if rules, ok := subjects[s]; !ok || rules.deliver == nil || rules.reconcile == nil {
			t.Errorf("subject %q has no rules", s)
		}
	}
	if _, ok := subjects[githubevent.SubjectNone]; ok {
		t.Error("a change about nothing has rules")
	}
}

// markApplied says in every kind's status which delivery moved it last:
// the whole status (what the delivery did is on its Event).
func TestMarkApplied_WritesEveryKindsStatus(t *testing.T) {
	ch := githubevent.Change{DeliveryID: "guid", Event: "push", Branch: &githubevent.BranchChange{Action: stablev1.ActionPushed}}
	pr, b, d := &stablev1.PullRequest{}, &stablev1.Branch{}, &stablev1.GitHubDeployment{}
	tests := []struct {
		name   string
		status recordedStatus
		whole  func() any
		want   any
	}{
		{"PullRequest", pullRequests.status(pr), func() any { return pr.Status },
			stablev1.PullRequestStatus{Bookkeeping: stablev1.Bookkeeping{LastDeliveryID: "guid"}}},
		{"Branch", branches.status(b), func() any { return b.Status },
			stablev1.BranchStatus{Bookkeeping: stablev1.Bookkeeping{LastDeliveryID: "guid"}}},
		{"GitHubDeployment", deployments.status(d), func() any { return d.Status },
			stablev1.GitHubDeploymentStatus{Bookkeeping: stablev1.Bookkeeping{LastDeliveryID: "guid"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			markApplied(tt.status, ch)
			if got := tt.whole(); got != tt.want {
				t.Errorf("status %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A repository's objects are selected by their selectable field
// spec.repository, its raw name escaped as a field selector value.
func TestRepositorySelector_SelectsTheRawName(t *testing.T) {
	tests := []struct{ repository, want string }{
		{"Octo-Org/hello.world", "spec.repository=Octo-Org/hello.world"},
		{"o/a,b=c", `spec.repository=o/a\,b\=c`},
	}
	for _, tt := range tests {
		sel := repositorySelector(tt.repository).String()
		if sel != tt.want {
			t.Errorf("repositorySelector(%q) = %q, want %q", tt.repository, sel, tt.want)
		}
		parsed, err := fields.ParseSelector(sel)
		if err != nil {
			t.Fatal(err)
		}
		if !parsed.Matches(fields.Set{"spec.repository": tt.repository}) {
			t.Errorf("%q does not select %q", sel, tt.repository)
		}
	}
}
