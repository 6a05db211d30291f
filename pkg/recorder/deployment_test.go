package recorder

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
)

func reviewChange(id, action, state, submitted string) githubevent.Change {
	return githubevent.Change{
		DeliveryID: id, Event: "pull_request_review", Repository: "o/r", OccurredAt: at(submitted),
		Review: &githubevent.ReviewChange{
			Action: action, State: state, SubmittedAt: at(submitted),
			PullRequest: githubevent.PullRequestChange{Number: 1, State: stablev1.PullRequestOpen, User: "u", HeadBranch: "f", OpenedAt: at("09:00:00")},
		},
	}
}

func statusChange(id, state, when string, statusID int64) githubevent.Change {
	return githubevent.Change{
		DeliveryID: id, Event: "deployment_status", Repository: "o/r", OccurredAt: at(when),
		Deployment: &githubevent.DeploymentChange{
			ID: 7, Environment: "production", Ref: "main", SHA: "abc", Creator: "c", CreatedAt: at("10:00:00"), UpdatedAt: at(when),
			Status: &githubevent.DeploymentStatusChange{ID: statusID, State: state, At: at(when)},
		},
	}
}

// permutations calls f with every order of changes.
func permutations(changes []githubevent.Change, f func([]githubevent.Change)) {
	var rec func(k int)
	rec = func(k int) {
		if k == len(changes) {
			f(append([]githubevent.Change(nil), changes...))
			return
		}
		for i := k; i < len(changes); i++ {
			changes[k], changes[i] = changes[i], changes[k]
			rec(k + 1)
			changes[k], changes[i] = changes[i], changes[k]
		}
	}
	rec(0)
}

func fmtT(t *metav1.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.TimeOnly)
}

func TestApplyReview_SameResultInEveryOrder(t *testing.T) {
	changes := []githubevent.Change{
		reviewChange("a", "submitted", "commented", "10:00:00"),
		reviewChange("b", "submitted", "changes_requested", "10:30:00"),
		reviewChange("c", "submitted", "approved", "11:00:00"),
		reviewChange("d", "edited", "approved", "11:00:00"),
		reviewChange("e", "submitted", "approved", "12:00:00"),
		reviewChange("f", "dismissed", "dismissed", "12:00:00"),
	}
	permutations(changes, func(order []githubevent.Change) {
		pr := &stablev1.PullRequest{}
		for _, ch := range order {
			applyReview(pr, ch)
		}
		s := pr.Spec
		if fmtT(s.FirstReviewAt) != "10:00:00" || fmtT(s.FirstApprovalAt) != "11:00:00" ||
			s.ReviewCount != 4 || s.ApprovalCount != 2 || s.DismissedCount != 1 {
			t.Fatalf("order %v: first review %s, approval %s, counts %d/%d/%d", ids(order),
				fmtT(s.FirstReviewAt), fmtT(s.FirstApprovalAt), s.ReviewCount, s.ApprovalCount, s.DismissedCount)
		}
		if s.Status != "open" || s.User != "u" || s.UpdatedAt != nil {
			t.Fatalf("a review-created object: %+v", s)
		}
	})
}

func TestApplyReview_LeavesPullRequestFieldsToPullRequestDeliveries(t *testing.T) {
	pr := &stablev1.PullRequest{}
	applyPullRequest(pr, prChange("p", "closed", stablev1.PullRequestMerged, "13:00:00"))
	applyReview(pr, reviewChange("r", "submitted", "approved", "11:00:00"))
	if pr.Spec.Status != "merged" || pr.Spec.Title != "closed" || pr.Annotations[AnnotationLastAppliedAction] != "merged" {
		t.Fatalf("a review moved the pull request's own fields: %+v", pr.Spec)
	}
	// And a pull_request delivery replaces what a review filled in, whatever its time.
	pr = &stablev1.PullRequest{}
	applyReview(pr, reviewChange("r", "submitted", "approved", "11:00:00"))
	if !applyPullRequest(pr, prChange("p", "opened", stablev1.PullRequestOpen, "09:00:00")) || pr.Spec.Title != "opened" {
		t.Fatalf("pull_request delivery not applied over a review-created object: %+v", pr.Spec)
	}
	if pr.Spec.ReviewCount != 1 {
		t.Fatalf("review count lost: %d", pr.Spec.ReviewCount)
	}
}

func ids(chs []githubevent.Change) []string {
	var out []string
	for _, ch := range chs {
		out = append(out, ch.DeliveryID)
	}
	return out
}

