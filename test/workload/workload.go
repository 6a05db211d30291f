// Package workload generates GitHub delivery histories for end-to-end tests
// and benchmarks: pull request and branch lifecycles across many
// repositories, with the final state each object must end in, and the
// counts each metric must show.
package workload

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
)

// Kind of object a delivery is about.
const (
	KindPullRequest = "PullRequest"
	KindBranch      = "Branch"
	// KindReview deliveries land on a PullRequest; KindDeployment on a
	// GitHubDeployment (action: created, or the status state).
	KindReview     = "Review"
	KindDeployment = "Deployment"
)

// Item is one delivery with what it means for the counters.
type Item struct {
	ghwebhook.Delivery
	Repo   string
	Kind   string // KindPullRequest, KindBranch, KindReview or KindDeployment
	Action string // the Event action the recorder reports
	Object string // repo + "#" + number, or repo + ":" + branch
}

// PullRequestState is the final state a pull request must be in.
type PullRequestState struct {
	Repo    string
	Number  int
	Status  string // open, closed, merged
	HeadSHA string
	Title   string
	// Reviews (Options.ReviewsPerPR): submitted, approving, the first's time.
	Reviews, Approvals int
	FirstReviewAt      time.Time
}

// DeploymentState is the final state a deployment must be in.
type DeploymentState struct {
	Repo           string
	ID             int64
	State          string
	FirstSuccessAt time.Time
	// Changes are the pull request numbers it shipped, ascending.
	Changes []int
}

// BranchState is the final state a branch must be in.
type BranchState struct {
	Repo      string
	Name      string
	State     string // created, deleted
	HeadSHA   string
	PushCount int
}

// Workload is a generated history.
type Workload struct {
	// Histories holds each object's deliveries in the order they happened.
	Histories [][]Item
	PRs       []PullRequestState
	Branches  []BranchState
	// Deployments (Options.Deployments).
	Deployments []DeploymentState
}

// Options size a workload.
type Options struct {
	Repos           int
	PRsPerRepo      int
	BranchesPerRepo int
	Seed            uint64
	Start           time.Time
	// Owners prefixes the seven repository owners ("<Owners>-00" ...);
	// default "org". Workloads sharing a stack use different ones.
	Owners string
	// ReviewsPerPR, when > 0, adds 0 to that many submitted reviews to
	// each pull request's history.
	ReviewsPerPR int
	// Deployments, when 3, adds three deployments of main to production per
	// repository, 40 minutes apart from Start (among the merges): the first
	// fails, the second fails then succeeds (deploying the merge commit of
	// the last pull request merged before it), the third succeeds (shipping
	// what was merged in between by window).
	Deployments int
}

