package githubevent_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
)

func TestFromAPIPullRequest_TellsWhatADeliveryWould(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 500, time.UTC)
	pr := func(state string, merged bool) *github.PullRequest {
		p := &github.PullRequest{Number: github.Int(7), State: github.String(state), Title: github.String("t"),
			User: &github.User{Login: github.String("u")}, Head: &github.PullRequestBranch{Ref: github.String("h"), SHA: github.String("s")},
			Base: &github.PullRequestBranch{Ref: github.String("main")}, Draft: github.Bool(true),
			CreatedAt: &github.Timestamp{Time: at.Add(-time.Hour)}, UpdatedAt: &github.Timestamp{Time: at}}
		if merged {
			p.MergedAt = &github.Timestamp{Time: at}
		}
		return p
	}
	for _, tt := range []struct {
		name string
		pr   *github.PullRequest
		want stablev1.PullRequestState
	}{
		{"open", pr("open", false), stablev1.PullRequestOpen},
		{"closed", pr("closed", false), stablev1.PullRequestClosed},
		// The list endpoint has no "merged" member: merged_at says it.
		{"merged by merged_at", pr("closed", true), stablev1.PullRequestMerged},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := githubevent.FromAPIPullRequest("acme/api", tt.pr)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Kind() != githubevent.KindPullRequest || ch.PullRequest.State != tt.want ||
				!ch.OccurredAt.Equal(at.Truncate(time.Second)) || ch.Action() != stablev1.ActionReconciled ||
				ch.PullRequest.Draft == nil || !*ch.PullRequest.Draft {
				t.Errorf("change %+v %+v", ch, ch.PullRequest)
			}
			again, _ := githubevent.FromAPIPullRequest("acme/api", tt.pr)
			if again.DeliveryID != ch.DeliveryID {
				t.Errorf("the same state gave ids %s and %s: overlapping passes would write twice", ch.DeliveryID, again.DeliveryID)
			}
		})
	}
	a, _ := githubevent.FromAPIPullRequest("acme/api", pr("open", false))
	b, _ := githubevent.FromAPIPullRequest("acme/api", pr("closed", false))
	if a.DeliveryID == b.DeliveryID {
		t.Error("different states share an id")
	}
	if _, err := githubevent.FromAPIPullRequest("acme/api", &github.PullRequest{Number: github.Int(1)}); !errors.Is(err, githubevent.ErrMismatch) {
		t.Errorf("no updated_at: %v", err)
	}
	if _, err := githubevent.FromAPIPullRequest("not a repo", pr("open", false)); err == nil {
		t.Error("a malformed repository was accepted")
	}
}

func TestFromAPIBranch_HasNoTimeToOrderBy(t *testing.T) {
	ch, err := githubevent.FromAPIBranch("acme/api", &github.Branch{Name: github.String("feature/x"),
		Commit: &github.RepositoryCommit{SHA: github.String("abc")}})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Kind() != githubevent.KindBranch || ch.Branch.HeadSHA != "abc" || !ch.OccurredAt.IsZero() {
		t.Errorf("change %+v %+v", ch, ch.Branch)
	}
}
