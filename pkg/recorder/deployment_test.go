package recorder

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
)

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
			fmtT(s.CreatedAt) != "10:00:00" || s.SHA != "abc" {
			t.Fatalf("order %v: %+v", ids(order), s)
		}
	})
}

func backfilledDeployment(statuses ...githubevent.DeploymentStatusChange) githubevent.Change {
	return githubevent.Change{
		DeliveryID: "reconciled-d", Event: "deployment", Repository: "o/r", OccurredAt: at("10:00:00"),
		Deployment: &githubevent.DeploymentChange{ID: 7, Environment: "production", Ref: "main", SHA: "abc", Creator: "c",
			CreatedAt: at("10:00:00"), UpdatedAt: at("10:00:00"), Statuses: statuses},
	}
}

// A deployment's statuses delivered and also listed by a backfill give
// the same object in every order, each status counted once.
func TestReconciledDeployment_SameResultAsDeliveriesInEveryOrder(t *testing.T) {
	partial := backfilledDeployment(
		githubevent.DeploymentStatusChange{ID: 20, State: "failure", At: at("10:02:00")},
		githubevent.DeploymentStatusChange{ID: 10, State: "pending", At: at("10:01:00")})
	whole := backfilledDeployment(
		githubevent.DeploymentStatusChange{ID: 40, State: "success", At: at("10:04:00")},
		githubevent.DeploymentStatusChange{ID: 20, State: "failure", At: at("10:02:00")},
		githubevent.DeploymentStatusChange{ID: 10, State: "pending", At: at("10:01:00")})
	changes := []githubevent.Change{
		statusChange("p", "pending", "10:01:00", 10),
		statusChange("f", "failure", "10:02:00", 20),
		statusChange("s", "success", "10:04:00", 40),
		partial,
		whole,
	}
	permutations(changes, func(order []githubevent.Change) {
		o := &stablev1.GitHubDeployment{}
		for _, ch := range order {
			if ch.Deployment.Statuses != nil {
				applyReconciledDeployment(o, ch, testNow)
			} else {
				applyDeployment(o, ch)
			}
		}
		s := o.Spec
		if s.State != "success" || s.StateID != 40 || fmtT(s.FirstSuccessAt) != "10:04:00" || fmtT(s.FirstFailureAt) != "10:02:00" ||
			s.StatusCount != 3 || s.Environment != "production" || fmtT(s.CreatedAt) != "10:00:00" {
			t.Fatalf("order %v: %+v", ids(order), s)
		}
	})
	o := &stablev1.GitHubDeployment{}
	if !applyReconciledDeployment(o, whole, testNow) || applyReconciledDeployment(o, whole, testLater) {
		t.Fatal("a backfilled deployment must move a new object once, and not again for the same list")
	}
}

// The times of two reconcile passes, for the apply functions' now.
var (
	testNow   = metav1.NewTime(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	testLater = metav1.NewTime(time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC))
)
