package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/reconcile"
)

// doraStory is a repository's review and deployment history, told once as
// webhook deliveries and once as GitHub's REST API lists it afterwards.
// Pull request #1 is reviewed (comment, then approval) and merged; #2 gets
// changes requested, then an approval, and is merged. Production gets
// deployment 900 (succeeds), 901 of #1's merge (fails: the outage) and 902
// of #2's merge (recovers), so 902 ships #2 by SHA and #1 by window.
type doraStory struct {
	base       time.Time
	deliveries []ghwebhook.Delivery
	// The API's view at the end.
	pulls    []*github.PullRequest
	reviews  map[int][]*github.PullRequestReview
	deploys  []*github.Deployment
	statuses map[int64][]*github.DeploymentStatus
}

func newDORAStory(base time.Time) *doraStory {
	s := &doraStory{base: base, reviews: map[int][]*github.PullRequestReview{}, statuses: map[int64][]*github.DeploymentStatus{}}
	at := func(h float64) time.Time { return base.Add(time.Duration(h * float64(time.Hour))) }
	seq := 0
	add := func(event string, body []byte) {
		seq++
		s.deliveries = append(s.deliveries, ghwebhook.Delivery{Event: event, Body: body,
			ID: fmt.Sprintf("%08d-dora-4000-8000-000000000000", seq)})
	}
	pr := func(n int, opened, merged float64, mergeSHA string) ghwebhook.PullRequest {
		return ghwebhook.PullRequest{Repo: repo, Number: n, User: "octocat", Title: fmt.Sprintf("change %d", n),
			Head: fmt.Sprintf("feature-%d", n), HeadSHA: fmt.Sprintf("head%d", n), MergeCommitSHA: mergeSHA,
			CreatedAt: at(opened), UpdatedAt: at(opened)}
	}
	review := func(p ghwebhook.PullRequest, id int64, who, state string, h float64) {
		r := ghwebhook.Review{PullRequest: p, Action: "submitted", ID: id, Reviewer: who, State: state, SubmittedAt: at(h)}
		add("pull_request_review", r.Payload())
		var ev github.PullRequestReviewEvent
		must(json.Unmarshal(r.Payload(), &ev))
		// The REST API upper-cases review states.
		rv := ev.GetReview()
		rv.State = github.String(map[string]string{"approved": "APPROVED", "commented": "COMMENTED",
			"changes_requested": "CHANGES_REQUESTED"}[state])
		s.reviews[p.Number] = append(s.reviews[p.Number], rv)
	}
	merge := func(p ghwebhook.PullRequest, h float64) {
		p.Action, p.Merged, p.UpdatedAt = "closed", true, at(h)
		add("pull_request", p.Payload())
		var ev github.PullRequestEvent
		must(json.Unmarshal(p.Payload(), &ev))
		s.pulls = append(s.pulls, ev.GetPullRequest())
	}
	open := func(p ghwebhook.PullRequest) {
		p.Action = "opened"
		add("pull_request", p.Payload())
	}
	deploy := func(id int64, sha string, created float64, states ...string) {
		d := ghwebhook.Deployment{Repo: repo, ID: id, Environment: "production", Ref: "main", SHA: sha,
			Creator: "deployer", CreatedAt: at(created)}
		add("deployment", d.Payload())
		for i, state := range states {
			sid := id*10 + int64(i) + 1
			body := d.Status(sid, state, at(created+0.25*float64(i+1)))
			add("deployment_status", body)
			var ev github.DeploymentStatusEvent
			must(json.Unmarshal(body, &ev))
			s.statuses[id] = append(s.statuses[id], ev.GetDeploymentStatus())
		}
		var ev github.DeploymentEvent
		must(json.Unmarshal(d.Payload(), &ev))
		s.deploys = append(s.deploys, ev.GetDeployment())
	}

	deploy(900, "m0", -60, "pending", "success")
	one := pr(1, -50, -47, "m1")
	open(one)
	review(one, 501, "bob", "commented", -49)
	review(one, 502, "carol", "approved", -48)
	merge(one, -47)
	deploy(901, "m1", -46, "pending", "failure")
	two := pr(2, -30, -27, "m2")
	open(two)
	review(two, 503, "bob", "changes_requested", -29)
	review(two, 504, "carol", "approved", -28)
	merge(two, -27)
	deploy(902, "m2", -26, "pending", "in_progress", "success")
	return s
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// serve puts the story's end state into the world's fake GitHub.
func (s *doraStory) serve(w *world) {
	for _, p := range s.pulls {
		w.gh.SetPullRequest(repo, p)
		for _, rv := range s.reviews[p.GetNumber()] {
			w.gh.AddReview(repo, p.GetNumber(), rv)
		}
	}
	for _, d := range s.deploys {
		w.gh.SetDeployment(repo, d)
		for _, st := range s.statuses[d.GetID()] {
			w.gh.AddDeploymentStatus(repo, d.GetID(), st)
		}
	}
}

func (s *doraStory) deliver(w *world) {
	w.t.Helper()
	for _, d := range s.deliveries {
		if code := w.gh.Deliver(context.Background(), repo, d); code != http.StatusAccepted {
			w.t.Fatalf("delivery %s (%s) answered %d", d.ID, d.Event, code)
		}
	}
}

// doraView is what the DORA keys and review latency are computed from:
// the review fields of the pull requests, the deployments' state, first
// success and failure, status count and the changes they shipped.
type doraView struct {
	PullRequests map[int64]string
	Deployments  map[int64]string
}

func (w *world) doraView() doraView {
	w.t.Helper()
	ctx := context.Background()
	prs, err := w.env.Gitpulse.StableV1().PullRequests(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	deps, err := w.env.Gitpulse.StableV1().GitHubDeployments(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	v := doraView{PullRequests: map[int64]string{}, Deployments: map[int64]string{}}
	ts := func(t *metav1.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, p := range prs.Items {
		s := p.Spec
		v.PullRequests[s.Number] = fmt.Sprintf("status=%s merged=%s mergeSHA=%s opened=%s reviews=%d approvals=%d dismissed=%d firstReview=%s firstApproval=%s",
			s.Status, ts(s.MergedAt), s.MergeCommitSHA, ts(s.OpenedAt), s.ReviewCount, s.ApprovalCount, s.DismissedCount,
			ts(s.FirstReviewAt), ts(s.FirstApprovalAt))
	}
	for _, d := range deps.Items {
		s := d.Spec
		changes := ""
		for _, c := range s.Changes {
			changes += fmt.Sprintf("#%d(%s,opened=%s,merged=%s) ", c.Number, c.By, ts(c.OpenedAt), ts(c.MergedAt))
		}
		v.Deployments[s.DeploymentID] = fmt.Sprintf("env=%s sha=%s ref=%s created=%s state=%s at=%s id=%d statuses=%d firstSuccess=%s firstFailure=%s changes=%d[%s]",
			s.Environment, s.SHA, s.Ref, ts(s.CreatedAt), s.State, ts(s.StateAt), s.StateID, s.StatusCount,
			ts(s.FirstSuccessAt), ts(s.FirstFailureAt), s.ChangeCount, changes)
	}
	return v
}

func (w *world) resourceVersions() map[string]string {
	w.t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	prs, err := w.env.Gitpulse.StableV1().PullRequests(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, p := range prs.Items {
		out["pr/"+p.Name] = p.ResourceVersion
	}
	deps, err := w.env.Gitpulse.StableV1().GitHubDeployments(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, d := range deps.Items {
		out["deploy/"+d.Name] = d.ResourceVersion
	}
	return out
}

func compareViews(t *testing.T, what string, got, want doraView) {
	t.Helper()
	for n, w := range want.PullRequests {
		if g := got.PullRequests[n]; g != w {
			t.Errorf("%s: pull request #%d\n got: %s\nwant: %s", what, n, g, w)
		}
	}
	for id, w := range want.Deployments {
		if g := got.Deployments[id]; g != w {
			t.Errorf("%s: deployment %d\n got: %s\nwant: %s", what, id, g, w)
		}
	}
	if len(got.PullRequests) != len(want.PullRequests) || len(got.Deployments) != len(want.Deployments) {
		t.Errorf("%s: %d pull requests and %d deployments, want %d and %d", what,
			len(got.PullRequests), len(got.Deployments), len(want.PullRequests), len(want.Deployments))
	}
}

// A repository whose reviews and deployments gitpulse never received
// (installed afterwards, or every delivery lost beyond GitHub's retention)
// is backfilled from the API into the same objects the deliveries give:
// review times and counts, deployment state, first success and failure,
// status counts and the pull requests each deployment shipped (by SHA and
// by window). Deliveries arriving after the backfill count nothing twice,
// and a pass without drift writes nothing.
func TestBackfill_ReviewsAndDeploymentsAsTheDeliveriesWouldRecordThem(t *testing.T) {
	story := newDORAStory(time.Now().Add(-time.Hour).Truncate(time.Second))

	delivered := newWorld(t)
	story.deliver(delivered)
	want := delivered.doraView()
	if want.Deployments[902] == "" || want.PullRequests[1] == "" {
		t.Fatalf("the deliveries recorded %+v", want)
	}
	t.Logf("delivered: %+v", want)

	backfilled := newWorld(t)
	story.serve(backfilled)
	backfilled.source("widgets", repo, 0)
	r := backfilled.reconciler()
	rep := backfilled.pass(r)
	t.Logf("backfill pass: %+v, %d API requests", rep, backfilled.gh.Requests())
	compareViews(t, "backfilled from scratch", backfilled.doraView(), want)
	_, reconciled := backfilled.events()
	for name, n := range reconciled {
		if n != 1 {
			t.Errorf("%s has %d Reconciled Events, want 1", name, n)
		}
	}
	envs := 0
	list, err := backfilled.env.Kube.CoreV1().Events(backfilled.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "GitHubDeployment" {
			if e.Annotations[stablev1.AnnotationEnvironment] != "production" {
				t.Errorf("deployment Event %s has environment annotation %q", e.Name, e.Annotations[stablev1.AnnotationEnvironment])
			}
			envs++
		}
	}
	if envs != 3 {
		t.Errorf("%d Reconciled deployment Events, want 3", envs)
	}

	t.Run("a pass without drift writes nothing", func(t *testing.T) {
		before, events := backfilled.resourceVersions(), len(list.Items)
		backfilled.pass(r)
		if after := backfilled.resourceVersions(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("second pass wrote: %v -> %v", before, after)
		}
		list, _ := backfilled.env.Kube.CoreV1().Events(backfilled.ns).List(context.Background(), metav1.ListOptions{})
		if len(list.Items) != events {
			t.Errorf("second pass wrote %d Events", len(list.Items)-events)
		}
	})

	t.Run("deliveries after the backfill count nothing twice", func(t *testing.T) {
		story.deliver(backfilled)
		compareViews(t, "backfilled, then delivered", backfilled.doraView(), want)
	})

	t.Run("a backfill after the deliveries counts nothing twice and writes nothing", func(t *testing.T) {
		story.serve(delivered)
		delivered.source("widgets", repo, 0)
		before := delivered.resourceVersions()
		delivered.pass(delivered.reconciler())
		compareViews(t, "delivered, then backfilled", delivered.doraView(), want)
		if after := delivered.resourceVersions(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("the backfill wrote over the deliveries' objects: %v -> %v", before, after)
		}
	})
}

// Every list is a request of the pass's budget: a pass that runs out
// while listing reviews or deployment statuses stops there (partial,
// cursor not moved, nothing half-written), and the next pass finishes.
func TestBackfill_ReviewAndStatusListsSpendThePassBudget(t *testing.T) {
	story := newDORAStory(time.Now().Add(-time.Hour).Truncate(time.Second))
	w := newWorld(t)
	story.serve(w)
	w.source("widgets", repo, 0)
	// the pull request list's probe, one GraphQL query (both pull requests
	// with their reviews), branches, deployments: the first statuses list
	// finds the budget spent.
	rep := w.pass(w.reconciler(func(o *reconcile.Options) { o.MaxRequests = 4 }))
	if rep.Results[reconcile.ResultPartial] != 1 || w.gh.Requests() != 4 {
		t.Fatalf("report %+v after %d requests, want partial after 4", rep, w.gh.Requests())
	}
	v := w.doraView()
	if len(v.PullRequests) != 2 || len(v.Deployments) != 0 {
		t.Fatalf("a cut pass recorded %+v", v)
	}
	if !strings.Contains(v.PullRequests[1], "reviews=2 approvals=1") {
		t.Errorf("pull request #1 without its reviews: %s", v.PullRequests[1])
	}
	if got := w.cursor().Data[reconcile.KeyDeploymentsSince]; got != "" {
		t.Errorf("deployments cursor moved by a cut pass: %q", got)
	}
	rep = w.pass(w.reconciler())
	v = w.doraView()
	if rep.Results[reconcile.ResultOK] != 1 || len(v.Deployments) != 3 || !strings.Contains(v.Deployments[902], "changes=2") {
		t.Fatalf("the next pass: %+v, %+v", rep, v.Deployments)
	}
}

// A full pass that needs more requests than a pass has (a review list per
// pull request, a status list per deployment) goes on over several passes,
// each reading where the last stopped, instead of starting again from the
// newest every time and never reaching the rest.
func TestBackfill_FullPassLargerThanTheBudgetProgresses(t *testing.T) {
	w := newWorld(t)
	base := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	const prs = 12
	for n := 1; n <= prs; n++ {
		w.gh.SetPullRequest(repo, apiPR(n, "open", false, base.Add(time.Duration(n)*time.Minute)))
		w.gh.AddReview(repo, n, &github.PullRequestReview{ID: github.Int64(int64(7000 + n)), State: github.String("APPROVED"),
			User: &github.User{Login: github.String("carol")}, SubmittedAt: &github.Timestamp{Time: base.Add(time.Duration(n) * time.Minute)}})
	}
	for id := int64(1); id <= 4; id++ {
		w.gh.SetDeployment(repo, &github.Deployment{ID: github.Int64(id), Environment: github.String("staging"),
			Ref: github.String("main"), SHA: github.String(fmt.Sprintf("s%d", id)),
			CreatedAt: &github.Timestamp{Time: base.Add(time.Duration(id) * time.Hour)}, UpdatedAt: &github.Timestamp{Time: base.Add(time.Duration(id) * time.Hour)}})
		w.gh.AddDeploymentStatus(repo, id, &github.DeploymentStatus{ID: github.Int64(id * 10), State: github.String("success"),
			CreatedAt: &github.Timestamp{Time: base.Add(time.Duration(id) * time.Hour)}, UpdatedAt: &github.Timestamp{Time: base.Add(time.Duration(id) * time.Hour)}})
	}
	w.source("widgets", repo, 0)
	// 7: each pass also reads the repository's id and name first.
	r := w.reconciler(func(o *reconcile.Options) { o.MaxRequests = 7 })
	passes := 0
	for ; passes < 10; passes++ {
		rep := w.pass(r)
		if rep.Results[reconcile.ResultOK] == 1 {
			break
		}
		if rep.Results[reconcile.ResultPartial] != 1 {
			t.Fatalf("pass %d: %+v", passes+1, rep)
		}
	}
	// The pull requests with their reviews (GraphQL), 4 status lists,
	// branches and deployments lists (read again by each pass that gets
	// to them): at most 5 passes of 7.
	if passes+1 > 5 {
		t.Fatalf("the full pass took %d passes of 7 requests (%d requests)", passes+1, w.gh.Requests())
	}
	v := w.doraView()
	for n := int64(1); n <= prs; n++ {
		if !strings.Contains(v.PullRequests[n], "reviews=1 approvals=1") {
			t.Errorf("pull request #%d: %s", n, v.PullRequests[n])
		}
	}
	if len(v.Deployments) != 4 {
		t.Errorf("%d deployments backfilled, want 4", len(v.Deployments))
	}
	for k := range w.cursor().Data {
		if strings.Contains(k, ".scan") {
			t.Errorf("the completed full pass left %s in the cursor", k)
		}
	}
	t.Logf("%d passes, %d requests", passes+1, w.gh.Requests())
}
