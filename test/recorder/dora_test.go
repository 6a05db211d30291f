package recorder_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/liatrio/gitpulse/internal/octokit"
	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// TestRecorder_ReplaysEveryOctokitReviewAndDeploymentExample replays every
// pull_request_review, deployment and deployment_status example in both
// shapes (adapter and raw) to the real function and checks the object and
// its Event against the payload.
func TestRecorder_ReplaysEveryOctokitReviewAndDeploymentExample(t *testing.T) {
	env := testenv.Get(t)
	examples := octokit.Examples(t)
	n := 0
	for _, eventType := range []string{"pull_request_review", "deployment", "deployment_status"} {
		if len(examples[eventType]) == 0 {
			t.Fatalf("no %s examples", eventType)
		}
		for i, raw := range examples[eventType] {
			for _, m := range []mode{modes[n%len(modes)], rawModes[n%len(rawModes)]} {
				t.Run(fmt.Sprintf("%s-%d-%s", eventType, i, m), func(t *testing.T) {
					h := startFunction(t, env, env.Namespace(t))
					p := decode(t, raw)
					id := newDeliveryID(t)
					h.deliver(t, m, eventType, id, raw, http.StatusOK)
					if eventType == "pull_request_review" {
						expectReviewed(t, h, p, id)
					} else {
						expectDeployment(t, h, p, id)
					}
				})
			}
			n++
		}
	}
}

func expectReviewed(t *testing.T, h *harness, p payload, id string) {
	t.Helper()
	repo, number := p.str("repository.full_name"), p.number("pull_request.number")
	pr, err := findPullRequest(h, repo, number)
	if err != nil {
		t.Fatalf("pull request %s#%d: %v", repo, number, err)
	}
	state, submitted := p.str("review.state"), p.time(t, "review.submitted_at")
	wantReviews, wantApprovals, wantDismissed := int64(0), int64(0), int64(0)
	switch p.str("action") {
	case "submitted":
		wantReviews = 1
		if state == "approved" {
			wantApprovals = 1
		}
	case "dismissed":
		wantDismissed = 1
	}
	wantApprovedAt := ""
	if state == "approved" {
		wantApprovedAt = submitted
	}
	var mm mismatch
	s := pr.Spec
	mm.eq("spec.firstReviewAt", fmtTime(s.FirstReviewAt), submitted)
	mm.eq("spec.firstApprovalAt", fmtTime(s.FirstApprovalAt), wantApprovedAt)
	mm.eq("spec.reviewCount", s.ReviewCount, wantReviews)
	mm.eq("spec.approvalCount", s.ApprovalCount, wantApprovals)
	mm.eq("spec.dismissedCount", s.DismissedCount, wantDismissed)
	// Filled from the review's copy of the pull request, without
	// updatedAt, so that any pull_request delivery replaces it.
	mm.eq("spec.user", s.User, p.str("pull_request.user.login"))
	mm.eq("spec.branch", s.Branch, p.str("pull_request.head.ref"))
	mm.eq("spec.status", s.Status, p.str("pull_request.state"))
	mm.eq("spec.openedAt", fmtTime(s.OpenedAt), p.time(t, "pull_request.created_at"))
	mm.eq("spec.updatedAt", fmtTime(s.UpdatedAt), "")
	mm.report(t, "PullRequest "+pr.Name)
	reason := map[string]string{"submitted": stablev1.ReasonPullRequestReviewed, "edited": stablev1.ReasonPullRequestReviewEdited,
		"dismissed": stablev1.ReasonPullRequestReviewDismissed}[p.str("action")]
	expectEvent(t, h, id, "PullRequest", &pr.ObjectMeta, "review_"+p.str("action"), reason,
		p.str("sender.login"), "#"+strconv.FormatInt(number, 10), repo)
}

func expectDeployment(t *testing.T, h *harness, p payload, id string) {
	t.Helper()
	repo, depID := p.str("repository.full_name"), p.number("deployment.id")
	d, err := findDeployment(h, repo, depID)
	if err != nil {
		t.Fatalf("deployment %s/%d: %v", repo, depID, err)
	}
	var mm mismatch
	s := d.Spec
	mm.eq("spec.repository", s.Repository, repo)
	mm.eq("spec.deploymentID", s.DeploymentID, depID)
	mm.eq("spec.environment", s.Environment, p.str("deployment.environment"))
	mm.eq("spec.ref", s.Ref, p.str("deployment.ref"))
	mm.eq("spec.sha", s.SHA, p.str("deployment.sha"))
	mm.eq("spec.task", s.Task, p.str("deployment.task"))
	mm.eq("spec.creator", s.Creator, p.str("deployment.creator.login"))
	mm.eq("spec.createdAt", fmtTime(s.CreatedAt), p.time(t, "deployment.created_at"))
	mm.eq("spec.updatedAt", fmtTime(s.UpdatedAt), p.time(t, "deployment.updated_at"))
	mm.lean(&d.ObjectMeta)
	action, reason := "created", stablev1.ReasonDeploymentCreated
	if state := p.str("deployment_status.state"); state != "" {
		action = state
		switch state {
		case "success":
			reason = stablev1.ReasonDeploymentSucceeded
			mm.eq("spec.firstSuccessAt", fmtTime(s.FirstSuccessAt), p.time(t, "deployment_status.updated_at"))
		case "failure", "error":
			reason = stablev1.ReasonDeploymentFailed
			mm.eq("spec.firstFailureAt", fmtTime(s.FirstFailureAt), p.time(t, "deployment_status.updated_at"))
		default:
			reason = stablev1.ReasonDeploymentStatus
		}
		mm.eq("spec.state", s.State, state)
		mm.eq("spec.stateAt", fmtTime(s.StateAt), p.time(t, "deployment_status.updated_at"))
		mm.eq("spec.statusCount", s.StatusCount, int64(1))
	} else {
		mm.eq("spec.state", s.State, "created")
	}
	mm.eq("status.lastDeliveryID", d.Status.LastDeliveryID, id)
	mm.report(t, "GitHubDeployment "+d.Name)
	ev := expectEvent(t, h, id, stablev1.KindGitHubDeployment, &d.ObjectMeta, action, reason, p.str("deployment.environment"), repo)
	if got := ev.Annotations[stablev1.AnnotationEnvironment]; got != p.str("deployment.environment") {
		t.Errorf("Event environment annotation %q", got)
	}
}

