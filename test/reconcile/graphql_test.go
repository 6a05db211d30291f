package reconcile_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/liatrio/gitpulse/internal/fakegithub"
	"github.com/liatrio/gitpulse/pkg/reconcile"
)

// graphQLStory is a repository of n pull requests with reviews: pull
// request k has k%3+1 reviews, the first an approval; pull request big
// (0: none) has 130, more than one GraphQL query reads of a pull request.
func graphQLStory(w *world, n, big int, base time.Time) {
	w.t.Helper()
	for k := 1; k <= n; k++ {
		updated := base.Add(time.Duration(k) * time.Minute)
		w.gh.SetPullRequest(repo, apiPR(k, "open", false, updated))
		reviews := k%3 + 1
		if k == big {
			reviews = 130
		}
		for i := 0; i < reviews; i++ {
			state := "COMMENTED"
			if i == 0 {
				state = "APPROVED"
			}
			w.gh.AddReview(repo, k, &github.PullRequestReview{ID: github.Int64(int64(100000*k + i)), State: github.String(state),
				User:        &github.User{Login: github.String(fmt.Sprintf("reviewer-%d", i))},
				SubmittedAt: &github.Timestamp{Time: updated.Add(-time.Duration(reviews-i) * time.Second)}})
		}
	}
	for _, b := range []string{"main", "feature/a"} {
		w.gh.SetBranch(repo, b, "sha-"+b)
	}
}

// counted is the GitHub budget a stretch of passes spent: REST requests
// (a 304 spends none) and GraphQL points.
type counted struct{ requests, notModified, restSpent, pointsSpent int64 }

func (w *world) spend(f func()) counted {
	w.t.Helper()
	r0, n0, rest0, gql0 := w.gh.Requests(), w.gh.NotModified(), w.gh.Remaining(), w.gh.GraphQLRemaining()
	f()
	return counted{w.gh.Requests() - r0, w.gh.NotModified() - n0, int64(rest0 - w.gh.Remaining()), int64(gql0 - w.gh.GraphQLRemaining())}
}

// The first backfill of 250 pull requests with their reviews costs what
// the design says: the list's probe, three GraphQL queries of 100 pull
// requests with their reviews, the two REST review pages of the one pull
// request with more than 100, the branch and the deployment lists — 8
// requests, not the 250 review lists and 3 pages of REST. A pass with
// nothing changed then spends nothing (every request a 304), and a pull
// request reviewed since is read again with its new review.
func TestBackfill_GraphQLReadsPullRequestsWithTheirReviewsInAFewRequests(t *testing.T) {
	w := newWorld(t)
	const prs = 250
	base := time.Now().Add(-72 * time.Hour).Truncate(time.Second)
	graphQLStory(w, prs, 5, base)
	w.source("widgets", repo, 0)
	r := w.reconciler(func(o *reconcile.Options) { o.Budget = 3 * time.Minute })

	var rep reconcile.Report
	first := w.spend(func() { rep = w.pass(r) })
	if rep.Results[reconcile.ResultOK] != 1 || rep.Reconciled != prs+2 {
		t.Fatalf("first pass %+v, want ok with %d objects", rep, prs+2)
	}
	// The repository's id and name, the probe, 3 queries, branches,
	// deployments, the hook's deliveries.
	if first.requests != 9 || first.pointsSpent != 3 {
		t.Errorf("first backfill: %+v, want 9 requests of which 3 GraphQL points", first)
	}
	v := w.doraView()
	for k := int64(1); k <= prs; k++ {
		want := fmt.Sprintf("reviews=%d approvals=1", k%3+1)
		if k == 5 {
			want = "reviews=130 approvals=1"
		}
		if !strings.Contains(v.PullRequests[k], want) {
			t.Errorf("pull request #%d: %s, want %s", k, v.PullRequests[k], want)
		}
	}

	second := w.spend(func() { rep = w.pass(r) })
	if rep.Results[reconcile.ResultOK] != 1 || rep.Reconciled != 0 {
		t.Fatalf("second pass %+v, want ok with nothing reconciled", rep)
	}
	if second.requests != second.notModified || second.restSpent != 0 || second.pointsSpent != 0 {
		t.Errorf("a pass with nothing changed spent %+v, want only 304s", second)
	}

	// Pull request 7 is reviewed: its updated_at moves.
	now := time.Now().Truncate(time.Second)
	w.gh.AddReview(repo, 7, &github.PullRequestReview{ID: github.Int64(999), State: github.String("CHANGES_REQUESTED"),
		User: &github.User{Login: github.String("dave")}, SubmittedAt: &github.Timestamp{Time: now}})
	w.gh.SetPullRequest(repo, apiPR(7, "open", false, now))
	third := w.spend(func() { rep = w.pass(r) })
	if rep.Results[reconcile.ResultOK] != 1 || rep.Reconciled != 1 {
		t.Fatalf("third pass %+v, want ok with one object", rep)
	}
	if !strings.Contains(w.doraView().PullRequests[7], "reviews=3 approvals=1") {
		t.Errorf("pull request #7 after its new review: %s", w.doraView().PullRequests[7])
	}
	// The probe (200) and one query; the repository, branches and
	// deployments 304.
	if third.requests != 5 || third.restSpent != 1 || third.pointsSpent != 1 {
		t.Errorf("a pass after one change spent %+v, want 5 requests: 1 REST, 1 point", third)
	}
}

