package recorder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/liatrio/gitpulse/internal/octokit"
	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/naming"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// wantPullRequestReason is the Event reason for each pull_request action
// (after "closed" of a merged pull request became "merged").
func wantPullRequestReason(action string) string {
	switch action {
	case "opened":
		return stablev1.ReasonPullRequestOpened
	case "reopened":
		return stablev1.ReasonPullRequestReopened
	case "closed":
		return stablev1.ReasonPullRequestClosed
	case "merged":
		return stablev1.ReasonPullRequestMerged
	case "synchronize":
		return stablev1.ReasonPullRequestSynchronized
	case "edited":
		return stablev1.ReasonPullRequestEdited
	case "ready_for_review":
		return stablev1.ReasonPullRequestReadyForReview
	case "converted_to_draft":
		return stablev1.ReasonPullRequestConvertedToDraft
	}
	return stablev1.ReasonPullRequestUpdated
}

// TestRecorder_ReplaysEveryOctokitExample replays every pull_request, push,
// create, delete and ping example as the GitHubSource adapter would send it
// (rotating binary, structured and data_base64 encodings) to the real
// function, each into its own namespace, and checks the object and the
// Event field by field against the payload.
func TestRecorder_ReplaysEveryOctokitExample(t *testing.T) {
	env := testenv.Get(t)
	examples := octokit.Examples(t)
	n := 0
	for _, eventType := range []string{"pull_request", "push", "create", "delete", "ping"} {
		if len(examples[eventType]) == 0 {
			t.Fatalf("no %s examples", eventType)
		}
		for i, raw := range examples[eventType] {
			// Every example in both shapes: as the GitHubSource adapter
			// delivers it, and as GitHub sent it.
			for _, m := range []mode{modes[n%len(modes)], rawModes[n%len(rawModes)]} {
				t.Run(fmt.Sprintf("%s-%d-%s", eventType, i, m), func(t *testing.T) {
					h := startFunction(t, env, env.Namespace(t))
					p := decode(t, raw)
					id := newDeliveryID(t)
					h.deliver(t, m, eventType, id, raw, http.StatusOK)
					switch {
					case eventType == "pull_request":
						pr := expectPullRequest(t, h, m, p, id)
						expectEvent(t, h, id, "PullRequest", &pr.ObjectMeta, prAction(p), wantPullRequestReason(prAction(p)),
							p.str("sender.login"), "#"+strconv.FormatInt(p.number("pull_request.number"), 10), p.str("repository.full_name"))
					case eventType == "push" && strings.HasPrefix(p.str("ref"), "refs/heads/") && !p.boolean("deleted"):
						b := expectBranch(t, h, p, id, 1)
						expectEvent(t, h, id, "Branch", &b.ObjectMeta, stablev1.ActionPushed, stablev1.ReasonBranchPushed,
							p.str("sender.login"), strings.TrimPrefix(p.str("ref"), "refs/heads/"), p.str("repository.full_name"))
					default:
						// Tags (create, delete, push of refs/tags/*) and pings are
						// acknowledged without any object or Event.
						if p.str("ref_type") == "branch" {
							t.Fatalf("the examples now hold a branch %s: assert it", eventType)
						}
						if evs := h.events(t); len(evs) != 0 {
							t.Errorf("ignored delivery wrote %d Events", len(evs))
						}
						brs, err := env.Gitpulse.StableV1().Branches(h.ns).List(context.Background(), metav1.ListOptions{})
						if err != nil || len(brs.Items) != 0 {
							t.Errorf("ignored delivery wrote branches: %v %v", brs, err)
						}
					}
				})
			}
			n++
		}
	}
}

func prAction(p payload) string {
	if p.str("action") == "closed" && p.boolean("pull_request.merged") {
		return stablev1.ActionMerged
	}
	return p.str("action")
}