// Generate builds a workload. Each pull request history is opened, 1–4
// synchronize (with edits now and then), and closed — merged two times in
// three — or left open; each branch history is create, 1–5 pushes, and
// delete for two in three. Timestamps inside one history are at least a
// second apart and strictly increasing (GitHub's own resolution).
func Generate(o Options) *Workload {
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	w := &Workload{}
	var merges []merge // of the current repository
	seq := 0
	id := func() string { seq++; return fmt.Sprintf("%08x-%04x-4000-8000-%012x", o.Seed, seq%0xffff, seq) }
	sha := func() string { return fmt.Sprintf("%016x%016x%08x", rng.Uint64(), rng.Uint64(), rng.Uint32()) }
	for r := 0; r < o.Repos; r++ {
		owners := o.Owners
		if owners == "" {
			owners = "org"
		}
		repo := ghwebhook.Repo(fmt.Sprintf("%s-%02d/service-%02d", owners, r%7, r))
		for p := 1; p <= o.PRsPerRepo; p++ {
			t0 := o.Start.Add(time.Duration(rng.IntN(3600)) * time.Second)
			t := t0
			head := fmt.Sprintf("feature/pr-%d", p)
			user := fmt.Sprintf("dev%d", rng.IntN(12))
			title := fmt.Sprintf("Change %d of %s", p, repo)
			cur := sha()
			obj := fmt.Sprintf("%s#%d", repo, p)
			var h []Item
			mergeSHA := sha()
			add := func(action, reported string, merged bool) {
				t = t.Add(time.Duration(1+rng.IntN(600)) * time.Second)
				pr := ghwebhook.PullRequest{Repo: repo, Number: p, Action: action, User: user, Title: title,
					Head: head, HeadSHA: cur, Merged: merged, CreatedAt: t0, UpdatedAt: t}
				if merged {
					pr.MergeCommitSHA = mergeSHA
					merges = append(merges, merge{repo: string(repo), number: p, sha: mergeSHA, at: t})
				}
				h = append(h, Item{Delivery: ghwebhook.Delivery{Event: "pull_request", ID: id(), Body: pr.Payload()},
					Repo: string(repo), Kind: KindPullRequest, Action: reported, Object: obj})
			}
			t = t0.Add(-time.Second)
			add("opened", "opened", false)
			for i, n := 0, 1+rng.IntN(4); i < n; i++ {
				cur = sha()
				add("synchronize", "synchronize", false)
				if rng.IntN(4) == 0 {
					title += " (edited)"
					add("edited", "edited", false)
				}
			}
			status := "open"
			switch x := rng.IntN(6); {
			case x < 4:
				add("closed", "merged", true)
				status = "merged"
			case x < 5:
				add("closed", "closed", false)
				status = "closed"
			}
			st := PullRequestState{Repo: string(repo), Number: p, Status: status, HeadSHA: cur, Title: title}
			if o.ReviewsPerPR > 0 {
				for i, n := 0, rng.IntN(o.ReviewsPerPR+1); i < n; i++ {
					state := []string{"commented", "changes_requested", "approved"}[rng.IntN(3)]
					at := t0.Add(time.Duration(1+rng.IntN(3000)) * time.Second)
					body := ghwebhook.Review{PullRequest: ghwebhook.PullRequest{Repo: repo, Number: p, Action: "opened", User: user,
						Title: title, Head: head, HeadSHA: cur, CreatedAt: t0, UpdatedAt: at},
						Action: "submitted", ID: int64(p*100 + i + 1), Reviewer: fmt.Sprintf("dev%d", rng.IntN(12)), State: state, SubmittedAt: at}.Payload()
					h = append(h, Item{Delivery: ghwebhook.Delivery{Event: "pull_request_review", ID: id(), Body: body},
						Repo: string(repo), Kind: KindReview, Action: "submitted", Object: obj})
					st.Reviews++
					if state == "approved" {
						st.Approvals++
					}
					if st.FirstReviewAt.IsZero() || at.Before(st.FirstReviewAt) {
						st.FirstReviewAt = at
					}
				}
			}
			w.Histories = append(w.Histories, h)
			w.PRs = append(w.PRs, st)
		}
		if o.Deployments == 3 {
			w.deployments(rng, repo, r, o.Start, merges, id)
		}
		merges = nil
		for b := 0; b < o.BranchesPerRepo; b++ {
			name := fmt.Sprintf("topic/b-%d", b)
			t := o.Start.Add(time.Duration(rng.IntN(3600)) * time.Second)
			obj := fmt.Sprintf("%s:%s", repo, name)
			user := fmt.Sprintf("dev%d", rng.IntN(12))
			var h []Item
			next := func() time.Time { t = t.Add(time.Duration(1+rng.IntN(600)) * time.Second); return t }
			h = append(h, Item{Delivery: ghwebhook.Delivery{Event: "create", ID: id(),
				Body: ghwebhook.Ref{Repo: repo, Ref: name, Sender: user, At: next()}.CreatePayload()},
				Repo: string(repo), Kind: KindBranch, Action: "created", Object: obj})
			before, cur := sha(), ""
			pushes := 1 + rng.IntN(5)
			for i := 0; i < pushes; i++ {
				cur = sha()
				h = append(h, Item{Delivery: ghwebhook.Delivery{Event: "push", ID: id(),
					Body: ghwebhook.Push{Repo: repo, Branch: name, Before: before, After: cur, Pusher: user,
						Forced: rng.IntN(10) == 0, At: next()}.Payload()},
					Repo: string(repo), Kind: KindBranch, Action: "pushed", Object: obj})
				before = cur
			}
			state := "created"
			if rng.IntN(3) < 2 {
				h = append(h, Item{Delivery: ghwebhook.Delivery{Event: "delete", ID: id(),
					Body: ghwebhook.Ref{Repo: repo, Ref: name, Sender: user, At: next()}.DeletePayload()},
					Repo: string(repo), Kind: KindBranch, Action: "deleted", Object: obj})
				state = "deleted"
			}
			w.Histories = append(w.Histories, h)
			w.Branches = append(w.Branches, BranchState{Repo: string(repo), Name: name, State: state, HeadSHA: cur, PushCount: pushes})
		}
	}
	return w
}

// merge is a merged pull request, for deployment attribution.
type merge struct {
	repo   string
	number int
	sha    string
	at     time.Time
}

