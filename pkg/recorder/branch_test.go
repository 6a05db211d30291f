package recorder

import (
	"testing"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
)

func branchChange(id, action, when, sha string) githubevent.Change {
	return githubevent.Change{
		DeliveryID: id, Event: "push", Repository: "o/r", OccurredAt: at(when),
		Branch: &githubevent.BranchChange{Action: action, Name: "feature/x", HeadSHA: sha},
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
	if b.Spec.Name != "feature/x" || b.Spec.Repository != "o/r" || len(b.Labels) != 0 {
		t.Errorf("identity: spec %+v labels %v", b.Spec, b.Labels)
	}
}