// expectPullRequest checks the PullRequest object against payload p, the
// newest delivery applied to it (lastDelivery).
func expectPullRequest(t *testing.T, h *harness, m mode, p payload, lastDelivery string) *stablev1.PullRequest {
	t.Helper()
	repo, number := p.str("repository.full_name"), p.number("pull_request.number")
	pr, err := findPullRequest(h, repo, number)
	if err != nil {
		t.Fatalf("pull request %s#%d: %v", repo, number, err)
	}
	status := p.str("pull_request.state")
	if p.boolean("pull_request.merged") {
		status = "merged"
	}
	// The adapter's struct has no draft field: a fresh object learns it
	// only from a converted_to_draft action (ready_for_review says false).
	wantDraft := p.boolean("pull_request.draft")
	if !m.raw() {
		wantDraft = p.str("action") == "converted_to_draft"
	}
	var mm mismatch
	s := pr.Spec
	mm.eq("spec.user", s.User, p.str("pull_request.user.login"))
	mm.eq("spec.branch", s.Branch, p.str("pull_request.head.ref"))
	mm.eq("spec.status", s.Status, status)
	mm.eq("spec.id", s.ID, strconv.FormatInt(number, 10))
	mm.eq("spec.repository", s.Repository, repo)
	mm.eq("spec.number", s.Number, number)
	mm.eq("spec.title", s.Title, p.str("pull_request.title"))
	mm.eq("spec.baseBranch", s.BaseBranch, p.str("pull_request.base.ref"))
	mm.eq("spec.headSHA", s.HeadSHA, p.str("pull_request.head.sha"))
	mm.eq("spec.url", s.URL, p.str("pull_request.html_url"))
	mm.eq("spec.merged", s.Merged, p.boolean("pull_request.merged"))
	mm.eq("spec.draft", s.Draft, wantDraft)
	mm.eq("spec.openedAt", fmtTime(s.OpenedAt), p.time(t, "pull_request.created_at"))
	mm.eq("spec.closedAt", fmtTime(s.ClosedAt), p.time(t, "pull_request.closed_at"))
	mm.eq("spec.mergedAt", fmtTime(s.MergedAt), p.time(t, "pull_request.merged_at"))
	mm.eq("spec.updatedAt", fmtTime(s.UpdatedAt), p.time(t, "pull_request.updated_at"))
	if lastDelivery != "" { // "": checked by the caller
		mm.eq("status.lastDeliveryID", pr.Status.LastDeliveryID, lastDelivery)
		mm.eq("recent deliveries has it", recorder.Remembers(&pr.Status.Bookkeeping, lastDelivery), true)
	}
	mm.lean(&pr.ObjectMeta)
	mm.report(t, "PullRequest "+pr.Name)
	return pr
}

// expectBranch checks the Branch object after push payload p, the newest
// delivery applied, with pushes pushes recorded in all.
func expectBranch(t *testing.T, h *harness, p payload, lastDelivery string, pushes int64) *stablev1.Branch {
	t.Helper()
	repo, branch := p.str("repository.full_name"), strings.TrimPrefix(p.str("ref"), "refs/heads/")
	b := getBranch(t, h, repo, branch)
	var m mismatch
	m.eq("spec.name", b.Spec.Name, branch)
	m.eq("spec.state", b.Spec.State, "created")
	m.eq("spec.repository", b.Spec.Repository, repo)
	m.eq("spec.headSHA", b.Spec.HeadSHA, p.str("after"))
	m.eq("spec.pushCount", b.Spec.PushCount, pushes)
	m.eq("spec.lastPushAt", fmtTime(b.Spec.LastPushAt), p.time(t, "repository.pushed_at"))
	m.eq("spec.lastPushForced", b.Spec.LastPushForced, p.boolean("forced"))
	m.eq("spec.updatedAt", fmtTime(b.Spec.UpdatedAt), p.time(t, "repository.pushed_at"))
	m.eq("spec.deletedAt", fmtTime(b.Spec.DeletedAt), "")
	if lastDelivery != "" { // "": checked by the caller
		m.eq("status.lastDeliveryID", b.Status.LastDeliveryID, lastDelivery)
	}
	m.lean(&b.ObjectMeta)
	m.report(t, "Branch "+b.Name)
	return b
}

func getBranch(t *testing.T, h *harness, repo, branch string) *stablev1.Branch {
	t.Helper()
	b, err := findBranch(h, repo, branch)
	if err != nil {
		t.Fatalf("branch %s %s: %v", repo, branch, err)
	}
	return b
}

