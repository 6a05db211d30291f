package recorder

import (
	"testing"
	"time"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
)

func at(hhmmss string) time.Time {
	t, err := time.Parse(time.TimeOnly, hhmmss)
	if err != nil {
		panic(err)
	}
	return time.Date(2026, 1, 1, t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

func prChange(id, action string, state stablev1.PullRequestState, when string) githubevent.Change {
	return githubevent.Change{
		DeliveryID: id, Event: "pull_request", Repository: "o/r", OccurredAt: at(when),
		PullRequest: &githubevent.PullRequestChange{
			Action: action, Number: 1, State: state, Merged: state == stablev1.PullRequestMerged, Title: action,
		},
	}
}

func branchChange(id, action, when, sha string) githubevent.Change {
	return githubevent.Change{
		DeliveryID: id, Event: "push", Repository: "o/r", OccurredAt: at(when),
		Branch: &githubevent.BranchChange{Action: action, Name: "feature/x", HeadSHA: sha},
	}
}

func TestApplyPullRequest_NeverMovesBackwards(t *testing.T) {
	tests := []struct {
		name       string
		changes    []githubevent.Change
		wantStatus stablev1.PullRequestState
		wantTitle  string
		wantLast   string
		wantMoved  []bool
	}{{
		name: "in order",
		changes: []githubevent.Change{
			prChange("a", "opened", stablev1.PullRequestOpen, "10:00:00"),
			prChange("b", "closed", stablev1.PullRequestClosed, "10:05:00"),
		},
		wantStatus: stablev1.PullRequestClosed, wantTitle: "closed", wantLast: "b", wantMoved: []bool{true, true},
	}, {
		name: "closed before opened",
		changes: []githubevent.Change{
			prChange("b", "closed", stablev1.PullRequestClosed, "10:05:00"),
			prChange("a", "opened", stablev1.PullRequestOpen, "10:00:00"),
		},
		wantStatus: stablev1.PullRequestClosed, wantTitle: "closed", wantLast: "b", wantMoved: []bool{true, false},
	}, {
		name: "old synchronize after merge",
		changes: []githubevent.Change{
			prChange("m", "closed", stablev1.PullRequestMerged, "10:05:00"),
			prChange("s", "synchronize", stablev1.PullRequestOpen, "10:04:00"),
		},
		wantStatus: stablev1.PullRequestMerged, wantTitle: "closed", wantLast: "m", wantMoved: []bool{true, false},
	}, {
		name: "same-second open never un-merges",
		changes: []githubevent.Change{
			prChange("m", "closed", stablev1.PullRequestMerged, "10:05:00"),
			prChange("d", "converted_to_draft", stablev1.PullRequestOpen, "10:05:00"),
		},
		wantStatus: stablev1.PullRequestMerged, wantTitle: "closed", wantLast: "m", wantMoved: []bool{true, false},
	}, {
		name: "same-second reopen after close applies in arrival order",
		changes: []githubevent.Change{
			prChange("c", "closed", stablev1.PullRequestClosed, "10:05:00"),
			prChange("r", "reopened", stablev1.PullRequestOpen, "10:05:00"),
		},
		wantStatus: stablev1.PullRequestOpen, wantTitle: "reopened", wantLast: "r", wantMoved: []bool{true, true},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := &stablev1.PullRequest{}
			for i, ch := range tt.changes {
				if moved := applyPullRequest(pr, ch); moved != tt.wantMoved[i] {
					t.Errorf("change %d (%s) moved = %v, want %v", i, ch.DeliveryID, moved, tt.wantMoved[i])
				}
			}
			if pr.Spec.Status != string(tt.wantStatus) || pr.Spec.Title != tt.wantTitle ||
				pr.Annotations[AnnotationLastAppliedDelivery] != tt.wantLast {
				t.Errorf("status=%s title=%s last=%s, want %s %s %s", pr.Spec.Status, pr.Spec.Title,
					pr.Annotations[AnnotationLastAppliedDelivery], tt.wantStatus, tt.wantTitle, tt.wantLast)
			}
			if pr.Spec.ID != "1" || pr.Spec.Number != 1 || pr.Spec.Repository != "o/r" {
				t.Errorf("identity fields %+v", pr.Spec)
			}
		})
	}
}

func TestApplyBranch_CountsEveryPushButKeepsTheNewestStateAndHead(t *testing.T) {
	b := &stablev1.Branch{}
	steps := []struct {
		ch        githubevent.Change
		wantMoved bool
		wantState stablev1.BranchState
		wantHead  string
		wantCount int64
	}{
		{branchChange("c", stablev1.ActionCreated, "10:00:00", ""), true, stablev1.BranchCreated, "", 0},
		{branchChange("p2", stablev1.ActionPushed, "10:02:00", "two"), true, stablev1.BranchCreated, "two", 1},
		{branchChange("p1", stablev1.ActionPushed, "10:01:00", "one"), false, stablev1.BranchCreated, "two", 2},
		{branchChange("d", stablev1.ActionDeleted, "10:03:00", ""), true, stablev1.BranchDeleted, "two", 2},
		// A push that happened before the deletion but arrives after it still
		// sets the head (it was the head when the branch was deleted).
		{branchChange("p0", stablev1.ActionPushed, "10:02:30", "late"), true, stablev1.BranchDeleted, "late", 3},
		{branchChange("c2", stablev1.ActionCreated, "10:04:00", ""), true, stablev1.BranchCreated, "late", 3},
		// A push stamped by GitHub's clock a second before the create
		// delivery (stamped by the adapter's) still moves the head.
		{branchChange("p3", stablev1.ActionPushed, "10:03:59", "three"), true, stablev1.BranchCreated, "three", 4},
	}
	for _, s := range steps {
		if moved := applyBranch(b, s.ch); moved != s.wantMoved {
			t.Errorf("%s moved = %v, want %v", s.ch.DeliveryID, moved, s.wantMoved)
		}
		if b.Spec.State != string(s.wantState) || b.Spec.HeadSHA != s.wantHead || b.Spec.PushCount != s.wantCount {
			t.Errorf("after %s: state=%s head=%s count=%d, want %s %s %d", s.ch.DeliveryID,
				b.Spec.State, b.Spec.HeadSHA, b.Spec.PushCount, s.wantState, s.wantHead, s.wantCount)
		}
	}
	if b.Spec.DeletedAt != nil || !b.Spec.CreatedAt.Time.Equal(at("10:04:00")) || !b.Spec.LastPushAt.Time.Equal(at("10:03:59")) {
		t.Errorf("timestamps after re-creation: %+v", b.Spec)
	}
	if b.Annotations[stablev1.AnnotationBranch] != "feature/x" || b.Labels[stablev1.LabelRepositoryOwner] != "o" {
		t.Errorf("identity: annotations %v labels %v", b.Annotations, b.Labels)
	}
}

func TestRemember_KeepsTheNewestDeliveriesBounded(t *testing.T) {
	b := &stablev1.Branch{}
	for _, id := range []string{"a", "b", "c", "d"} {
		remember(&b.ObjectMeta, id, 3)
	}
	if got := b.Annotations[stablev1.AnnotationRecentDeliveries]; got != "d,c,b" {
		t.Errorf("recent deliveries = %q", got)
	}
	if seen(&b.ObjectMeta, "a") || !seen(&b.ObjectMeta, "b") {
		t.Error("seen does not follow the bounded list")
	}
}
