package fakegithub_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/liatrio/gitpulse/internal/fakegithub"
	"github.com/liatrio/gitpulse/internal/ghwebhook"
)

func client(t *testing.T, gh *fakegithub.Server, token string) *github.Client {
	t.Helper()
	c := github.NewClient(nil).WithAuthToken(token)
	u, _ := url.Parse(gh.URL())
	c.BaseURL = u
	return c
}

// go-github reads the fake as it reads GitHub: deliveries newest first with
// the next page's cursor in Link (Response.Cursor), a list item without
// request and response, a delivery with both, redelivery answered 202
// (go-github's AcceptedError) and made later as a new attempt with the same
// GUID, signed.
func TestDeliveries_AsGoGitHubReadsThem(t *testing.T) {
	var got []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get(github.DeliveryIDHeader))
		if r.Header.Get(github.SHA256SignatureHeader) == "" {
			t.Errorf("delivery without a signature")
		}
		if len(got) == 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer receiver.Close()
	gh := fakegithub.New(fakegithub.Options{Token: "t"})
	defer gh.Close()
	hook := gh.AddRepoHook("acme/api", receiver.URL, []byte("s"))
	ctx := context.Background()
	for _, id := range []string{"g1", "g2", "g3"} {
		gh.Deliver(ctx, "acme/api", ghwebhook.Delivery{Event: "push", ID: id, Body: []byte(`{"ref":"refs/heads/main"}`)})
	}
	c := client(t, gh, "t")
	var guids []string
	opts := &github.ListCursorOptions{PerPage: 2}
	pages := 0
	for {
		ds, resp, err := c.Repositories.ListHookDeliveries(ctx, "acme", "api", hook, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, d := range ds {
			guids = append(guids, d.GetGUID())
			if d.Request != nil {
				t.Errorf("a list item carries its request")
			}
		}
		if resp.Cursor == "" {
			break
		}
		opts.Cursor = resp.Cursor
	}
	if pages != 2 || len(guids) != 3 || guids[0] != "g3" || guids[2] != "g1" {
		t.Fatalf("pages %d, guids %v; want 2 pages, newest first", pages, guids)
	}
	failed := gh.Attempts("g2")[0]
	if failed.GetStatusCode() != http.StatusServiceUnavailable || failed.GetStatus() != "Invalid HTTP Response: 503" {
		t.Errorf("failed attempt %+v", failed)
	}
	full, _, err := c.Repositories.GetHookDelivery(ctx, "acme", "api", hook, failed.GetID())
	if err != nil || full.Request == nil || string(*full.Request.RawPayload) != `{"ref":"refs/heads/main"}` {
		t.Fatalf("get delivery: %+v %v", full, err)
	}
	_, _, err = c.Repositories.RedeliverHookDelivery(ctx, "acme", "api", hook, failed.GetID())
	var accepted *github.AcceptedError
	if !errors.As(err, &accepted) {
		t.Fatalf("redeliver: %v, want 202 (AcceptedError)", err)
	}
	gh.Wait()
	if a := gh.Attempts("g2"); len(a) != 2 || !a[1].GetRedelivery() || a[1].GetStatus() != "OK" || got[len(got)-1] != "g2" {
		t.Errorf("attempts after redelivery %+v (received %v)", a, got)
	}
	if _, _, err := client(t, gh, "wrong").Repositories.ListHookDeliveries(ctx, "acme", "api", hook, nil); err == nil {
		t.Error("a wrong token was accepted")
	}
}

// The rate limits as go-github classifies them (github.go CheckResponse).
func TestRateLimits_AsGoGitHubClassifiesThem(t *testing.T) {
	gh := fakegithub.New(fakegithub.Options{})
	defer gh.Close()
	ctx := context.Background()
	_, resp, err := client(t, gh, "t").PullRequests.List(ctx, "acme", "api", nil)
	if err != nil || resp.Rate.Limit != 5000 || resp.Rate.Remaining != 4999 {
		t.Fatalf("rate %+v %v", resp.Rate, err)
	}
	gh.SecondaryLimitOnce(30 * time.Second)
	_, _, err = client(t, gh, "t").PullRequests.List(ctx, "acme", "api", nil)
	var abuse *github.AbuseRateLimitError
	if !errors.As(err, &abuse) || abuse.RetryAfter == nil || *abuse.RetryAfter != 30*time.Second {
		t.Errorf("secondary limit: %v", err)
	}
	reset := time.Now().Add(time.Hour).Truncate(time.Second)
	gh.SetRateLimit(0, reset)
	_, _, err = client(t, gh, "t").Repositories.ListBranches(ctx, "acme", "api", nil)
	var primary *github.RateLimitError
	if !errors.As(err, &primary) || !primary.Rate.Reset.Time.Equal(reset) {
		t.Errorf("primary limit: %v", err)
	}
}