// expectEvent checks the one Event of delivery id: it points at obj, says
// what happened (reason, action, message), and carries the contract the
// metrics function counts by.
func expectEvent(t *testing.T, h *harness, id, kind string, obj *metav1.ObjectMeta, action, reason string, messageHas ...string) *corev1.Event {
	t.Helper()
	ev := h.event(t, naming.EventName(id))
	var m mismatch
	m.eq("involvedObject", ev.InvolvedObject, corev1.ObjectReference{
		APIVersion: "stable.liatr.io/v1", Kind: kind, Name: obj.Name, Namespace: h.ns, UID: types.UID(obj.UID),
	})
	m.eq("reason", ev.Reason, reason)
	m.eq("action", ev.Action, action)
	m.eq("type", ev.Type, corev1.EventTypeNormal)
	m.eq("reportingController", ev.ReportingController, stablev1.ReportingController)
	m.eq("reportingInstance", ev.ReportingInstance, "recorder-test-0")
	m.eq("source.component", ev.Source.Component, stablev1.SourceComponent)
	m.eq("delivery id", stablev1.DeliveryID(ev), id)
	if ev.Name == stablev1.EventNamePrefix+id {
		_, said := ev.Annotations[stablev1.AnnotationDeliveryID]
		m.eq("delivery id annotation beside a name that carries the id", said, false)
	}
	m.eq("annotation repository", ev.Annotations[stablev1.AnnotationRepository], h.specRepository(t, kind, obj.Name))
	m.eq("eventTime set", ev.EventTime.IsZero(), false)
	for _, want := range messageHas {
		if !strings.Contains(ev.Message, want) {
			m.lines = append(m.lines, fmt.Sprintf("message %q does not mention %q", ev.Message, want))
		}
	}
	m.report(t, "Event "+ev.Name)
	return ev
}

// atTime gives a delivery the adapter's send time (the CloudEvent time),
// which orders create and delete deliveries whose payload lacks
// repository.pushed_at; with it, it must agree.
func atTime(t *testing.T, h *harness, m mode, eventType, id string, body []byte, when string, want int) {
	t.Helper()
	e := m.event(t, eventType, id, body)
	tm, err := time.Parse(time.RFC3339, when)
	if err != nil {
		t.Fatal(err)
	}
	e.SetTime(tm)
	if got := h.send(t, m, e); got != want {
		t.Fatalf("%s %s: answered %d, want %d\nlogs:\n%s", eventType, id, got, want, h.logs)
	}
}

// TestRecorder_HandMadePayloads covers what the examples lack: a merged
// pull request, an edit, and a branch's whole life — created, pushed,
// force-pushed, deleted by a push and by a delete event.
func TestRecorder_HandMadePayloads(t *testing.T) {
	env := testenv.Get(t)
	for shape, modes := range shapes {
		t.Run(shape, func(t *testing.T) { handMadePayloads(t, env, modes) })
	}
}

