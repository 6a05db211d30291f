package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/pkg/reconcile"
)

// recorded is what the namespace holds: pull request numbers, branch
// names and deployment ids (read by listing, so the test does not depend
// on how objects are named).
type recorded struct {
	pulls    []int64
	branches []string
	deploys  []int64
}

func (w *world) recorded() recorded {
	w.t.Helper()
	ctx := context.Background()
	var out recorded
	prs, err := w.env.Gitpulse.StableV1().PullRequests(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, pr := range prs.Items {
		out.pulls = append(out.pulls, pr.Spec.Number)
	}
	bs, err := w.env.Gitpulse.StableV1().Branches(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, b := range bs.Items {
		out.branches = append(out.branches, b.Spec.Name)
	}
	ds, err := w.env.Gitpulse.StableV1().GitHubDeployments(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, d := range ds.Items {
		out.deploys = append(out.deploys, d.Spec.DeploymentID)
	}
	slices.Sort(out.pulls)
	sort.Strings(out.branches)
	slices.Sort(out.deploys)
	return out
}

// failures is the cursor's failed units, by unit.
func (w *world) failures() map[string]map[string]any {
	w.t.Helper()
	out := map[string]map[string]any{}
	if raw := w.cursor().Data[reconcile.KeyFailures]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			w.t.Fatalf("cursor failures %q: %v", raw, err)
		}
	}
	return out
}

// history is five pull requests, three branches and two deployments (with
// a status each) of repo on the fake GitHub.
func (w *world) history() recorded {
	now := time.Now().Truncate(time.Second)
	for n := 1; n <= 5; n++ {
		w.gh.SetPullRequest(repo, apiPR(n, "open", false, now.Add(-time.Duration(n)*time.Hour)))
		w.gh.AddReview(repo, n, &github.PullRequestReview{ID: github.Int64(int64(9000 + n)), State: github.String("APPROVED"),
			User: &github.User{Login: github.String("carol")}, SubmittedAt: &github.Timestamp{Time: now.Add(-time.Duration(n) * time.Hour)}})
	}
	for _, b := range []string{"feature-a", "feature-b", "main"} {
		w.gh.SetBranch(repo, b, "sha-"+b)
	}
	for _, id := range []int64{41, 42} {
		at := now.Add(-time.Duration(id-40) * time.Hour)
		w.gh.SetDeployment(repo, &github.Deployment{ID: github.Int64(id), Environment: github.String("production"),
			Ref: github.String("main"), SHA: github.String(fmt.Sprintf("s%d", id)),
			CreatedAt: &github.Timestamp{Time: at}, UpdatedAt: &github.Timestamp{Time: at}})
		w.gh.AddDeploymentStatus(repo, id, &github.DeploymentStatus{ID: github.Int64(id * 10), State: github.String("success"),
			CreatedAt: &github.Timestamp{Time: at}, UpdatedAt: &github.Timestamp{Time: at}})
	}
	return recorded{pulls: []int64{1, 2, 3, 4, 5}, branches: []string{"feature-a", "feature-b", "main"}, deploys: []int64{41, 42}}
}

// An error GitHub answers for one unit of work — one pull request's
// reviews, the branch list, the pull request list, the deployment list, one
// deployment's statuses, the hook's deliveries — costs that unit only:
// everything else is backfilled in the same pass, which ends degraded; the
// error is counted by resource and reason and the unit remembered in the
// cursor; a pass before its backoff is over does not ask again; once the
// fault clears, the first pass after the backoff reads it, and the pass is
// ok again with nothing remembered.
func TestPoisonPill_OneUnitsErrorCostsThatUnitOnly(t *testing.T) {
	for _, tt := range []struct {
		name         string
		method, path string
		status       int
		hook         bool
		missing      func(all recorded) recorded // what the faulty pass cannot record
		wantCounted  string                      // the cursor's errors key
		wantUnit     string
	}{
		{name: "404 on one pull request's reviews (a token that may not see them)", method: http.MethodGet,
			path: "/pulls/3/reviews", status: http.StatusNotFound,
			missing:     func(all recorded) recorded { return recorded{pulls: []int64{3}} },
			wantCounted: "reviews.not_found", wantUnit: "pull/" + repo + "#3"},
		{name: "403 on one pull request's reviews", method: http.MethodGet, path: "/pulls/2/reviews", status: http.StatusForbidden,
			missing:     func(all recorded) recorded { return recorded{pulls: []int64{2}} },
			wantCounted: "reviews.forbidden", wantUnit: "pull/" + repo + "#2"},
		{name: "5xx on the branch list does not stop pull requests or deployments", method: http.MethodGet,
			path: "/branches", status: http.StatusBadGateway,
			missing:     func(all recorded) recorded { return recorded{branches: all.branches} },
			wantCounted: "branches.server_error", wantUnit: "branches/" + repo},
		{name: "5xx on the pull request list does not stop branches or deployments", method: http.MethodGet,
			path: "/pulls", status: http.StatusServiceUnavailable,
			missing:     func(all recorded) recorded { return recorded{pulls: all.pulls} },
			wantCounted: "pulls.server_error", wantUnit: "pulls/" + repo},
		{name: "no answer for the deployment list", method: http.MethodGet, path: "/deployments", status: 0,
			missing:     func(all recorded) recorded { return recorded{deploys: all.deploys} },
			wantCounted: "deployments.network", wantUnit: "deployments/" + repo},
		{name: "404 on one deployment's statuses", method: http.MethodGet, path: "/deployments/42/statuses", status: http.StatusNotFound,
			missing:     func(all recorded) recorded { return recorded{deploys: []int64{42}} },
			wantCounted: "deployment_statuses.not_found", wantUnit: "deployment/" + repo + "#42"},
		{name: "403 on the hook's deliveries does not stop backfill", method: http.MethodGet, path: "/deliveries",
			status: http.StatusForbidden, hook: true,
			missing:     func(all recorded) recorded { return recorded{} },
			wantCounted: "deliveries.forbidden", wantUnit: "deliveries/" + repo},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			if strings.HasSuffix(tt.path, "/reviews") {
				reviewsOverREST(w)
			}
			hook := int64(0)
			if tt.hook {
				hook = w.hook
			}
			w.source("widgets", repo, hook)
			all := w.history()
			missing := tt.missing(all)
			want := recorded{
				pulls:    slices.DeleteFunc(slices.Clone(all.pulls), func(n int64) bool { return slices.Contains(missing.pulls, n) }),
				branches: slices.DeleteFunc(slices.Clone(all.branches), func(b string) bool { return slices.Contains(missing.branches, b) }),
				deploys:  slices.DeleteFunc(slices.Clone(all.deploys), func(id int64) bool { return slices.Contains(missing.deploys, id) }),
			}
			now := time.Now()
			clock := func() time.Time { return now }
			r := w.reconciler(func(o *reconcile.Options) { o.Now = clock })
			w.gh.FailOn(tt.method, tt.path, tt.status, -1)

			rep := w.pass(r)
			if rep.Results[reconcile.ResultDegraded] != 1 || rep.FailedUnits != 1 {
				t.Fatalf("faulty pass: %+v, want degraded with one failed unit", rep)
			}
			if got := w.recorded(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("after the faulty pass recorded %v, want %v", got, want)
			}
			cm := w.cursor()
			if got := cm.Data[reconcile.KeyErrorsPrefix+tt.wantCounted]; got != "1" {
				t.Errorf("errors.%s = %q, want 1 (cursor %v)", tt.wantCounted, got, cm.Data)
			}
			if got := cm.Data[reconcile.KeyPassesPrefix+reconcile.ResultDegraded]; got != "1" {
				t.Errorf("passes.degraded = %q, want 1", got)
			}
			fs := w.failures()
			f, ok := fs[tt.wantUnit]
			if len(fs) != 1 || !ok {
				t.Fatalf("cursor failures %v, want only %s", fs, tt.wantUnit)
			}
			resource, reason, _ := strings.Cut(tt.wantCounted, ".")
			if f["resource"] != resource || f["reason"] != reason || f["attempts"] != 1.0 ||
				!strings.Contains(fmt.Sprint(f["url"]), tt.path) || f["status"] != float64(tt.status) && tt.status != 0 {
				t.Errorf("failure %v, want resource %s, reason %s, status %d, one attempt, the URL", f, resource, reason, tt.status)
			}
			asked := w.gh.Faulted(tt.method, tt.path)

			// Before the backoff is over: not asked again, still degraded.
			now = now.Add(30 * time.Second)
			if rep := w.pass(r); rep.Results[reconcile.ResultDegraded] != 1 || w.gh.Faulted(tt.method, tt.path) != asked {
				t.Errorf("a pass within the backoff: %+v, asked %d more times; want degraded, none",
					rep, w.gh.Faulted(tt.method, tt.path)-asked)
			}

			// The fault clears; after the backoff the unit is read again.
			w.gh.ClearFaults()
			now = now.Add(2 * time.Minute)
			if rep := w.pass(r); rep.Results[reconcile.ResultOK] != 1 || rep.FailedUnits != 0 {
				t.Errorf("the pass after the backoff: %+v, want ok", rep)
			}
			if got := w.recorded(); fmt.Sprint(got) != fmt.Sprint(all) {
				t.Errorf("after the retry recorded %v, want everything: %v", got, all)
			}
			if fs := w.failures(); len(fs) != 0 {
				t.Errorf("failures remembered after the retry succeeded: %v", fs)
			}
		})
	}
}

