package reconcile

import (
	"context"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

// sinceOverlap re-reads a little before the newest updated_at seen, so a
// pull request GitHub lists late is not skipped; re-reading an unchanged
// one writes nothing.
const sinceOverlap = 5 * time.Minute

// backfill upserts the pull requests and branches of the source's
// repositories (an organisation's: every repository it lists) through the
// recorder, with the recorder's ordering rules. On a repository's first
// pass, and every FullResync, it reads the whole Window of pull requests
// and every branch (so an object deleted by hand is recreated); otherwise
// only pull requests updated since the cursor.
func (p *pass) backfill(ctx context.Context) error {
	repos := []string{p.src.Repo}
	if p.src.Repo == "" {
		var ok bool
		if repos, ok = p.orgRepos(ctx); !ok {
			return nil
		}
	}
	now := p.r.opts.Now()
	full := p.cur.time(KeyFullResyncAt)
	fullPass := full.IsZero() || now.Sub(full) >= p.r.opts.FullResync
	for _, repo := range repos {
		key := KeyPullsSince
		if p.src.Repo == "" {
			key += "." + repo
		}
		since := p.cur.time(key)
		if fullPass || since.IsZero() || since.Before(now.Add(-p.r.opts.Window)) {
			since = now.Add(-p.r.opts.Window)
		}
		newest, err := p.pulls(ctx, repo, since)
		if err != nil || p.result != "" {
			return err
		}
		if err := p.branches(ctx, repo); err != nil || p.result != "" {
			return err
		}
		cur, err := p.r.store.update(ctx, p.src, func(c cursor) bool {
			next := newest.Add(-sinceOverlap)
			if newest.IsZero() || !next.After(c.time(key)) {
				return false
			}
			c.setTime(key, next)
			return true
		})
		if err != nil {
			return err
		}
		p.cur = cur
	}
	if fullPass {
		cur, err := p.r.store.update(ctx, p.src, func(c cursor) bool {
			c.setTime(KeyFullResyncAt, now)
			return true
		})
		if err != nil {
			return err
		}
		p.cur = cur
	}
	return nil
}

func (p *pass) orgRepos(ctx context.Context) ([]string, bool) {
	var names []string
	opts := &github.RepositoryListByOrgOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for p.take(ctx) {
		repos, resp, err := p.gh.Repositories.ListByOrg(ctx, p.src.Owner, opts)
		if !p.done(resp, err) {
			return nil, false
		}
		for _, r := range repos {
			names = append(names, r.GetName())
		}
		if resp.NextPage == 0 {
			return names, true
		}
		opts.Page = resp.NextPage
	}
	return nil, false
}

func (p *pass) record(ctx context.Context, ch githubevent.Change) error {
	out, err := p.r.opts.Recorder.RecordReconciled(ctx, ch)
	if err != nil {
		return err
	}
	if out == recorder.Reconciled {
		p.reconciled++
	}
	return nil
}

// pulls lists the repository's pull requests, newest updated first
// (state=all, sort=updated, direction=desc), down to since. It returns
// the newest updated_at seen.
func (p *pass) pulls(ctx context.Context, repo string, since time.Time) (time.Time, error) {
	full := p.src.Owner + "/" + repo
	var newest time.Time
	opts := &github.PullRequestListOptions{State: "all", Sort: "updated", Direction: "desc",
		ListOptions: github.ListOptions{PerPage: 100}}
	for p.take(ctx) {
		prs, resp, err := p.gh.PullRequests.List(ctx, p.src.Owner, repo, opts)
		if !p.done(resp, err) {
			return newest, nil
		}
		for _, pr := range prs {
			at := pr.GetUpdatedAt().Time
			if at.Before(since) {
				return newest, nil
			}
			if at.After(newest) {
				newest = at
			}
			ch, err := githubevent.FromAPIPullRequest(full, pr)
			if err != nil {
				p.log.Warn("pull request from the API not reconciled", "number", pr.GetNumber(), "err", err)
				continue
			}
			if err := p.record(ctx, ch); err != nil {
				return newest, err
			}
		}
		if resp.NextPage == 0 {
			return newest, nil
		}
		opts.Page = resp.NextPage
	}
	return newest, nil
}

// branches creates the Branch objects missing for the repository's
// branches.
func (p *pass) branches(ctx context.Context, repo string) error {
	full := p.src.Owner + "/" + repo
	opts := &github.BranchListOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for p.take(ctx) {
		bs, resp, err := p.gh.Repositories.ListBranches(ctx, p.src.Owner, repo, opts)
		if !p.done(resp, err) {
			return nil
		}
		for _, b := range bs {
			ch, err := githubevent.FromAPIBranch(full, b)
			if err != nil {
				p.log.Warn("branch from the API not reconciled", "branch", b.GetName(), "err", err)
				continue
			}
			if err := p.record(ctx, ch); err != nil {
				return err
			}
		}
		if resp.NextPage == 0 {
			return nil
		}
		opts.Page = resp.NextPage
	}
	return nil
}