// A GitHubSource on GitHub Enterprise Server (githubAPIURL .../api/v3/)
// sends its GraphQL queries to /api/graphql, not under /api/v3.
func TestBackfill_EnterpriseGraphQLEndpoint(t *testing.T) {
	w := newWorld(t)
	graphQLStory(w, 3, 0, time.Now().Add(-time.Hour).Truncate(time.Second))
	w.source("widgets", repo, 0)
	// The fake serves Enterprise's paths as well.
	res := w.dyn.Resource(reconcile.GitHubSources).Namespace(w.ns)
	src, err := res.Get(context.Background(), "widgets", metav1.GetOptions{})
	if err == nil {
		_ = unstructured.SetNestedField(src.Object, w.gh.URL()+"api/v3/", "spec", "githubAPIURL")
		_, err = res.Update(context.Background(), src, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	rep := w.pass(w.reconciler())
	if rep.Results[reconcile.ResultOK] != 1 || rep.Reconciled != 3+2 {
		t.Fatalf("pass %+v, want ok with 5 objects", rep)
	}
	got := w.gh.GraphQLQueries()
	if got["/api/graphql"] != 1 || len(got) != 1 {
		t.Errorf("GraphQL queries by path %v, want one at /api/graphql", got)
	}
}

// GraphQL's in-band errors (HTTP 200) are taken as the REST API's answers
// are: NOT_FOUND and FORBIDDEN cost the pull request list only (the pass
// is degraded, the list a failed unit, the rest read), the point budget
// (RATE_LIMITED, or fewer points left than MinRemaining) as a rate limit
// honoured until GraphQL's reset.
func TestBackfill_GraphQLErrorsClassified(t *testing.T) {
	reset := time.Now().Add(40 * time.Minute).Truncate(time.Second)
	for _, tc := range []struct {
		name      string
		fault     func(*fakegithub.Server)
		result    string
		errText   string
		notBefore bool
	}{
		{"not found", func(gh *fakegithub.Server) { gh.GraphQLErrorOnce("NOT_FOUND") }, reconcile.ResultDegraded, "", false},
		{"forbidden", func(gh *fakegithub.Server) { gh.GraphQLErrorOnce("FORBIDDEN") }, reconcile.ResultDegraded, "", false},
		{"rate limited", func(gh *fakegithub.Server) { gh.SetGraphQLRateLimit(0, reset) }, reconcile.ResultRateLimited, "RATE_LIMITED", true},
		{"under MinRemaining after the first query", func(gh *fakegithub.Server) { gh.SetGraphQLRateLimit(60, reset) }, reconcile.ResultRateLimited, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			graphQLStory(w, 150, 0, time.Now().Add(-time.Hour).Truncate(time.Second))
			w.source("widgets", repo, 0)
			tc.fault(w.gh)
			rep := w.pass(w.reconciler())
			if rep.Results[tc.result] != 1 {
				t.Fatalf("report %+v, want %s", rep, tc.result)
			}
			if tc.result == reconcile.ResultDegraded && rep.FailedUnits != 1 {
				t.Errorf("report %+v, want the pull request list as its one failed unit", rep)
			}
			if tc.errText != "" && (len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Error(), tc.errText)) {
				t.Errorf("errors %v, want one naming %s", rep.Errors, tc.errText)
			}
			nb := w.cursor().Data[reconcile.KeyNotBefore]
			if tc.notBefore != (nb == reset.UTC().Format(time.RFC3339)) {
				t.Errorf("notBefore %q (GraphQL's reset %s)", nb, reset.UTC().Format(time.RFC3339))
			}
			if tc.notBefore {
				// The next pass waits for the reset: it asks GitHub nothing.
				before := w.gh.Requests()
				if rep := w.pass(w.reconciler()); rep.Results[reconcile.ResultRateLimited] != 1 || w.gh.Requests() != before {
					t.Errorf("pass before the reset: %+v after %d requests", rep, w.gh.Requests()-before)
				}
			}
		})
	}
}

// A first backfill larger than one pass goes on where the last pass was
// cut: the next pass reads the newest page (all read before), then jumps
// past the pages read to the GraphQL cursor the cut pass kept, so no page
// is asked for twice beyond the newest one of each pass.
func TestBackfill_GraphQLFullPassResumesAfterTheCut(t *testing.T) {
	w := newWorld(t)
	const prs = 450 // five pages
	graphQLStory(w, prs, 0, time.Now().Add(-72*time.Hour).Truncate(time.Second))
	w.source("widgets", repo, 0)
	// A pass is cut by its requests here, not by its time (Budget: a loaded
	// machine writes 300 new objects slowly).
	r := w.reconciler(func(o *reconcile.Options) { o.MaxRequests, o.Budget = 5, 3*time.Minute })
	// Each pass first reads the repository's id and name. 1: probe, pages
	// 1-3 (cut). 2: probe, page 1 (read: jump), pages 4 and 5 (the end).
	// 3: probe, page 1 (the band reaches the window's end: done),
	// branches, deployments.
	passes := 0
	for ; passes < 10; passes++ {
		rep := w.pass(r)
		if rep.Results[reconcile.ResultOK] == 1 {
			passes++
			break
		}
		if rep.Results[reconcile.ResultPartial] != 1 {
			t.Fatalf("pass %d: %+v", passes+1, rep)
		}
	}
	if passes != 3 || w.gh.Requests() != 15 {
		t.Errorf("the first backfill took %d passes and %d requests, want 3 and 15", passes, w.gh.Requests())
	}
	v := w.doraView()
	for k := int64(1); k <= prs; k++ {
		if !strings.Contains(v.PullRequests[k], "approvals=1") {
			t.Errorf("pull request #%d: %s", k, v.PullRequests[k])
		}
	}
	for k := range w.cursor().Data {
		if strings.Contains(k, ".scan") || strings.Contains(k, "scanResume") {
			t.Errorf("the completed full pass left %s in the cursor", k)
		}
	}
}
