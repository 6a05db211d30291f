package reconcile_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
	"github.com/liatrio/gitpulse/pkg/reconcile"
)

// Deliveries that failed at GitHub (the Broker did not acknowledge) are
// redelivered once, come back through the webhook path and are recorded
// exactly once; deliveries that succeeded are never redelivered, and a
// second pass asks for nothing.
func TestRedelivery_FailedDeliveriesAreRecoveredExactlyOnce(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, w.hook)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var ok, failed []string
	for i := 1; i <= 3; i++ {
		id, code := w.deliverPR(i, "opened", base.Add(time.Duration(i)*time.Second))
		if code != http.StatusAccepted {
			t.Fatalf("delivery %d answered %d", i, code)
		}
		ok = append(ok, id)
	}
	w.outage.Store(true)
	for i := 4; i <= 6; i++ {
		id, code := w.deliverPR(i, "opened", base.Add(time.Duration(i)*time.Second))
		if code != http.StatusBadRequest {
			t.Fatalf("delivery %d during the outage answered %d", i, code)
		}
		failed = append(failed, id)
	}
	w.outage.Store(false)
	for _, id := range failed {
		if w.hasEvent(id) {
			t.Fatalf("delivery %s recorded during the outage", id)
		}
	}

	rep := w.pass(w.reconciler())
	if rep.Redeliveries != len(failed) {
		t.Errorf("first pass asked for %d redeliveries, want %d", rep.Redeliveries, len(failed))
	}
	byDelivery, _ := w.events()
	for _, id := range append(append([]string{}, ok...), failed...) {
		if byDelivery[id] != 1 {
			t.Errorf("delivery %s has %d Events, want 1", id, byDelivery[id])
		}
	}
	for _, id := range ok {
		if n := w.gh.Redeliveries(id); n != 0 {
			t.Errorf("delivery %s succeeded yet was redelivered %d times", id, n)
		}
	}
	for _, id := range failed {
		if n := w.gh.Redeliveries(id); n != 1 {
			t.Errorf("failed delivery %s redelivered %d times, want 1", id, n)
		}
		if a := w.gh.Attempts(id); len(a) != 2 || !a[1].GetRedelivery() || a[1].GetStatusCode() != http.StatusAccepted {
			t.Errorf("attempts of %s: %+v", id, a)
		}
	}
	if rep := w.pass(w.reconciler()); rep.Redeliveries != 0 {
		t.Errorf("second pass asked for %d redeliveries, want 0", rep.Redeliveries)
	}
	cm := w.cursor()
	if got := cm.Data[reconcile.KeyUnrecovered]; got != "0" {
		t.Errorf("unrecovered after recovery = %q, want 0", got)
	}
	// The cursor goes with its GitHubSource (the garbage collector).
	if len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].Kind != "GitHubSource" || cm.OwnerReferences[0].Name != "widgets" {
		t.Errorf("cursor owners %+v, want the GitHubSource", cm.OwnerReferences)
	}
}

// A delivery that was recorded although GitHub was told it failed (the
// answer was lost after the write) is not redelivered: its Event exists.
func TestRedelivery_RecordedDespiteFailedAnswerIsNotRedelivered(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, w.hook)
	w.afterWrite.Store(true)
	id, code := w.deliverPR(1, "opened", time.Now().Add(-time.Minute).Truncate(time.Second))
	w.afterWrite.Store(false)
	if code != http.StatusGatewayTimeout || !w.hasEvent(id) {
		t.Fatalf("setup: code %d, recorded %v", code, w.hasEvent(id))
	}
	if rep := w.pass(w.reconciler()); rep.Redeliveries != 0 {
		t.Errorf("asked for %d redeliveries of a recorded delivery", rep.Redeliveries)
	}
}

