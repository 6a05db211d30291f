package recorder

import (
	"testing"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
)

func prChange(id, action string, state stablev1.PullRequestState, when string) githubevent.Change {
	return githubevent.Change{
		DeliveryID: id, Event: "pull_request", Repository: "o/r", OccurredAt: at(when),
		PullRequest: &githubevent.PullRequestChange{
			Action: action, Number: 1, State: state, Merged: state == stablev1.PullRequestMerged, Title: action,
		},
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
				pr.Status.LastDeliveryID != tt.wantLast {
				t.Errorf("status=%s title=%s last=%s, want %s %s %s", pr.Spec.Status, pr.Spec.Title,
					pr.Status.LastDeliveryID, tt.wantStatus, tt.wantTitle, tt.wantLast)
			}
			if pr.Spec.ID != "1" || pr.Spec.Number != 1 || pr.Spec.Repository != "o/r" {
				t.Errorf("identity fields %+v", pr.Spec)
			}
		})
	}
}
