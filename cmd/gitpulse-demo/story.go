package main

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
)

// Step is one delivery of the story and what it means.
type Step struct {
	Say      string
	Delivery ghwebhook.Delivery
}

// Story is a small, realistic history across two repositories: branches
// created and pushed, pull requests opened, synchronised, reviewed, merged
// or closed, branches deleted, and two deployments of the merged commit to
// production: the first fails, the second recovers. Delivery ids are unique per run so the demo can be
// replayed against the same stack.
func Story(t0 time.Time) []Step {
	run := t0.UnixNano()
	n := 0
	id := func() string { n++; return fmt.Sprintf("demo-%d-%03d", run, n) }
	at := func(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }
	const pay, web = ghwebhook.Repo("acme/payments"), ghwebhook.Repo("acme/web")
	sha := func(i int) string {
		sum := sha1.Sum([]byte(fmt.Sprint(run, i)))
		return hex.EncodeToString(sum[:])
	}

	create := func(r ghwebhook.Repo, b, who string, h float64) Step {
		return Step{fmt.Sprintf("%s created branch %s in %s", who, b, r), ghwebhook.Delivery{Event: "create", ID: id(),
			Body: ghwebhook.Ref{Repo: r, Ref: b, Sender: who, At: at(h)}.CreatePayload()}}
	}
	push := func(r ghwebhook.Repo, b, who string, i int, h float64) Step {
		return Step{fmt.Sprintf("%s pushed %s to %s", who, sha(i)[:7], b), ghwebhook.Delivery{Event: "push", ID: id(),
			Body: ghwebhook.Push{Repo: r, Branch: b, Before: sha(i - 1), After: sha(i), Pusher: who, Created: i == 1, At: at(h)}.Payload()}}
	}
	pullRequest := func(r ghwebhook.Repo, num int, action, who, b string, merged bool, opened, h float64, i int) ghwebhook.PullRequest {
		p := ghwebhook.PullRequest{Repo: r, Number: num, Action: action, User: who, Title: "Work on " + b, Head: b, HeadSHA: sha(i),
			Merged: merged, CreatedAt: at(opened), UpdatedAt: at(h)}
		if merged {
			p.MergeCommitSHA = sha(1000 + num)
		}
		return p
	}
	pr := func(r ghwebhook.Repo, num int, action, who, b string, merged bool, opened, h float64, i int) Step {
		say := fmt.Sprintf("%s %s %s#%d", who, action, r, num)
		if merged {
			say = fmt.Sprintf("%s merged %s#%d", who, r, num)
		}
		return Step{say, ghwebhook.Delivery{Event: "pull_request", ID: id(),
			Body: pullRequest(r, num, action, who, b, merged, opened, h, i).Payload()}}
	}
	reviews := 0
	review := func(r ghwebhook.Repo, num int, who, state, author, b string, opened, h float64, i int) Step {
		reviews++
		return Step{fmt.Sprintf("%s reviewed %s#%d: %s", who, r, num, state), ghwebhook.Delivery{Event: "pull_request_review", ID: id(),
			Body: ghwebhook.Review{PullRequest: pullRequest(r, num, "opened", author, b, false, opened, h, i), Action: "submitted",
				ID: int64(num*100 + reviews), Reviewer: who, State: state, SubmittedAt: at(h)}.Payload()}}
	}
	deployment := func(r ghwebhook.Repo, depID int64, mergedPR int, who string, h float64) ghwebhook.Deployment {
		return ghwebhook.Deployment{Repo: r, ID: depID, Environment: "production", Ref: "main", SHA: sha(1000 + mergedPR),
			Creator: who, CreatedAt: at(h)}
	}
	deploy := func(d ghwebhook.Deployment) Step {
		return Step{fmt.Sprintf("%s deployed %s to %s", d.Creator, d.SHA[:7], d.Environment),
			ghwebhook.Delivery{Event: "deployment", ID: id(), Body: d.Payload()}}
	}
	status := func(d ghwebhook.Deployment, statusID int64, state string, h float64) Step {
		return Step{fmt.Sprintf("deployment %d to %s: %s", d.ID, d.Environment, state),
			ghwebhook.Delivery{Event: "deployment_status", ID: id(), Body: d.Status(statusID, state, at(h))}}
	}
	first, second := deployment(pay, 901, 12, "grace", 30.5), deployment(pay, 902, 12, "grace", 31.5)
	del := func(r ghwebhook.Repo, b, who string, h float64) Step {
		return Step{fmt.Sprintf("%s deleted branch %s in %s", who, b, r), ghwebhook.Delivery{Event: "delete", ID: id(),
			Body: ghwebhook.Ref{Repo: r, Ref: b, Sender: who, At: at(h)}.DeletePayload()}}
	}
	return []Step{
		create(pay, "feature/checkout", "ada", 0),
		push(pay, "feature/checkout", "ada", 1, 0.1),
		push(pay, "feature/checkout", "ada", 2, 2),
		pr(pay, 12, "opened", "ada", "feature/checkout", false, 2.5, 2.5, 2),
		push(pay, "feature/checkout", "ada", 3, 20),
		review(pay, 12, "linus", "commented", "ada", "feature/checkout", 2.5, 4, 2),
		review(pay, 12, "grace", "changes_requested", "ada", "feature/checkout", 2.5, 6, 2),
		pr(pay, 12, "synchronize", "ada", "feature/checkout", false, 2.5, 20.1, 3),
		review(pay, 12, "grace", "approved", "ada", "feature/checkout", 2.5, 22, 3),
		pr(pay, 12, "closed", "grace", "feature/checkout", true, 2.5, 30, 3),
		del(pay, "feature/checkout", "grace", 30.1),
		deploy(first),
		status(first, 9011, "in_progress", 30.6),
		status(first, 9012, "failure", 30.8),
		deploy(second),
		status(second, 9021, "in_progress", 31.6),
		status(second, 9022, "success", 32),
		create(web, "fix/typo", "linus", 1),
		push(web, "fix/typo", "linus", 1, 1.1),
		pr(web, 7, "opened", "linus", "fix/typo", false, 1.2, 1.2, 1),
		pr(web, 7, "closed", "linus", "fix/typo", false, 1.2, 5, 1),
		create(web, "feature/dark-mode", "margaret", 40),
		push(web, "feature/dark-mode", "margaret", 1, 40.5),
		pr(web, 8, "opened", "margaret", "feature/dark-mode", false, 41, 41, 1),
	}
}

// Expected is how many deliveries the story's counters show: every one but
// the deployment deliveries (gitpulse_deployments_total counts statuses).
func Expected(story []Step) int {
	n := 0
	for _, s := range story {
		if s.Delivery.Event != "deployment" {
			n++
		}
	}
	return n
}
