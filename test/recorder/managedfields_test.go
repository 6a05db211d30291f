package recorder_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
	"github.com/liatrio/gitpulse/internal/testenv"
)

// The recorder is its objects' one writer and never uses server-side apply,
// so the field ownership the API server records says nothing anyone needs,
// at a third of an object's bytes for every list and watch. The API server
// records it on a create (always); the recorder's first update clears it,
// and later updates — the lead time's attribution of changes to a
// deployment among them — keep it cleared.
func TestRecorder_AnUpdatedObjectKeepsNoManagedFields(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	repo := ghwebhook.Repo("acme/lean")
	opened := time.Now().UTC().Add(-6 * time.Hour).Truncate(time.Second)
	merge := fmt.Sprintf("%040x", 77)
	pr := func(action string, merged bool, at time.Time) []byte {
		p := ghwebhook.PullRequest{Repo: repo, Number: 7, Action: action, User: "octocat", Title: "t", Head: "feature",
			HeadSHA: fmt.Sprintf("%040x", 7), Merged: merged, CreatedAt: opened, UpdatedAt: at}
		if merged {
			p.MergeCommitSHA = merge
		}
		return p.Payload()
	}
	deploy := ghwebhook.Deployment{Repo: repo, ID: 9, Environment: "production", Ref: "main", SHA: merge, Creator: "octocat",
		CreatedAt: opened.Add(2 * time.Hour)}
	type delivery struct {
		eventType string
		body      []byte
	}
	pullRequest := func() ([]metav1.ManagedFieldsEntry, error) {
		o, err := findPullRequest(h, string(repo), 7)
		if err != nil {
			return nil, err
		}
		return o.ManagedFields, nil
	}
	branch := func() ([]metav1.ManagedFieldsEntry, error) {
		o, err := findBranch(h, string(repo), "topic")
		if err != nil {
			return nil, err
		}
		return o.ManagedFields, nil
	}
	deployment := func() ([]metav1.ManagedFieldsEntry, error) {
		o, err := findDeployment(h, string(repo), 9)
		if err != nil {
			return nil, err
		}
		if len(o.Spec.Changes) == 0 && o.Spec.FirstSuccessAt != nil {
			return nil, fmt.Errorf("the merged pull request was not attributed to the deployment")
		}
		return o.ManagedFields, nil
	}
	tests := []struct {
		name    string
		steps   []delivery // the first creates the object, each later one updates it
		managed func() ([]metav1.ManagedFieldsEntry, error)
	}{{
		name: "a pull request opened, synchronized and merged",
		steps: []delivery{{"pull_request", pr("opened", false, opened)},
			{"pull_request", pr("synchronize", false, opened.Add(time.Minute))},
			{"pull_request", pr("closed", true, opened.Add(time.Hour))}},
		managed: pullRequest,
	}, {
		name: "a branch created and pushed twice",
		steps: []delivery{{"create", ghwebhook.Ref{Repo: repo, Ref: "topic", Sender: "octocat", At: opened}.CreatePayload()},
			{"push", ghwebhook.Push{Repo: repo, Branch: "topic", Before: fmt.Sprintf("%040x", 1), After: fmt.Sprintf("%040x", 2),
				Pusher: "octocat", At: opened.Add(time.Minute)}.Payload()},
			{"push", ghwebhook.Push{Repo: repo, Branch: "topic", Before: fmt.Sprintf("%040x", 2), After: fmt.Sprintf("%040x", 3),
				Pusher: "octocat", At: opened.Add(2 * time.Minute)}.Payload()}},
		managed: branch,
	}, {
		// The success attributes the merged pull request to the deployment:
		// a second update, by the lead time's own write.
		name: "a deployment that succeeded, shipping a merged pull request",
		steps: []delivery{{"deployment", deploy.Payload()},
			{"deployment_status", deploy.Status(91, "success", opened.Add(3*time.Hour))}},
		managed: deployment,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, d := range tt.steps {
				h.deliver(t, binary, d.eventType, newDeliveryID(t), d.body, http.StatusOK)
				managed, err := tt.managed()
				if err != nil {
					t.Fatalf("after delivery %d (%s): %v", i+1, d.eventType, err)
				}
				switch {
				case i == 0 && len(managed) == 0:
					t.Errorf("after the create: no managed fields; the API server tracks every create, so this test no longer shows the update clearing them")
				case i > 0 && len(managed) > 0:
					t.Errorf("after update %d (%s): managed fields %+v, want none", i, d.eventType, managed)
				}
			}
		})
	}
}