// Reviews, deployments and deployment statuses read by go-github as from
// GitHub: reviews in submission order, deployments and statuses newest
// first, page-number pagination, 404 for an unknown pull request or
// deployment, and a status moving its deployment's updated_at.
func TestReviewsAndDeployments_AsGoGitHubReadsThem(t *testing.T) {
	gh := fakegithub.New(fakegithub.Options{Token: "t"})
	defer gh.Close()
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	gh.SetPullRequest("acme/api", &github.PullRequest{Number: github.Int(3), State: github.String("open"),
		UpdatedAt: &github.Timestamp{Time: at}})
	for id := int64(1); id <= 3; id++ {
		gh.AddReview("acme/api", 3, &github.PullRequestReview{ID: github.Int64(id), State: github.String("COMMENTED"),
			SubmittedAt: &github.Timestamp{Time: at.Add(time.Duration(id) * time.Minute)}})
	}
	for id := int64(10); id <= 12; id++ {
		gh.SetDeployment("acme/api", &github.Deployment{ID: github.Int64(id), Environment: github.String("production"),
			CreatedAt: &github.Timestamp{Time: at}, UpdatedAt: &github.Timestamp{Time: at}})
	}
	gh.AddDeploymentStatus("acme/api", 11, &github.DeploymentStatus{ID: github.Int64(1), State: github.String("pending"),
		CreatedAt: &github.Timestamp{Time: at.Add(time.Minute)}, UpdatedAt: &github.Timestamp{Time: at.Add(time.Minute)}})
	gh.AddDeploymentStatus("acme/api", 11, &github.DeploymentStatus{ID: github.Int64(2), State: github.String("success"),
		CreatedAt: &github.Timestamp{Time: at.Add(time.Hour)}, UpdatedAt: &github.Timestamp{Time: at.Add(time.Hour)}})
	c := client(t, gh, "t")
	ctx := context.Background()

	var reviews []int64
	opts := &github.ListOptions{PerPage: 2}
	for {
		rvs, resp, err := c.PullRequests.ListReviews(ctx, "acme", "api", 3, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rvs {
			reviews = append(reviews, r.GetID())
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if fmt.Sprint(reviews) != "[1 2 3]" {
		t.Errorf("reviews %v, want [1 2 3] (chronological, two pages)", reviews)
	}
	if _, _, err := c.PullRequests.ListReviews(ctx, "acme", "api", 4, nil); !isNotFound(err) {
		t.Errorf("reviews of an unknown pull request: %v", err)
	}

	deps, _, err := c.Repositories.ListDeployments(ctx, "acme", "api", &github.DeploymentsListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, d := range deps {
		ids = append(ids, d.GetID())
		if d.GetID() == 11 && !d.GetUpdatedAt().Time.Equal(at.Add(time.Hour)) {
			t.Errorf("deployment 11 updated_at %v: its statuses move it", d.GetUpdatedAt())
		}
	}
	if fmt.Sprint(ids) != "[12 11 10]" {
		t.Errorf("deployments %v, want newest first", ids)
	}
	sts, _, err := c.Repositories.ListDeploymentStatuses(ctx, "acme", "api", 11, nil)
	if err != nil || len(sts) != 2 || sts[0].GetState() != "success" {
		t.Errorf("statuses %v %v, want newest first", sts, err)
	}
	if _, _, err := c.Repositories.ListDeploymentStatuses(ctx, "acme", "api", 99, nil); !isNotFound(err) {
		t.Errorf("statuses of an unknown deployment: %v", err)
	}
}

func isNotFound(err error) bool {
	var e *github.ErrorResponse
	return errors.As(err, &e) && e.Response.StatusCode == http.StatusNotFound
}

// A renamed or transferred repository keeps its id; go-github, asking
// under the former name, follows GitHub's 301 and reads the repository's
// current state: its new name, its pull requests (their base repository
// says the id and the new name), its branches.
func TestRename_OldNameAnswers301AndGoGitHubFollowsIt(t *testing.T) {
	gh := fakegithub.New(fakegithub.Options{Token: "t"})
	defer gh.Close()
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	gh.SetPullRequest("acme/api", &github.PullRequest{Number: github.Int(7), State: github.String("open"),
		UpdatedAt: &github.Timestamp{Time: at}, Base: &github.PullRequestBranch{Ref: github.String("main")}})
	gh.SetBranch("acme/api", "main", "abc")
	id := gh.RepositoryID("acme/api")
	gh.Rename("acme/api", "other/gateway")
	if got := gh.RepositoryID("other/gateway"); got != id {
		t.Fatalf("the id changed with the name: %d, was %d", got, id)
	}
	ctx := context.Background()
	c := client(t, gh, "t")

	tests := []struct {
		name        string
		owner, repo string
	}{
		{"under the former name (redirected)", "acme", "api"},
		{"under the new name", "other", "gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, _, err := c.Repositories.Get(ctx, tt.owner, tt.repo)
			if err != nil {
				t.Fatal(err)
			}
			if repo.GetID() != id || repo.GetFullName() != "other/gateway" {
				t.Errorf("repository %d %q, want %d other/gateway", repo.GetID(), repo.GetFullName(), id)
			}
			prs, _, err := c.PullRequests.List(ctx, tt.owner, tt.repo, &github.PullRequestListOptions{State: "all"})
			if err != nil {
				t.Fatal(err)
			}
			if len(prs) != 1 || prs[0].GetBase().GetRepo().GetID() != id || prs[0].GetBase().GetRepo().GetFullName() != "other/gateway" {
				t.Errorf("pull requests %+v", prs)
			}
			bs, _, err := c.Repositories.ListBranches(ctx, tt.owner, tt.repo, nil)
			if err != nil || len(bs) != 1 || bs[0].GetName() != "main" {
				t.Errorf("branches %v: %v", bs, err)
			}
		})
	}
	// The 301 itself, as GitHub answers it.
	req, _ := http.NewRequest(http.MethodGet, gh.URL()+"repos/acme/api/pulls?state=all", nil)
	req.Header.Set("Authorization", "token t")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := fmt.Sprintf("%srepositories/%d/pulls?state=all", gh.URL(), id); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("answered %d Location %q, want 301 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// FailOn answers the matching requests with the status asked for (or no
// answer) as go-github reads GitHub's, the given number of times, and
// serves every other request meanwhile.
func TestFailOn_AnswersOnePathAsGitHubFailsIt(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		status int
		check  func(t *testing.T, err error)
	}{
		{name: "404: an ErrorResponse", status: http.StatusNotFound, check: func(t *testing.T, err error) {
			var er *github.ErrorResponse
			if !errors.As(err, &er) || er.Response.StatusCode != http.StatusNotFound {
				t.Errorf("err %v, want a 404 ErrorResponse", err)
			}
		}},
		{name: "403 on a sub-resource: an ErrorResponse, not a rate limit", status: http.StatusForbidden, check: func(t *testing.T, err error) {
			var er *github.ErrorResponse
			var rl *github.RateLimitError
			var ab *github.AbuseRateLimitError
			if !errors.As(err, &er) || er.Response.StatusCode != http.StatusForbidden || errors.As(err, &rl) || errors.As(err, &ab) {
				t.Errorf("err %v, want a plain 403 ErrorResponse", err)
			}
		}},
		{name: "502: an ErrorResponse", status: http.StatusBadGateway, check: func(t *testing.T, err error) {
			var er *github.ErrorResponse
			if !errors.As(err, &er) || er.Response.StatusCode != http.StatusBadGateway {
				t.Errorf("err %v, want a 502 ErrorResponse", err)
			}
		}},
		{name: "no answer: the transport's error", status: 0, check: func(t *testing.T, err error) {
			var ue *url.Error
			if !errors.As(err, &ue) {
				t.Errorf("err %v (%T), want a *url.Error", err, err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gh := fakegithub.New(fakegithub.Options{Token: "t"})
			defer gh.Close()
			now := time.Now()
			for n := 1; n <= 3; n++ {
				gh.SetPullRequest("acme/api", &github.PullRequest{Number: github.Int(n), State: github.String("open"),
					UpdatedAt: &github.Timestamp{Time: now}})
			}
			c := client(t, gh, "t")
			gh.FailOn(http.MethodGet, "/pulls/3/reviews", tt.status, 2)
			for i := range 2 {
				_, _, err := c.PullRequests.ListReviews(ctx, "acme", "api", 3, nil)
				if err == nil {
					t.Fatalf("request %d to the faulty path served", i)
				}
				tt.check(t, err)
				// Every other path is served meanwhile.
				if _, _, err := c.PullRequests.ListReviews(ctx, "acme", "api", 2, nil); err != nil {
					t.Errorf("another pull request's reviews: %v", err)
				}
				if _, _, err := c.PullRequests.List(ctx, "acme", "api", nil); err != nil {
					t.Errorf("the pull request list: %v", err)
				}
			}
			if _, _, err := c.PullRequests.ListReviews(ctx, "acme", "api", 3, nil); err != nil {
				t.Errorf("after its two faults: %v", err)
			}
			if n := gh.Faulted(http.MethodGet, "/pulls/3/reviews"); n != 2 {
				t.Errorf("Faulted = %d, want 2", n)
			}
		})
	}
}

func TestFailOn_UntilCleared(t *testing.T) {
	gh := fakegithub.New(fakegithub.Options{Token: "t"})
	defer gh.Close()
	gh.SetBranch("acme/api", "main", "abc")
	c := client(t, gh, "t")
	ctx := context.Background()
	gh.FailOn("", "/branches", http.StatusServiceUnavailable, -1)
	for range 5 {
		if _, _, err := c.Repositories.ListBranches(ctx, "acme", "api", nil); err == nil {
			t.Fatal("served while the fault holds")
		}
	}
	gh.ClearFaults()
	if bs, _, err := c.Repositories.ListBranches(ctx, "acme", "api", nil); err != nil || len(bs) != 1 {
		t.Errorf("after ClearFaults: %v, %d branches", err, len(bs))
	}
	if n := gh.Faulted("", "/branches"); n != 5 {
		t.Errorf("Faulted after ClearFaults = %d, want the 5 it answered", n)
	}
}

// One pull request and one deployment, as go-github's Get and
// GetDeployment read them; 404 when unknown.
func TestGetOne_PullRequestAndDeployment(t *testing.T) {
	gh := fakegithub.New(fakegithub.Options{Token: "t"})
	defer gh.Close()
	gh.SetPullRequest("acme/api", &github.PullRequest{Number: github.Int(7), Title: github.String("seven")})
	gh.SetDeployment("acme/api", &github.Deployment{ID: github.Int64(42), Environment: github.String("production")})
	c := client(t, gh, "t")
	ctx := context.Background()
	if pr, _, err := c.PullRequests.Get(ctx, "acme", "api", 7); err != nil || pr.GetTitle() != "seven" {
		t.Errorf("pull request 7: %+v %v", pr, err)
	}
	if d, _, err := c.Repositories.GetDeployment(ctx, "acme", "api", 42); err != nil || d.GetEnvironment() != "production" {
		t.Errorf("deployment 42: %+v %v", d, err)
	}
	var er *github.ErrorResponse
	if _, _, err := c.PullRequests.Get(ctx, "acme", "api", 8); !errors.As(err, &er) || er.Response.StatusCode != http.StatusNotFound {
		t.Errorf("unknown pull request: %v", err)
	}
	if _, _, err := c.Repositories.GetDeployment(ctx, "acme", "api", 43); !errors.As(err, &er) || er.Response.StatusCode != http.StatusNotFound {
		t.Errorf("unknown deployment: %v", err)
	}
}

// A GET answers with an ETag; asked again with it, 304 Not Modified, which
// costs no rate limit, until the answer changes.
func TestConditionalRequests_304IsFreeUntilTheAnswerChanges(t *testing.T) {
	gh := fakegithub.New(fakegithub.Options{Token: "t"})
	defer gh.Close()
	gh.SetBranch("acme/api", "main", "a")
	get := func(etag string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, gh.URL()+"repos/acme/api/branches", nil)
		req.Header.Set("Authorization", "Bearer t")
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("ETag")
	}
	code, etag := get("")
	if code != http.StatusOK || etag == "" {
		t.Fatalf("first GET: %d, ETag %q", code, etag)
	}
	left := gh.Remaining()
	if code, _ := get(etag); code != http.StatusNotModified || gh.Remaining() != left || gh.NotModified() != 1 {
		t.Errorf("conditional GET: %d, remaining %d (was %d), %d not modified", code, gh.Remaining(), left, gh.NotModified())
	}
	gh.SetBranch("acme/api", "main", "b")
	if code, next := get(etag); code != http.StatusOK || next == etag || gh.Remaining() != left-1 {
		t.Errorf("after a change: %d, ETag %q (was %q), remaining %d", code, next, etag, gh.Remaining())
	}
}