// deployments adds the three deployments of Options.Deployments and what
// each must end with: its state, first success and the pull requests it
// shipped by gitpulse's rule (docs/dora.md): the merge commit is its SHA, or
// merged after the previous successful deployment was created and no
// later than it was.
func (w *Workload) deployments(rng *rand.Rand, repo ghwebhook.Repo, r int, start time.Time, merges []merge, id func() string) {
	var prevSuccess time.Time
	for k := 1; k <= 3; k++ {
		created := start.Add(time.Duration(k) * 40 * time.Minute)
		d := ghwebhook.Deployment{Repo: repo, ID: int64(r*100 + k), Environment: "production", Ref: "main",
			SHA: fmt.Sprintf("%040x", rng.Uint64()), Creator: "deployer", CreatedAt: created}
		var last *merge
		for i := range merges {
			if !merges[i].at.After(created) && (last == nil || merges[i].at.After(last.at)) {
				last = &merges[i]
			}
		}
		if k == 2 && last != nil {
			d.SHA = last.sha
		}
		obj := fmt.Sprintf("%s@%d", repo, d.ID)
		h := []Item{{Delivery: ghwebhook.Delivery{Event: "deployment", ID: id(), Body: d.Payload()},
			Repo: string(repo), Kind: KindDeployment, Action: "created", Object: obj}}
		states := map[int][]string{1: {"in_progress", "failure"}, 2: {"in_progress", "failure", "success"}, 3: {"in_progress", "success"}}[k]
		want := DeploymentState{Repo: string(repo), ID: d.ID}
		for i, state := range states {
			at := created.Add(time.Duration(i+1) * time.Minute)
			h = append(h, Item{Delivery: ghwebhook.Delivery{Event: "deployment_status", ID: id(), Body: d.Status(d.ID*10+int64(i), state, at)},
				Repo: string(repo), Kind: KindDeployment, Action: state, Object: obj})
			want.State = state
			if state == "success" && want.FirstSuccessAt.IsZero() {
				want.FirstSuccessAt = at
			}
		}
		if !want.FirstSuccessAt.IsZero() {
			for _, m := range merges {
				if m.sha == d.SHA || (!prevSuccess.IsZero() && m.at.After(prevSuccess) && !m.at.After(created)) {
					want.Changes = append(want.Changes, m.number)
				}
			}
			slices.Sort(want.Changes)
			prevSuccess = created
		}
		w.Histories = append(w.Histories, h)
		w.Deployments = append(w.Deployments, want)
	}
}

// Items returns every delivery once.
func (w *Workload) Items() []Item {
	var all []Item
	for _, h := range w.Histories {
		all = append(all, h...)
	}
	return all
}

// Schedule is the order deliveries are sent in: each object's history
// shuffled, histories interleaved at random, and a fraction of deliveries
// repeated — some right away (concurrently with the first copy), some later.
// Concurrent reports, for each position, whether it should be sent
// together with the previous one.
func (w *Workload) Schedule(seed uint64, duplicateFraction float64) (order []Item, concurrent []bool) {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	queues := make([][]Item, len(w.Histories))
	for i, h := range w.Histories {
		q := append([]Item(nil), h...)
		rng.Shuffle(len(q), func(a, b int) { q[a], q[b] = q[b], q[a] })
		queues[i] = q
	}
	var later []Item
	for {
		live := 0
		for _, q := range queues {
			if len(q) > 0 {
				live++
			}
		}
		if live == 0 {
			break
		}
		k := rng.IntN(len(queues))
		for len(queues[k]) == 0 {
			k = (k + 1) % len(queues)
		}
		it := queues[k][0]
		queues[k] = queues[k][1:]
		order, concurrent = append(order, it), append(concurrent, false)
		if rng.Float64() < duplicateFraction {
			if rng.IntN(2) == 0 {
				order, concurrent = append(order, it), append(concurrent, true)
			} else {
				later = append(later, it)
			}
		}
		if len(later) > 0 && rng.IntN(4) == 0 {
			order, concurrent = append(order, later[0]), append(concurrent, false)
			later = later[1:]
		}
	}
	for _, it := range later {
		order, concurrent = append(order, it), append(concurrent, false)
	}
	return order, concurrent
}

// Counts is the number of distinct deliveries per (repository, kind, action)
// that a counter shows: deployment deliveries themselves are not counted
// (gitpulse_deployments_total counts statuses).
func (w *Workload) Counts() map[[3]string]int {
	c := map[[3]string]int{}
	for _, it := range w.Items() {
		if it.Kind == KindDeployment && it.Action == "created" {
			continue
		}
		c[[3]string{it.Repo, it.Kind, it.Action}]++
	}
	return c
}
