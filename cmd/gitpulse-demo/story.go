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
// created and pushed, pull requests opened, synchronised, merged or closed,
// branches deleted. Delivery ids are unique per run so the demo can be
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
	pr := func(r ghwebhook.Repo, num int, action, who, b string, merged bool, opened, h float64, i int) Step {
		say := fmt.Sprintf("%s %s %s#%d", who, action, r, num)
		if merged {
			say = fmt.Sprintf("%s merged %s#%d", who, r, num)
		}
		return Step{say, ghwebhook.Delivery{Event: "pull_request", ID: id(), Body: ghwebhook.PullRequest{
			Repo: r, Number: num, Action: action, User: who, Title: "Work on " + b, Head: b, HeadSHA: sha(i),
			Merged: merged, CreatedAt: at(opened), UpdatedAt: at(h)}.Payload()}}
	}
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
		pr(pay, 12, "synchronize", "ada", "feature/checkout", false, 2.5, 20.1, 3),
		pr(pay, 12, "closed", "grace", "feature/checkout", true, 2.5, 30, 3),
		del(pay, "feature/checkout", "grace", 30.1),
		create(web, "fix/typo", "linus", 1),
		push(web, "fix/typo", "linus", 1, 1.1),
		pr(web, 7, "opened", "linus", "fix/typo", false, 1.2, 1.2, 1),
		pr(web, 7, "closed", "linus", "fix/typo", false, 1.2, 5, 1),
		create(web, "feature/dark-mode", "margaret", 40),
		push(web, "feature/dark-mode", "margaret", 1, 40.5),
		pr(web, 8, "opened", "margaret", "feature/dark-mode", false, 41, 41, 1),
	}
}

// Expected is how many counted deliveries the story produces.
func Expected(story []Step) int { return len(story) }