// A unit that keeps failing is asked for ever less often (1 minute after
// the first failure, doubling, up to the cap), one attempt per due pass.
func TestPoisonPill_PersistentFailureBacksOffExponentially(t *testing.T) {
	w := newWorld(t)
	reviewsOverREST(w)
	w.source("widgets", repo, 0)
	w.history()
	w.gh.FailOn(http.MethodGet, "/pulls/3/reviews", http.StatusNotFound, -1)
	start := time.Now()
	now := start
	r := w.reconciler(func(o *reconcile.Options) {
		o.Now = func() time.Time { return now }
		o.MaxRetryBackoff = 4 * time.Minute
	})
	// A pass every 30 s for 12 minutes: asked at 0, then after 1, 2, 4, 4,
	// 4 minutes (the cap).
	var askedAt []time.Duration
	for i := 0; i < 24; i++ {
		before := w.gh.Faulted(http.MethodGet, "/pulls/3/reviews")
		w.pass(r)
		if w.gh.Faulted(http.MethodGet, "/pulls/3/reviews") != before {
			askedAt = append(askedAt, now.Sub(start))
		}
		now = now.Add(30 * time.Second)
	}
	want := []time.Duration{0, time.Minute, 3 * time.Minute, 7 * time.Minute, 11 * time.Minute}
	if !slices.Equal(askedAt, want) {
		t.Errorf("asked at %v, want %v", askedAt, want)
	}
	if f := w.failures()["pull/"+repo+"#3"]; f["attempts"] != float64(len(want)) {
		t.Errorf("attempts %v, want %d", f["attempts"], len(want))
	}
}