// edit returns raw with f applied to its decoded form.
func edit(t *testing.T, raw []byte, f func(p payload)) []byte {
	t.Helper()
	p := decode(t, raw)
	f(p)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func set(p payload, path string, v any) {
	cur := map[string]any(p)
	keys := splitPath(path)
	for _, k := range keys[:len(keys)-1] {
		next, ok := cur[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[k] = next
		}
		cur = next
	}
	cur[keys[len(keys)-1]] = v
}

func splitPath(path string) []string {
	var out []string
	start := 0
	for i := 0; i < len(path); i++ {
		if path[i] == '.' {
			out = append(out, path[start:i])
			start = i + 1
		}
	}
	return append(out, path[start:])
}

type delivery struct {
	eventType, id string
	body          []byte
}

// TestRecorder_ReviewsAndDeploymentsAreExactAndOrderSafe sends two pull
// requests' stories (opened, three reviews, merged) and three deployments
// (the first fails, the second fails then succeeds shipping the first pull
// request's merge commit, the third ships the second pull request by
// window) in shuffled orders, a third of them twice, in both shapes, and
// checks that the objects say what the ordered story says, with one Event
// per distinct delivery and each merged pull request attributed to the
// deployment that shipped it, whatever the order.
func TestRecorder_ReviewsAndDeploymentsAreExactAndOrderSafe(t *testing.T) {
	env := testenv.Get(t)
	examples := octokit.Examples(t)
	prTemplate := examples["pull_request"][1]
	reviewTemplate := examples["pull_request_review"][0]
	statusTemplate := examples["deployment_status"][0]
	for run := range 6 {
		shape, ms := "adapter", modes
		if run%2 == 1 {
			shape, ms = "raw", rawModes
		}
		t.Run(fmt.Sprintf("%s-%d", shape, run), func(t *testing.T) {
			h := startFunction(t, env, env.Namespace(t))
			const repo = "octo/shop"
			pr := func(number int, action, updated string, merged bool) []byte {
				return edit(t, prTemplate, func(p payload) {
					set(p, "action", action)
					set(p, "repository.full_name", repo)
					set(p, "repository.name", "shop")
					set(p, "repository.owner.login", "octo")
					set(p, "number", number)
					set(p, "pull_request.number", number)
					set(p, "pull_request.base.ref", "main")
					set(p, "pull_request.created_at", "2026-01-01T09:00:00Z")
					set(p, "pull_request.updated_at", updated)
					set(p, "pull_request.merge_commit_sha", fmt.Sprintf("%040d", number))
					if merged {
						set(p, "pull_request.state", "closed")
						set(p, "pull_request.merged", true)
						set(p, "pull_request.merged_at", updated)
						set(p, "pull_request.closed_at", updated)
					} else {
						set(p, "pull_request.state", "open")
						set(p, "pull_request.merged", false)
						set(p, "pull_request.merged_at", nil)
						set(p, "pull_request.closed_at", nil)
					}
				})
			}
			review := func(reviewID int, state, submitted string) []byte {
				return edit(t, reviewTemplate, func(p payload) {
					set(p, "repository.full_name", repo)
					set(p, "repository.name", "shop")
					set(p, "repository.owner.login", "octo")
					set(p, "pull_request.number", 7)
					set(p, "review.id", reviewID)
					set(p, "review.state", state)
					set(p, "review.submitted_at", submitted)
				})
			}
			status := func(depID, statusID int, state, created, at string) []byte {
				sha := map[int]string{1: fmt.Sprintf("%040d", 7), 2: fmt.Sprintf("%040d", 7), 3: "3333333333333333333333333333333333333333"}[depID]
				return edit(t, statusTemplate, func(p payload) {
					set(p, "repository.full_name", repo)
					set(p, "repository.name", "shop")
					set(p, "repository.owner.login", "octo")
					set(p, "deployment.id", depID)
					set(p, "deployment.sha", sha)
					set(p, "deployment.ref", "main")
					set(p, "deployment.environment", "production")
					set(p, "deployment.created_at", created)
					set(p, "deployment.updated_at", at)
					set(p, "deployment_status.id", statusID)
					set(p, "deployment_status.state", state)
					set(p, "deployment_status.created_at", at)
					set(p, "deployment_status.updated_at", at)
				})
			}
			merge := newDeliveryID(t)
			story := []delivery{
				{"pull_request", newDeliveryID(t), pr(7, "opened", "2026-01-01T09:00:00Z", false)},
				{"pull_request_review", newDeliveryID(t), review(1, "commented", "2026-01-01T10:00:00Z")},
				{"pull_request_review", newDeliveryID(t), review(2, "changes_requested", "2026-01-01T10:30:00Z")},
				{"pull_request_review", newDeliveryID(t), review(3, "approved", "2026-01-01T11:00:00Z")},
				{"pull_request", merge, pr(7, "closed", "2026-01-01T12:00:00Z", true)},
				{"pull_request", newDeliveryID(t), pr(8, "closed", "2026-01-01T13:00:00Z", true)},
				{"deployment_status", newDeliveryID(t), status(1, 10, "failure", "2026-01-01T08:00:00Z", "2026-01-01T08:05:00Z")},
				{"deployment_status", newDeliveryID(t), status(2, 20, "in_progress", "2026-01-01T12:10:00Z", "2026-01-01T12:11:00Z")},
				{"deployment_status", newDeliveryID(t), status(2, 21, "error", "2026-01-01T12:10:00Z", "2026-01-01T12:12:00Z")},
				{"deployment_status", newDeliveryID(t), status(2, 22, "success", "2026-01-01T12:10:00Z", "2026-01-01T12:20:00Z")},
				{"deployment_status", newDeliveryID(t), status(3, 30, "success", "2026-01-01T13:30:00Z", "2026-01-01T13:40:00Z")},
			}
			rng := rand.New(rand.NewPCG(14, uint64(run)))
			rng.Shuffle(len(story), func(i, j int) { story[i], story[j] = story[j], story[i] })
			var order []delivery
			for i, d := range story {
				order = append(order, d)
				if i%3 == 0 {
					order = append(order, d) // redelivered
				}
			}
			for i, d := range order {
				h.deliver(t, ms[i%len(ms)], d.eventType, d.id, d.body, http.StatusOK)
			}

			got, err := findPullRequest(h, repo, 7)
			if err != nil {
				t.Fatal(err)
			}
			var mm mismatch
			s := got.Spec
			mm.eq("pr status", s.Status, "merged")
			mm.eq("pr mergeCommitSHA", s.MergeCommitSHA, fmt.Sprintf("%040d", 7))
			mm.eq("pr firstReviewAt", fmtTime(s.FirstReviewAt), "2026-01-01T10:00:00Z")
			mm.eq("pr firstApprovalAt", fmtTime(s.FirstApprovalAt), "2026-01-01T11:00:00Z")
			mm.eq("pr reviewCount", s.ReviewCount, int64(3))
			mm.eq("pr approvalCount", s.ApprovalCount, int64(1))
			mm.eq("pr lastDeliveryID (the merge's)", got.Status.LastDeliveryID, merge)
			d1, err := findDeployment(h, repo, 1)
			if err != nil {
				t.Fatal(err)
			}
			d2, err := findDeployment(h, repo, 2)
			if err != nil {
				t.Fatal(err)
			}
			mm.eq("deployment 1 state", d1.Spec.State, "failure")
			mm.eq("deployment 1 firstFailureAt", fmtTime(d1.Spec.FirstFailureAt), "2026-01-01T08:05:00Z")
			mm.eq("deployment 2 state", d2.Spec.State, "success")
			mm.eq("deployment 2 statusCount", d2.Spec.StatusCount, int64(3))
			mm.eq("deployment 2 firstFailureAt", fmtTime(d2.Spec.FirstFailureAt), "2026-01-01T12:12:00Z")
			mm.eq("deployment 2 firstSuccessAt", fmtTime(d2.Spec.FirstSuccessAt), "2026-01-01T12:20:00Z")
			d3, err := findDeployment(h, repo, 3)
			if err != nil {
				t.Fatal(err)
			}
			changes := func(d *stablev1.GitHubDeployment) string {
				var out []string
				for _, c := range d.Spec.Changes {
					out = append(out, fmt.Sprintf("#%d by %s opened %s", c.Number, c.By, fmtTime(c.OpenedAt)))
				}
				return strings.Join(out, ", ")
			}
			mm.eq("deployment 1 changes", changes(d1), "")
			mm.eq("deployment 2 changes", changes(d2), "#7 by sha opened 2026-01-01T09:00:00Z")
			mm.eq("deployment 3 changes", changes(d3), "#8 by window opened 2026-01-01T09:00:00Z")
			mm.eq("Events", len(h.events(t)), len(story))
			mm.report(t, "after the shuffled story")
		})
	}
}