func TestApplyDeployment_SameResultInEveryOrder(t *testing.T) {
	created := githubevent.Change{
		DeliveryID: "d", Event: "deployment", Repository: "o/r", OccurredAt: at("10:00:00"),
		Deployment: &githubevent.DeploymentChange{ID: 7, Environment: "production", Ref: "main", SHA: "abc", Creator: "c",
			CreatedAt: at("10:00:00"), UpdatedAt: at("10:00:00")},
	}
	changes := []githubevent.Change{
		created,
		statusChange("p", "pending", "10:01:00", 10),
		statusChange("f", "failure", "10:02:00", 20),
		statusChange("q", "in_progress", "10:03:00", 30),
		statusChange("s", "success", "10:04:00", 40),
		// Same second as the success, older id: never hides it. (Each
		// status has an id of its own: statusCount counts ids.)
		statusChange("x", "in_progress", "10:04:00", 35),
	}
	permutations(changes, func(order []githubevent.Change) {
		o := &stablev1.GitHubDeployment{}
		for _, ch := range order {
			applyDeployment(o, ch)
		}
		s := o.Spec
		if s.State != "success" || fmtT(s.StateAt) != "10:04:00" || fmtT(s.FirstSuccessAt) != "10:04:00" ||
			fmtT(s.FirstFailureAt) != "10:02:00" || s.StatusCount != 5 || s.Environment != "production" ||
			fmtT(s.CreatedAt) != "10:00:00" || s.SHA != "abc" || o.Annotations[stablev1.AnnotationEnvironment] != "production" {
			t.Fatalf("order %v: %+v", ids(order), s)
		}
	})
}

func TestAttribute_ShipsMergedPullRequestsBySHAAndWindow(t *testing.T) {
	mt := func(s string) *metav1.Time { x := metav1.NewTime(at(s)); return &x }
	pr := func(n int64, base, sha, opened, merged string) stablev1.PullRequest {
		p := stablev1.PullRequest{Spec: stablev1.PullRequestSpec{Repository: "o/r", Number: n, BaseBranch: base, MergeCommitSHA: sha,
			OpenedAt: mt(opened)}}
		if merged != "" {
			p.Spec.Merged, p.Spec.MergedAt = true, mt(merged)
		}
		return p
	}
	dep := func(id int64, env, created, success string) stablev1.GitHubDeployment {
		d := stablev1.GitHubDeployment{Spec: stablev1.GitHubDeploymentSpec{Repository: "o/r", DeploymentID: id, Environment: env, CreatedAt: mt(created)}}
		if success != "" {
			d.Spec.FirstSuccessAt = mt(success)
		}
		return d
	}
	in := &shipped{
		pullRequests: []stablev1.PullRequest{
			pr(1, "main", "s1", "08:00:00", "09:00:00"),        // before the previous deployment: shipped by it
			pr(2, "main", "s2", "08:00:00", "10:30:00"),        // in the window
			pr(3, "main", "s3", "08:00:00", "12:30:00"),        // merged after this deployment was created
			pr(4, "other", "s4", "08:00:00", "11:00:00"),       // another branch
			pr(5, "main", "", "08:00:00", ""),                  // not merged
			pr(6, "other", "deployed", "08:00:00", "07:00:00"), // its merge commit is the deployed SHA
		},
		deployments: []stablev1.GitHubDeployment{
			dep(1, "production", "10:00:00", "10:05:00"), // previous successful
			dep(2, "production", "11:00:00", ""),         // failed: not a bound
			dep(3, "staging", "10:45:00", "10:50:00"),    // another environment
		},
	}
	this := &stablev1.GitHubDeployment{Spec: stablev1.GitHubDeploymentSpec{Repository: "o/r", DeploymentID: 9, Environment: "production",
		Ref: "refs/heads/main", SHA: "deployed", CreatedAt: mt("12:00:00"), FirstSuccessAt: mt("12:10:00")}}
	if !addChanges(&this.Spec, attribution(&this.Spec, in)) {
		t.Fatal("nothing attributed")
	}
	got := map[int64]string{}
	for _, c := range this.Spec.Changes {
		got[c.Number] = c.By
	}
	want := map[int64]string{2: "window", 6: "sha"}
	if len(got) != len(want) || got[2] != want[2] || got[6] != want[6] || this.Spec.ChangeCount != 2 {
		t.Fatalf("attributed %v, want %v", got, want)
	}
	if addChanges(&this.Spec, attribution(&this.Spec, in)) {
		t.Fatal("attributing again changed the object")
	}
	// The first success of an environment: only by SHA.
	first := this.DeepCopy()
	first.Spec.Changes, first.Spec.Environment = nil, "canary"
	if got := attribution(&first.Spec, in); len(got) != 1 || got[0].Number != 6 {
		t.Fatalf("first deployment of an environment: %+v", got)
	}
}
