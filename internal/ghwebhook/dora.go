package ghwebhook

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/go-github/v60/github"
)

// Review describes a pull_request_review delivery. The payload has the
// members of GitHub's (webhook docs, "pull_request_review"; the
// @octokit/webhooks-examples payloads): action, review (id, user, state in
// lower case, submitted_at, commit_id), the pull request and repository.
type Review struct {
	PullRequest PullRequest // the pull request as it is when reviewed
	Action      string      // submitted, edited, dismissed
	ID          int64
	Reviewer    string
	State       string // approved, changes_requested, commented, dismissed
	SubmittedAt time.Time
}

// Payload renders the pull_request_review webhook payload.
func (r Review) Payload() []byte {
	var pr github.PullRequestEvent
	if err := json.Unmarshal(r.PullRequest.Payload(), &pr); err != nil {
		panic(err) // our own rendering
	}
	return mustJSON(&github.PullRequestReviewEvent{
		Action: github.String(r.Action),
		Review: &github.PullRequestReview{
			ID: github.Int64(r.ID), User: &github.User{Login: github.String(r.Reviewer)}, State: github.String(r.State),
			SubmittedAt: &github.Timestamp{Time: r.SubmittedAt}, CommitID: pr.PullRequest.Head.SHA,
			HTMLURL: github.String(fmt.Sprintf("%s#pullrequestreview-%d", pr.PullRequest.GetHTMLURL(), r.ID)),
		},
		PullRequest: pr.PullRequest, Repo: pr.Repo, Sender: &github.User{Login: github.String(r.Reviewer)},
	})
}

// Deployment describes a deployment (GitHub's deployments API): the
// deployment delivery's payload, and the deployment member of its statuses'.
type Deployment struct {
	Repo        Repo
	ID          int64
	Environment string
	Ref         string
	SHA         string
	Creator     string
	CreatedAt   time.Time
}

func (d Deployment) deployment(updated time.Time) *github.Deployment {
	return &github.Deployment{
		ID: github.Int64(d.ID), SHA: github.String(d.SHA), Ref: github.String(d.Ref), Task: github.String("deploy"),
		Payload: []byte("{}"), Environment: github.String(d.Environment), Creator: &github.User{Login: github.String(d.Creator)},
		CreatedAt: &github.Timestamp{Time: d.CreatedAt}, UpdatedAt: &github.Timestamp{Time: updated},
		URL: github.String(fmt.Sprintf("https://api.github.com/repos/%s/deployments/%d", d.Repo, d.ID)),
	}
}

// Payload renders the deployment webhook payload (action "created").
func (d Deployment) Payload() []byte {
	return mustJSON(map[string]any{
		"action": "created", "deployment": d.deployment(d.CreatedAt),
		"repository": d.Repo.repository(d.CreatedAt), "sender": &github.User{Login: github.String(d.Creator)},
	})
}

// Status renders a deployment_status payload (action "created") of state
// at time at; GitHub moves the deployment's updated_at with its statuses.
func (d Deployment) Status(id int64, state string, at time.Time) []byte {
	return mustJSON(map[string]any{
		"action": "created", "deployment": d.deployment(at),
		"deployment_status": &github.DeploymentStatus{
			ID: github.Int64(id), State: github.String(state), Environment: github.String(d.Environment),
			Creator:   &github.User{Login: github.String(d.Creator)},
			CreatedAt: &github.Timestamp{Time: at}, UpdatedAt: &github.Timestamp{Time: at},
		},
		"repository": d.Repo.repository(at), "sender": &github.User{Login: github.String(d.Creator)},
	})
}