// A redelivery that fails again is asked for once more only after
// RedeliverAfter, and then recovers.
func TestRedelivery_FailingAgainIsRetriedAfterRedeliverAfter(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, w.hook)
	w.outage.Store(true)
	id, _ := w.deliverPR(1, "opened", time.Now().Add(-time.Minute).Truncate(time.Second))
	now := time.Now()
	clock := func() time.Time { return now }
	r := w.reconciler(func(o *reconcile.Options) { o.Now = clock; o.RedeliverAfter = 5 * time.Minute })
	w.pass(r) // redelivered into the outage: fails again
	w.pass(r) // too soon to ask again
	if n := w.gh.Redeliveries(id); n != 1 {
		t.Fatalf("redeliveries within RedeliverAfter = %d, want 1", n)
	}
	w.outage.Store(false)
	now = now.Add(6 * time.Minute)
	w.pass(r)
	if n := w.gh.Redeliveries(id); n != 2 || !w.hasEvent(id) {
		t.Fatalf("after RedeliverAfter: %d redeliveries, recorded %v", n, w.hasEvent(id))
	}
	byDelivery, _ := w.events()
	if byDelivery[id] != 1 {
		t.Errorf("%d Events for %s, want 1", byDelivery[id], id)
	}
}

// Every recorded type (githubevent.RecordedEvents) whose delivery failed is
// redelivered once and then recorded; a failed ping is not asked for again.
func TestRedelivery_EveryRecordedTypeIsRedelivered(t *testing.T) {
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	pr := ghwebhook.PullRequest{Repo: repo, Number: 7, Action: "opened", User: "octocat", Title: "change 7",
		Head: "feature-7", HeadSHA: "abc", CreatedAt: at.Add(-time.Hour), UpdatedAt: at}
	dep := ghwebhook.Deployment{Repo: ghwebhook.Repo(repo), ID: 42, Environment: "production", Ref: "main", SHA: "abc",
		Creator: "octocat", CreatedAt: at.Add(-time.Minute)}
	bodies := map[string][]byte{
		"pull_request": pr.Payload(),
		"push": ghwebhook.Push{Repo: ghwebhook.Repo(repo), Branch: "feature-7", Before: strings.Repeat("0", 40),
			After: strings.Repeat("a", 40), Pusher: "octocat", At: at}.Payload(),
		"create":              ghwebhook.Ref{Repo: ghwebhook.Repo(repo), Ref: "feature-8", Sender: "octocat", At: at}.CreatePayload(),
		"delete":              ghwebhook.Ref{Repo: ghwebhook.Repo(repo), Ref: "feature-9", Sender: "octocat", At: at}.DeletePayload(),
		"pull_request_review": ghwebhook.Review{PullRequest: pr, Action: "submitted", ID: 9, Reviewer: "hubot", State: "approved", SubmittedAt: at}.Payload(),
		"deployment":          dep.Payload(),
		"deployment_status":   dep.Status(43, "success", at),
	}
	w := newWorld(t)
	w.source("widgets", repo, w.hook)
	w.outage.Store(true)
	ids := map[string]string{}
	for _, event := range append(slices.Clone(githubevent.RecordedEvents), githubevent.EventPing) {
		body, ok := bodies[event]
		if event == githubevent.EventPing {
			body, ok = []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`), true
		}
		if !ok {
			t.Fatalf("no test delivery for the recorded type %s: add one", event)
		}
		ids[event] = fmt.Sprintf("%08d-0000-4000-8000-%012d", w.seq.Add(1), 0)
		w.gh.Deliver(context.Background(), repo, ghwebhook.Delivery{Event: event, ID: ids[event], Body: body})
	}
	w.outage.Store(false)
	w.pass(w.reconciler())
	w.gh.Wait()
	for event, id := range ids {
		want := 1
		if event == githubevent.EventPing {
			want = 0
		}
		if n := w.gh.Redeliveries(id); n != want {
			t.Errorf("%s: %d redeliveries, want %d", event, n, want)
		}
		if want == 1 && !w.hasEvent(id) {
			t.Errorf("%s: redelivered but not recorded", event)
		}
	}
}

// A redelivery GitHub refuses with a rate limit gives its claim back in the
// cursor: the first pass after the limit lifts asks again, not
// RedeliverAfter later.
func TestRedelivery_RefusedByARateLimitIsAskedAgainAfterTheLimit(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, w.hook)
	w.outage.Store(true)
	id, _ := w.deliverPR(1, "opened", time.Now().Add(-time.Minute).Truncate(time.Second))
	w.outage.Store(false)
	now := time.Now()
	clock := func() time.Time { return now }
	r := w.reconciler(func(o *reconcile.Options) { o.Now = clock; o.RedeliverAfter = time.Hour })
	w.gh.SecondaryLimitOnceOn(http.MethodPost, "/attempts", time.Minute)
	rep := w.pass(r)
	if rep.Results[reconcile.ResultRateLimited] != 1 || rep.Redeliveries != 0 || w.gh.Redeliveries(id) != 0 {
		t.Fatalf("pass into the limit: report %+v, %d redeliveries; want rate_limited and none", rep, w.gh.Redeliveries(id))
	}
	if claims := w.cursor().Data[reconcile.KeyRequested]; strings.Contains(claims, id) {
		t.Errorf("the refused redelivery is still claimed: %s", claims)
	}
	now = now.Add(2 * time.Minute) // past Retry-After, long before RedeliverAfter
	w.pass(r)
	w.gh.Wait()
	if n := w.gh.Redeliveries(id); n != 1 || !w.hasEvent(id) {
		t.Fatalf("after the limit: %d redeliveries, recorded %v; want 1, recorded", n, w.hasEvent(id))
	}
}

// Passes from several replicas overlapping: every failed delivery is
// redelivered exactly once, every backfilled object written once.
func TestConcurrentPasses_NeverRedeliverOrWriteTwice(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, w.hook)
	now := time.Now().Truncate(time.Second)
	for n := 1; n <= 30; n++ {
		w.gh.SetPullRequest(repo, apiPR(100+n, "open", false, now.Add(-time.Duration(n)*time.Hour)))
	}
	w.gh.SetBranch(repo, "main", "aaa")
	w.outage.Store(true)
	var failed []string
	for i := 1; i <= 10; i++ {
		id, _ := w.deliverPR(i, "opened", now.Add(-time.Duration(i)*time.Minute))
		failed = append(failed, id)
	}
	w.outage.Store(false)
	var wg sync.WaitGroup
	reps := make([]reconcile.Report, 4)
	for i := range reps {
		r := w.reconciler() // one per replica
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := r.Pass(context.Background())
			if err != nil {
				t.Errorf("pass %d: %v", i, err)
			}
			reps[i] = rep
		}()
	}
	wg.Wait()
	w.gh.Wait()
	total, reconciled := 0, 0
	for _, rep := range reps {
		total += rep.Redeliveries
		reconciled += rep.Reconciled
	}
	if total != len(failed) || w.gh.TotalRedeliveries() != len(failed) {
		t.Errorf("%d redeliveries reported, %d made, want %d", total, w.gh.TotalRedeliveries(), len(failed))
	}
	byDelivery, perObject := w.events()
	for _, id := range failed {
		if byDelivery[id] != 1 {
			t.Errorf("delivery %s has %d Events, want 1", id, byDelivery[id])
		}
	}
	if reconciled != 31 || len(perObject) != 31 {
		t.Errorf("reconciled %d, objects with a Reconciled Event %d, want 31", reconciled, len(perObject))
	}
	for name, n := range perObject {
		if n != 1 {
			t.Errorf("%s has %d Reconciled Events, want 1", name, n)
		}
	}
}

// A repository with history: pull requests updated within the window are
// backfilled with their state (and merge times), older ones are not, every
// branch appears, and a second pass changes nothing.
func TestBackfill_RepositoryWithHistory(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, 0)
	now := time.Now().Truncate(time.Second)
	states := []struct {
		state  string
		merged bool
		want   stablev1.PullRequestState
	}{{"open", false, stablev1.PullRequestOpen}, {"closed", false, stablev1.PullRequestClosed}, {"closed", true, stablev1.PullRequestMerged}}
	for n := 1; n <= 150; n++ { // two pages of 100
		s := states[n%3]
		w.gh.SetPullRequest(repo, apiPR(n, s.state, s.merged, now.Add(-time.Duration(n)*12*time.Hour)))
	}
	for _, b := range []string{"main", "feature/a", "release-1"} {
		w.gh.SetBranch(repo, b, "sha-"+b)
	}
	rep := w.pass(w.reconciler(func(o *reconcile.Options) { o.Window = 60 * 24 * time.Hour }))
	// 60 days = 120 half-days: pull requests 1..119 are inside the window.
	if rep.Reconciled != 119+3 || rep.Results[reconcile.ResultOK] != 1 {
		t.Fatalf("report %+v, want 122 reconciled, ok", rep)
	}
	prs := w.env.Gitpulse.StableV1().PullRequests(w.ns)
	for _, n := range []int{1, 2, 3, 119} {
		pr, err := prs.Get(context.Background(), naming.PullRequestName(repo, ghwebhook.Repo(repo).ID(), int64(n)), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pull request %d: %v", n, err)
		}
		if want := states[n%3].want; pr.Spec.Status != string(want) {
			t.Errorf("pull request %d status %q, want %q", n, pr.Spec.Status, want)
		}
		if want := states[n%3].merged; want != (pr.Spec.MergedAt != nil) {
			t.Errorf("pull request %d mergedAt %v", n, pr.Spec.MergedAt)
		}
		if pr.Status.ReconciledAt == nil {
			t.Errorf("pull request %d has no status.reconciledAt", n)
		}
	}
	if _, err := prs.Get(context.Background(), naming.PullRequestName(repo, ghwebhook.Repo(repo).ID(), 130), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pull request 130 (outside the window) backfilled: %v", err)
	}
	br, err := w.env.Gitpulse.StableV1().Branches(w.ns).Get(context.Background(), naming.BranchName(repo, ghwebhook.Repo(repo).ID(), "feature/a"), metav1.GetOptions{})
	if err != nil || br.Spec.HeadSHA != "sha-feature/a" || br.Spec.State != string(stablev1.BranchCreated) {
		t.Fatalf("branch feature/a: %+v %v", br, err)
	}
	byDelivery, perObject := w.events()
	if len(byDelivery) != 0 || len(perObject) != 122 {
		t.Errorf("%d delivery Events, %d reconciled objects; want 0 and 122", len(byDelivery), len(perObject))
	}
	if rep := w.pass(w.reconciler()); rep.Reconciled != 0 {
		t.Errorf("a second pass reconciled %d objects, want 0", rep.Reconciled)
	}
}

// Backfill follows the recorder's ordering: it never moves an object that
// a newer delivery already moved, and a delivery newer than the backfill
// still wins.
func TestBackfill_NeverMovesBackwardsAndLaterDeliveriesWin(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, 0)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	// The API lags: it still says open at t0 while a delivery said closed
	// at t0+10s.
	w.gh.SetPullRequest(repo, apiPR(1, "open", false, t0))
	w.deliverPR(1, "closed", t0.Add(10*time.Second))
	// Pull request 2: the API is ahead of nothing; backfilled open at t0,
	// then a newer delivery merges it.
	w.gh.SetPullRequest(repo, apiPR(2, "open", false, t0))
	w.pass(w.reconciler())
	prs := w.env.Gitpulse.StableV1().PullRequests(w.ns)
	pr1, _ := prs.Get(context.Background(), naming.PullRequestName(repo, ghwebhook.Repo(repo).ID(), 1), metav1.GetOptions{})
	if pr1.Spec.Status != string(stablev1.PullRequestMerged) {
		t.Errorf("pull request 1 moved backwards to %q", pr1.Spec.Status)
	}
	w.deliverPR(2, "closed", t0.Add(time.Minute))
	pr2, _ := prs.Get(context.Background(), naming.PullRequestName(repo, ghwebhook.Repo(repo).ID(), 2), metav1.GetOptions{})
	if pr2.Spec.Status != string(stablev1.PullRequestMerged) {
		t.Errorf("pull request 2: the newer delivery did not win: %q", pr2.Spec.Status)
	}
}

// Drift repair: objects deleted by hand are recreated by the next full
// resync, with their state from GitHub.
func TestDriftRepair_DeletedObjectsAreRecreated(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, 0)
	now := time.Now().Truncate(time.Second)
	w.gh.SetPullRequest(repo, apiPR(7, "closed", true, now.Add(-72*time.Hour)))
	w.gh.SetBranch(repo, "main", "abc")
	r := w.reconciler(func(o *reconcile.Options) { o.FullResync = time.Nanosecond })
	w.pass(r)
	ctx := context.Background()
	prName, brName := naming.PullRequestName(repo, ghwebhook.Repo(repo).ID(), 7), naming.BranchName(repo, ghwebhook.Repo(repo).ID(), "main")
	if err := w.env.Gitpulse.StableV1().PullRequests(w.ns).Delete(ctx, prName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := w.env.Gitpulse.StableV1().Branches(w.ns).Delete(ctx, brName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if rep := w.pass(r); rep.Reconciled != 2 {
		t.Errorf("reconciled %d objects, want 2", rep.Reconciled)
	}
	pr, err := w.env.Gitpulse.StableV1().PullRequests(w.ns).Get(ctx, prName, metav1.GetOptions{})
	if err != nil || pr.Spec.Status != string(stablev1.PullRequestMerged) {
		t.Fatalf("pull request not recreated merged: %v", err)
	}
	if _, err := w.env.Gitpulse.StableV1().Branches(w.ns).Get(ctx, brName, metav1.GetOptions{}); err != nil {
		t.Fatalf("branch not recreated: %v", err)
	}
}

// GitHub's rate limits: a pass stops before the primary budget runs out
// (and resumes after its reset), and a secondary limit's Retry-After is
// honoured; no request is made while either holds.
func TestRateLimits_PassStopsAndWaits(t *testing.T) {
	t.Run("primary budget low", func(t *testing.T) {
		w := newWorld(t)
		w.source("widgets", repo, w.hook)
		reset := time.Now().Add(30 * time.Minute).Truncate(time.Second)
		w.gh.SetRateLimit(20, reset)
		r := w.reconciler(func(o *reconcile.Options) { o.MinRemaining = 50 })
		rep := w.pass(r)
		if rep.Results[reconcile.ResultRateLimited] != 1 {
			t.Fatalf("report %+v, want rate_limited", rep)
		}
		cm := w.cursor()
		if got := cm.Data[reconcile.KeyNotBefore]; got != reset.UTC().Format(time.RFC3339) {
			t.Errorf("notBefore %q, want %s", got, reset.UTC().Format(time.RFC3339))
		}
		if cm.Data[reconcile.KeyAPIRemaining] != "19" {
			t.Errorf("api.remaining %q, want 19", cm.Data[reconcile.KeyAPIRemaining])
		}
		before := w.gh.Requests()
		if rep := w.pass(r); rep.Results[reconcile.ResultRateLimited] != 1 || w.gh.Requests() != before {
			t.Errorf("a pass before the reset made %d requests (%+v)", w.gh.Requests()-before, rep)
		}
	})
	t.Run("primary budget exhausted", func(t *testing.T) {
		w := newWorld(t)
		w.source("widgets", repo, w.hook)
		w.gh.SetRateLimit(0, time.Now().Add(time.Hour))
		if rep := w.pass(w.reconciler()); rep.Results[reconcile.ResultRateLimited] != 1 {
			t.Fatalf("report %+v, want rate_limited", rep)
		}
	})
	t.Run("secondary limit", func(t *testing.T) {
		w := newWorld(t)
		w.source("widgets", repo, w.hook)
		w.gh.SecondaryLimitOnce(90 * time.Second)
		start := time.Now()
		if rep := w.pass(w.reconciler()); rep.Results[reconcile.ResultRateLimited] != 1 {
			t.Fatalf("report %+v, want rate_limited", rep)
		}
		nb, _ := time.Parse(time.RFC3339, w.cursor().Data[reconcile.KeyNotBefore])
		if d := nb.Sub(start); d < 80*time.Second || d > 100*time.Second {
			t.Errorf("notBefore %v after the pass, want Retry-After's 90s", d)
		}
	})
}

// GitHub's API down: the pass reports an error for the source (not a
// failed pass), and deliveries are recorded as ever.
func TestAPIDown_DeliveryPathUnaffected(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, w.hook)
	w.gh.SetDown(true)
	rep := w.pass(w.reconciler())
	if rep.Results[reconcile.ResultError] != 1 || len(rep.Errors) != 1 {
		t.Fatalf("report %+v, want one source in error", rep)
	}
	id, code := w.deliverPR(1, "opened", time.Now().Add(-time.Minute).Truncate(time.Second))
	if code != http.StatusAccepted || !w.hasEvent(id) {
		t.Fatalf("delivery during the API outage: %d, recorded %v", code, w.hasEvent(id))
	}
	if got := w.cursor().Data[reconcile.KeyPassesPrefix+reconcile.ResultError]; got != "1" {
		t.Errorf("passes.error = %q, want 1", got)
	}
}

// A GitHubSource whose controller has not created the webhook yet (no
// status.webhookIDKey): no delivery is looked at, backfill still runs.
func TestSourceWithoutWebhookID_BackfillsOnly(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, 0)
	w.outage.Store(true)
	w.deliverPR(1, "opened", time.Now().Add(-time.Minute).Truncate(time.Second))
	w.outage.Store(false)
	w.gh.SetPullRequest(repo, apiPR(2, "open", false, time.Now().Add(-time.Hour)))
	rep := w.pass(w.reconciler())
	if rep.Redeliveries != 0 || rep.Reconciled != 1 || rep.Results[reconcile.ResultOK] != 1 {
		t.Fatalf("report %+v: want no redelivery, one object backfilled", rep)
	}
}

// A branch deleted on GitHub whose delete delivery was lost for good: a
// full pass, which reads the whole branch list, marks it deleted (ordered at
// the time it read the list, so a branch a later delivery created stays);
// incremental passes leave it, and a second full pass writes nothing.
func TestDriftRepair_BranchesGitHubNoLongerListsAreMarkedDeleted(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, 0)
	w.gh.SetBranch(repo, "main", "abc")
	w.gh.SetBranch(repo, "gone", "def")
	ctx := context.Background()
	// Created by a delivery newer than any list this test reads, and not
	// (yet) in GitHub's list.
	late := githubevent.Change{DeliveryID: "late-create", Event: "create", Repository: repo,
		OccurredAt: time.Now().Add(30 * time.Minute).Truncate(time.Second), TimeSource: githubevent.TimeFromArrival,
		Branch: &githubevent.BranchChange{Action: stablev1.ActionCreated, Name: "late"}}
	if _, err := w.rec.Record(ctx, late); err != nil {
		t.Fatal(err)
	}
	full := w.reconciler(func(o *reconcile.Options) { o.FullResync = time.Nanosecond })
	w.pass(full) // creates main and gone
	w.gh.DeleteBranch(repo, "gone")

	state := func(name string) *stablev1.Branch {
		t.Helper()
		// By its spec: "late" was recorded from a change without the
		// repository id (its name hashes the repository's name).
		l, err := w.env.Gitpulse.StableV1().Branches(w.ns).List(ctx, metav1.ListOptions{
			FieldSelector: "spec.repository=" + repo + ",spec.name=" + name})
		if err != nil || len(l.Items) != 1 {
			t.Fatalf("branch %s: %v (%d objects)", name, err, len(l.Items))
		}
		return &l.Items[0]
	}
	if rep := w.pass(w.reconciler()); rep.Reconciled != 0 || state("gone").Spec.State != string(stablev1.BranchCreated) {
		t.Fatalf("an incremental pass reconciled %d objects, gone is %s; want none, created", rep.Reconciled, state("gone").Spec.State)
	}
	if rep := w.pass(full); rep.Reconciled != 1 {
		t.Errorf("full pass reconciled %d objects, want 1 (gone)", rep.Reconciled)
	}
	gone := state("gone")
	if gone.Spec.State != string(stablev1.BranchDeleted) || gone.Spec.DeletedAt == nil || gone.Status.ReconciledAt == nil {
		t.Errorf("gone = %s deletedAt %v reconciledAt %v; want deleted by the pass", gone.Spec.State, gone.Spec.DeletedAt, gone.Status.ReconciledAt)
	}
	for _, name := range []string{"main", "late"} {
		if b := state(name); b.Spec.State != string(stablev1.BranchCreated) {
			t.Errorf("%s = %s, want created", name, b.Spec.State)
		}
	}
	if rep := w.pass(full); rep.Reconciled != 0 {
		t.Errorf("a second full pass reconciled %d objects, want none", rep.Reconciled)
	}
}

// A repository renamed on GitHub after a pass recorded it: the next pass
// asks under the name its GitHubSource still says, GitHub answers with a
// 301 to the repository (go-github follows it), and the pass's changes carry
// the repository's id and new name: no object is made a second time, and
// those the pass writes follow the new name with one Renamed Event each.
func TestBackfill_AfterARenameMakesNoSecondObject(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, 0)
	now := time.Now().Truncate(time.Second)
	w.gh.SetPullRequest(repo, apiPR(7, "open", false, now.Add(-2*time.Hour)))
	w.gh.SetBranch(repo, "main", "abc")
	r := w.reconciler(func(o *reconcile.Options) { o.FullResync = time.Nanosecond })
	if rep := w.pass(r); rep.Reconciled != 2 {
		t.Fatalf("first pass reconciled %d objects, want 2", rep.Reconciled)
	}
	const renamed = "acme/gadgets"
	w.gh.Rename(repo, renamed)
	w.gh.SetPullRequest(renamed, apiPR(7, "closed", false, now.Add(-time.Hour)))
	w.pass(r)
	w.pass(r) // and again: nothing more

	ctx := context.Background()
	prs, err := w.env.Gitpulse.StableV1().PullRequests(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	brs, err := w.env.Gitpulse.StableV1().Branches(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(prs.Items) != 1 || len(brs.Items) != 1 {
		t.Fatalf("%d pull requests and %d branches, want one each", len(prs.Items), len(brs.Items))
	}
	id := ghwebhook.Repo(repo).ID()
	pr, br := prs.Items[0], brs.Items[0]
	for _, o := range []struct {
		what string
		name string
		repo string
		id   int64
	}{
		{"pull request", pr.Name, pr.Spec.Repository, pr.Spec.RepositoryID},
		{"branch", br.Name, br.Spec.Repository, br.Spec.RepositoryID},
	} {
		if o.repo != renamed || o.id != id {
			t.Errorf("%s %s: repository %q id %d, want %s %d", o.what, o.name, o.repo, o.id, renamed, id)
		}
	}
	if pr.Spec.Status != string(stablev1.PullRequestClosed) {
		t.Errorf("pull request %s, want closed", pr.Spec.Status)
	}
	list, err := w.env.Kube.CoreV1().Events(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	renames := map[string]int{}
	for _, e := range list.Items {
		if e.Reason == stablev1.ReasonRenamed {
			renames[e.InvolvedObject.Name]++
		}
	}
	if renames[pr.Name] != 1 || renames[br.Name] != 1 || len(renames) != 2 {
		t.Errorf("Renamed Events %v, want one for %s and one for %s", renames, pr.Name, br.Name)
	}
}

// A branch deleted on GitHub while its repository was renamed: its object,
// still under the former name, is found by the repository's id when a full
// pass compares the branch list, marked deleted and follows the new name.
func TestBackfill_ABranchDeletedWhileItsRepositoryWasRenamedIsMarkedDeleted(t *testing.T) {
	w := newWorld(t)
	w.source("widgets", repo, 0)
	w.gh.SetBranch(repo, "main", "abc")
	w.gh.SetBranch(repo, "feature", "def")
	r := w.reconciler(func(o *reconcile.Options) { o.FullResync = time.Nanosecond })
	if rep := w.pass(r); rep.Reconciled != 2 {
		t.Fatalf("first pass reconciled %d objects, want 2", rep.Reconciled)
	}
	const renamed = "acme/gadgets"
	w.gh.Rename(repo, renamed)
	w.gh.DeleteBranch(renamed, "feature")
	w.pass(r)
	w.pass(r) // and again: nothing more

	brs, err := w.env.Gitpulse.StableV1().Branches(w.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, b := range brs.Items {
		states[b.Spec.Name] = b.Spec.Repository + " " + b.Spec.State
	}
	want := map[string]string{"main": renamed + " created", "feature": renamed + " deleted"}
	if len(brs.Items) != 2 || states["main"] != want["main"] || states["feature"] != want["feature"] {
		t.Errorf("branches %v, want %v (one object each)", states, want)
	}
}