// handMadePayloads runs the hand-made stories in modes (one shape).
func handMadePayloads(t *testing.T, env *testenv.Env, modes []mode) {
	t.Run("pull request opened, edited, merged", func(t *testing.T) {
		h := startRecorder(t, env)
		examples := octokit.Examples(t)
		var opened json.RawMessage
		for _, raw := range examples["pull_request"] {
			if decode(t, raw).str("action") == "opened" {
				opened = raw
				break
			}
		}
		steps := []struct{ file string }{{""}, {"pull_request-edited.json"}, {"pull_request-merged.json"}}
		for i, step := range steps {
			body := []byte(opened)
			if step.file != "" {
				body = readTestdata(t, step.file)
			}
			p := decode(t, body)
			id := newDeliveryID(t)
			m := modes[i%len(modes)]
			h.deliver(t, m, "pull_request", id, body, http.StatusOK)
			pr := expectPullRequest(t, h, m, p, id)
			expectEvent(t, h, id, "PullRequest", &pr.ObjectMeta, prAction(p), wantPullRequestReason(prAction(p)),
				p.str("sender.login"), "#2", "Codertocat/Hello-World")
		}
		if n := len(h.events(t)); n != 3 {
			t.Errorf("%d Events, want 3", n)
		}
	})

	t.Run("branch created, pushed, force-pushed, deleted", func(t *testing.T) {
		h := startRecorder(t, env)
		const repo, branch = "Codertocat/Hello-World", "feature/add-readme"
		create, created := newDeliveryID(t), readTestdata(t, "create-branch.json")
		atTime(t, h, modes[0], "create", create, created, "2019-05-15T15:20:56Z", http.StatusOK)
		b := getBranch(t, h, repo, branch)
		var m mismatch
		m.eq("state", b.Spec.State, "created")
		m.eq("createdAt", fmtTime(b.Spec.CreatedAt), "2019-05-15T15:20:56Z")
		m.eq("pushCount", b.Spec.PushCount, 0)
		m.eq("headSHA", b.Spec.HeadSHA, "")
		m.eq("status.lastDeliveryID", b.Status.LastDeliveryID, create)
		m.report(t, "after create")
		expectEvent(t, h, create, "Branch", &b.ObjectMeta, "created", stablev1.ReasonBranchCreated, "Codertocat", branch, repo)

		// GitHub also sends the push that created the branch (created: true).
		pushes := []string{"push-branch-created.json", "push-branch.json", "push-branch-forced.json"}
		for i, file := range pushes {
			body := readTestdata(t, file)
			id := newDeliveryID(t)
			h.deliver(t, modes[i%len(modes)], "push", id, body, http.StatusOK)
			b := expectBranch(t, h, decode(t, body), id, int64(i+1))
			expectEvent(t, h, id, "Branch", &b.ObjectMeta, "pushed", stablev1.ReasonBranchPushed, "Codertocat", branch, repo)
			if b.Spec.CreatedAt == nil {
				t.Errorf("%s: createdAt lost", file)
			}
		}
		if b := getBranch(t, h, repo, branch); !b.Spec.LastPushForced {
			t.Error("forced push not recorded as forced")
		}
		forcedHead := decode(t, readTestdata(t, "push-branch-forced.json")).str("after")

		// Deleted by a push with deleted: true ...
		delPush := newDeliveryID(t)
		h.deliver(t, modes[1], "push", delPush, readTestdata(t, "push-branch-deleted.json"), http.StatusOK)
		b = getBranch(t, h, repo, branch)
		m = mismatch{}
		m.eq("state", b.Spec.State, "deleted")
		m.eq("deletedAt", fmtTime(b.Spec.DeletedAt), "2019-05-15T15:21:20Z")
		m.eq("headSHA keeps the last real head", b.Spec.HeadSHA, forcedHead)
		m.eq("pushCount does not count the deletion", b.Spec.PushCount, 3)
		m.report(t, "after push deleting the branch")
		expectEvent(t, h, delPush, "Branch", &b.ObjectMeta, "deleted", stablev1.ReasonBranchDeleted, "deleted branch "+branch)

		// ... and by the delete event GitHub sends alongside.
		del := newDeliveryID(t)
		atTime(t, h, modes[0], "delete", del, readTestdata(t, "delete-branch.json"), "2019-05-15T15:21:21Z", http.StatusOK)
		b = getBranch(t, h, repo, branch)
		m = mismatch{}
		m.eq("state", b.Spec.State, "deleted")
		m.eq("deletedAt", fmtTime(b.Spec.DeletedAt), "2019-05-15T15:21:21Z")
		m.eq("status.lastDeliveryID", b.Status.LastDeliveryID, del)
		m.report(t, "after delete")
		expectEvent(t, h, del, "Branch", &b.ObjectMeta, "deleted", stablev1.ReasonBranchDeleted, "deleted branch "+branch, repo)
		if n := len(h.events(t)); n != 6 {
			t.Errorf("%d Events, want 6", n)
		}
	})
}

// TestRecorder_DraftFollowsActionsInTheAdaptersShape: the GitHubSource
// adapter drops pull_request.draft, so in a cluster the draft state comes
// from converted_to_draft / ready_for_review and is kept by deliveries that
// cannot tell it (opened, synchronize, edited).
func TestRecorder_DraftFollowsActionsInTheAdaptersShape(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	examples := octokit.Examples(t)
	var opened payload
	for _, raw := range examples["pull_request"] {
		if p := decode(t, raw); p.str("action") == "opened" {
			opened = p
			break
		}
	}
	steps := []struct {
		action, updatedAt string
		draftInPayload    bool
		want              bool
	}{
		{"opened", "2026-01-01T10:00:00Z", true, false}, // unknown: a new object starts false
		{"converted_to_draft", "2026-01-01T10:01:00Z", true, true},
		{"synchronize", "2026-01-01T10:02:00Z", true, true}, // kept
		{"edited", "2026-01-01T10:03:00Z", true, true},      // kept
		{"ready_for_review", "2026-01-01T10:04:00Z", false, false},
		{"synchronize", "2026-01-01T10:05:00Z", false, false}, // kept
	}
	for i, step := range steps {
		opened["action"] = step.action
		pr := opened["pull_request"].(map[string]any)
		pr["updated_at"], pr["draft"] = step.updatedAt, step.draftInPayload
		body, err := json.Marshal(opened)
		if err != nil {
			t.Fatal(err)
		}
		h.deliver(t, modes[i%len(modes)], "pull_request", newDeliveryID(t), body, http.StatusOK)
		got, err := findPullRequest(h, opened.str("repository.full_name"), opened.number("pull_request.number"))
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Draft != step.want {
			t.Errorf("after %s: spec.draft = %v, want %v", step.action, got.Spec.Draft, step.want)
		}
	}
}
