// Package workload generates GitHub delivery histories for end-to-end tests
// and benchmarks: pull request and branch lifecycles across many
// repositories, with the final state each object must end in, and the
// counts each metric must show.
package workload

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
)

// Kind of object a delivery is about.
const (
	KindPullRequest = "PullRequest"
	KindBranch      = "Branch"
)

// Item is one delivery with what it means for the counters.
type Item struct {
	ghwebhook.Delivery
	Repo   string
	Kind   string // KindPullRequest or KindBranch
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
}

// Generate builds a workload. Each pull request history is opened, 1–4
// synchronize (with edits now and then), and closed — merged two times in
// three — or left open; each branch history is create, 1–5 pushes, and
// delete for two in three. Timestamps inside one history are at least a
// second apart and strictly increasing (GitHub's own resolution).
func Generate(o Options) *Workload {
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	w := &Workload{}
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
			add := func(action, reported string, merged bool) {
				t = t.Add(time.Duration(1+rng.IntN(600)) * time.Second)
				body := ghwebhook.PullRequest{Repo: repo, Number: p, Action: action, User: user, Title: title,
					Head: head, HeadSHA: cur, Merged: merged, CreatedAt: t0, UpdatedAt: t}.Payload()
				h = append(h, Item{Delivery: ghwebhook.Delivery{Event: "pull_request", ID: id(), Body: body},
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
			w.Histories = append(w.Histories, h)
			w.PRs = append(w.PRs, PullRequestState{Repo: string(repo), Number: p, Status: status, HeadSHA: cur, Title: title})
		}
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

// Counts is the number of distinct deliveries per (repository, kind, action).
func (w *Workload) Counts() map[[3]string]int {
	c := map[[3]string]int{}
	for _, it := range w.Items() {
		c[[3]string{it.Repo, it.Kind, it.Action}]++
	}
	return c
}
