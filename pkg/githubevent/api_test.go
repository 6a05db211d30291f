package githubevent_test

import (
	"errors"
	"fmt"
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

func TestFromAPIReviews_SubmittedReviewsOnly(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	pr := &github.PullRequest{Number: github.Int(7), State: github.String("open"), UpdatedAt: &github.Timestamp{Time: at}}
	rv := func(id int64, state string, submitted bool) *github.PullRequestReview {
		r := &github.PullRequestReview{ID: github.Int64(id), State: github.String(state), User: &github.User{Login: github.String("bob")}}
		if submitted {
			r.SubmittedAt = &github.Timestamp{Time: at.Add(time.Duration(id) * time.Minute)}
		}
		return r
	}
	ch, err := githubevent.FromAPIPullRequestWithReviews("acme/api", pr, []*github.PullRequestReview{
		rv(1, "COMMENTED", true), rv(2, "APPROVED", true), rv(3, "DISMISSED", true),
		// Pending: not submitted, never delivered as submitted.
		rv(4, "PENDING", false),
	})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Kind() != githubevent.KindPullRequest || ch.PullRequest == nil || ch.Review == nil {
		t.Fatalf("change %+v", ch)
	}
	var got []string
	for _, l := range ch.Review.Listed {
		got = append(got, fmt.Sprintf("%d:%s:%s", l.ID, l.State, l.SubmittedAt.Format(time.TimeOnly)))
	}
	if want := "[1:commented:10:01:00 2:approved:10:02:00 3:dismissed:10:03:00]"; fmt.Sprint(got) != want {
		t.Errorf("listed %v, want %s", got, want)
	}
	plain, _ := githubevent.FromAPIPullRequest("acme/api", pr)
	if plain.DeliveryID == ch.DeliveryID {
		t.Error("the reviews do not enter the change's id: a new review would be taken for a change already applied")
	}
	none, _ := githubevent.FromAPIPullRequestWithReviews("acme/api", pr, nil)
	if none.Review != nil || none.DeliveryID != plain.DeliveryID {
		t.Errorf("without reviews the change is the pull request's: %+v", none)
	}
}

func TestFromAPIDeployment_EveryStatusListed(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	d := &github.Deployment{ID: github.Int64(9), Environment: github.String("production"), Ref: github.String("main"),
		SHA: github.String("abc"), Creator: &github.User{Login: github.String("ci")},
		CreatedAt: &github.Timestamp{Time: at}, UpdatedAt: &github.Timestamp{Time: at.Add(time.Hour)}}
	st := func(id int64, state string, created, updated time.Time) *github.DeploymentStatus {
		s := &github.DeploymentStatus{ID: github.Int64(id), State: github.String(state), CreatedAt: &github.Timestamp{Time: created}}
		if !updated.IsZero() {
			s.UpdatedAt = &github.Timestamp{Time: updated}
		}
		return s
	}
	ch, err := githubevent.FromAPIDeployment("acme/api", d, []*github.DeploymentStatus{
		st(92, "SUCCESS", at.Add(30*time.Minute), at.Add(40*time.Minute)),
		st(91, "failure", at.Add(10*time.Minute), time.Time{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := ch.Deployment
	if ch.Kind() != githubevent.KindGitHubDeployment || c.Environment != "production" || c.Status != nil || len(c.Statuses) != 2 ||
		c.Statuses[0].State != "success" || !c.Statuses[0].At.Equal(at.Add(40*time.Minute)) ||
		!c.Statuses[1].At.Equal(at.Add(10*time.Minute)) || ch.Action() != stablev1.ActionReconciled {
		t.Errorf("change %+v %+v", ch, c)
	}
	empty, _ := githubevent.FromAPIDeployment("acme/api", d, nil)
	if empty.Deployment.Statuses == nil || empty.DeliveryID == ch.DeliveryID {
		t.Errorf("a deployment without statuses: %+v", empty.Deployment)
	}
	d.Environment = github.String("")
	if _, err := githubevent.FromAPIDeployment("acme/api", d, nil); !errors.Is(err, githubevent.ErrMismatch) {
		t.Errorf("empty environment: %v", err)
	}
}

// After a rename GitHub answers the old name's list with the new one (a
// 301 go-github follows): a pull request from the API carries its base
// repository's id and current name, and so do its reviews.
func TestFromAPIPullRequest_TakesTheBaseRepositorysIDAndCurrentName(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	pr := func(base *github.Repository) *github.PullRequest {
		return &github.PullRequest{ID: github.Int64(900), Number: github.Int(7), State: github.String("open"),
			Base: &github.PullRequestBranch{Ref: github.String("main"), Repo: base}, UpdatedAt: &github.Timestamp{Time: at}}
	}
	tests := []struct {
		name     string
		base     *github.Repository
		wantRepo string
		wantID   int64
	}{
		{"renamed: the base says the new name", &github.Repository{ID: github.Int64(42), FullName: github.String("acme/gateway")}, "acme/gateway", 42},
		{"no base repository: the name asked for", nil, "acme/api", 0},
		{"a base name that is no repository: the name asked for", &github.Repository{ID: github.Int64(42), FullName: github.String("bad")}, "acme/api", 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := githubevent.FromAPIPullRequest("acme/api", pr(tt.base))
			if err != nil {
				t.Fatal(err)
			}
			if ch.Repository != tt.wantRepo || ch.RepositoryID != tt.wantID || ch.PullRequest.GitHubID != 900 {
				t.Errorf("repository %q id %d pull request id %d", ch.Repository, ch.RepositoryID, ch.PullRequest.GitHubID)
			}
			rv, err := githubevent.FromAPIReviews("acme/api", pr(tt.base), nil)
			if err != nil {
				t.Fatal(err)
			}
			if rv.Repository != tt.wantRepo || rv.RepositoryID != tt.wantID {
				t.Errorf("reviews: repository %q id %d", rv.Repository, rv.RepositoryID)
			}
		})
	}
}