// The failed units a cursor remembers are bounded (Options.MaxFailures):
// beyond it the oldest first failure is forgotten, the cursor stays small.
func TestPoisonPill_RememberedFailuresAreBounded(t *testing.T) {
	w := newWorld(t)
	reviewsOverREST(w)
	w.source("widgets", repo, 0)
	now := time.Now().Truncate(time.Second)
	clock := now
	r := w.reconciler(func(o *reconcile.Options) { o.Now = func() time.Time { return clock }; o.MaxFailures = 3 })
	// Pull requests 1..3 fail in a first pass, 4..6 (new, so updated
	// last) in a second.
	for _, batch := range [][]int{{1, 2, 3}, {4, 5, 6}} {
		for _, n := range batch {
			w.gh.SetPullRequest(repo, apiPR(n, "open", false, now.Add(-time.Duration(10-n)*time.Minute)))
			w.gh.FailOn(http.MethodGet, fmt.Sprintf("/pulls/%d/reviews", n), http.StatusForbidden, -1)
		}
		w.pass(r)
		clock = clock.Add(10 * time.Minute)
	}
	fs := w.failures()
	var units []string
	for u := range fs {
		units = append(units, u)
	}
	sort.Strings(units)
	want := []string{"pull/" + repo + "#4", "pull/" + repo + "#5", "pull/" + repo + "#6"}
	if !slices.Equal(units, want) {
		t.Errorf("remembered %v, want the three newest failures %v", units, want)
	}
	if n := len(w.cursor().Data[reconcile.KeyFailures]); n > 3*400 {
		t.Errorf("failures take %d bytes for 3 units", n)
	}
	// Every failed request counts, remembered or not: 3 in the first pass,
	// 6 in the second (1..3 were due again after their minute).
	if got := w.cursor().Data[reconcile.KeyErrorsPrefix+"reviews.forbidden"]; got != "9" {
		t.Errorf("errors.reviews.forbidden = %s, want 9", got)
	}
}

