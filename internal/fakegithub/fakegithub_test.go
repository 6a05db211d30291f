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