// GitHub failing request after request (an outage) ends the pass as error
// after a few requests instead of spending the budget on it, and a pass
// where nothing GitHub was asked succeeded is an error, not degraded.
func TestPoisonPill_GitHubDownEndsThePassEarly(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, w.hook)
	w.history()
	w.gh.FailOn("", "", http.StatusBadGateway, -1) // every path
	before := w.gh.Requests()
	rep := w.pass(w.reconciler())
	if rep.Results[reconcile.ResultError] != 1 || len(rep.Errors) != 1 {
		t.Fatalf("report %+v, want one source in error", rep)
	}
	if n := w.gh.Requests() - before; n > 3 {
		t.Errorf("%d requests to a GitHub that fails them all, want at most 3", n)
	}
}

// An organisation's GitHubSource whose token may not read one repository's
// pull requests (a fine-grained token given some of the repositories):
// that repository's pull requests are the only loss; the organisation's
// other repositories, and that repository's branches, are backfilled.
func TestPoisonPill_OrganisationRepositoryUnreadableCostsThatListOnly(t *testing.T) {
	w := newWorld(t)
	w.source("acme", "acme", 0)
	now := time.Now().Truncate(time.Second)
	for _, r := range []string{"acme/gadgets", repo} {
		for n := 1; n <= 2; n++ {
			w.gh.SetPullRequest(r, apiPR(n, "open", false, now.Add(-time.Duration(n)*time.Hour)))
		}
		w.gh.SetBranch(r, "main", "abc")
	}
	w.gh.FailOn(http.MethodGet, "/repos/acme/gadgets/pulls", http.StatusNotFound, -1)
	rep := w.pass(w.reconciler())
	if rep.Results[reconcile.ResultDegraded] != 1 || rep.FailedUnits != 1 {
		t.Fatalf("report %+v, want degraded with one failed unit", rep)
	}
	ctx := context.Background()
	prs, err := w.env.Gitpulse.StableV1().PullRequests(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, pr := range prs.Items {
		got = append(got, fmt.Sprintf("%s#%d", pr.Spec.Repository, pr.Spec.Number))
	}
	sort.Strings(got)
	if want := []string{repo + "#1", repo + "#2"}; !slices.Equal(got, want) {
		t.Errorf("pull requests %v, want %v", got, want)
	}
	bs, err := w.env.Gitpulse.StableV1().Branches(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(bs.Items) != 2 {
		t.Errorf("branches: %d, %v; want both repositories' main", len(bs.Items), err)
	}
	if fs := w.failures(); len(fs) != 1 || fs["pulls/acme/gadgets"] == nil {
		t.Errorf("failures %v, want pulls/acme/gadgets", fs)
	}
}

// reviewsOverREST makes the fake GitHub answer its GraphQL endpoint 404, as
// a GitHub Enterprise Server behind a proxy without it would: the pass then
// reads each pull request's reviews from the REST list (graphql.go), where
// one pull request's reviews can fail alone. (Over GraphQL a token that may
// not read them fails the whole query: the pull request list's unit.)
func reviewsOverREST(w *world) {
	w.gh.FailOn(http.MethodPost, "/graphql", http.StatusNotFound, -1)
}
