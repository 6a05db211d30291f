package reconcile

import (
	"context"
	"strings"
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
// recorder, with the recorder's ordering rules, and with them the reviews
// of those pull requests and the repository's deployments with their
// statuses (then the lead time attribution, Recorder.Ship). On a
// repository's first pass, and every FullResync, it reads the whole Window
// of pull requests and deployments and every branch (so an object deleted
// by hand is recreated); otherwise only pull requests updated since the
// cursor and deployments created since the deployment cursor.
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
		if err := p.backfillRepo(ctx, repo, now, fullPass); err != nil || p.result != "" {
			return err
		}
	}
	if fullPass {
		cur, err := p.r.store.update(ctx, p.src, func(c cursor) bool {
			c.setTime(KeyFullResyncAt, now)
			// The full pass is done: the next one reads everything again.
			for k := range c.cm.Data {
				if strings.HasPrefix(k, KeyPullsScan) || strings.HasPrefix(k, KeyDeploymentsScan) {
					delete(c.cm.Data, k)
				}
			}
			return true
		})
		if err != nil {
			return err
		}
		p.cur = cur
	}
	return nil
}

// backfillRepo is backfill for one repository.
func (p *pass) backfillRepo(ctx context.Context, repo string, now time.Time, fullPass bool) error {
	suffix := ""
	if p.src.Repo == "" {
		suffix = "." + repo
	}
	key, depKey := KeyPullsSince+suffix, KeyDeploymentsSince+suffix
	since, depSince := p.cur.time(key), p.cur.time(depKey)
	if fullPass || since.IsZero() || since.Before(now.Add(-p.r.opts.Window)) {
		since = now.Add(-p.r.opts.Window)
	}
	if fullPass || depSince.IsZero() || depSince.Before(now.Add(-p.r.opts.Window)) {
		depSince = now.Add(-p.r.opts.Window)
	}
	// A full pass may need more requests than one pass has (a request per
	// pull request and per deployment): it goes on over several passes,
	// each skipping what an earlier one read (scan.go).
	reconciled := p.reconciled
	var pullScan, depScan *scan
	if fullPass {
		pullScan = loadScan(p.cur, KeyPullsScan+suffix)
		depScan = loadScan(p.cur, KeyDeploymentsScan+suffix)
	}
	newest, err := p.pullRequests(ctx, repo, since, pullScan, KeyPullsETag+suffix) // graphql.go
	if err != nil {
		return err
	}
	if err := p.saveScan(ctx, pullScan, p.result != "", since); err != nil || p.result != "" {
		return err
	}
	if err := p.branches(ctx, repo, fullPass); err != nil || p.result != "" {
		return err
	}
	newestDep, err := p.deployments(ctx, repo, depSince, depScan)
	if err == nil && (p.reconciled != reconciled || !newestDep.IsZero()) {
		// Also after a partial list: what was written is attributed.
		// And whenever deployments are in range, though nothing moved:
		// a pass may have ended between a write and its attribution.
		err = p.r.opts.Recorder.Ship(ctx, p.src.Owner+"/"+repo)
	}
	if err == nil {
		err = p.saveScan(ctx, depScan, p.result != "", depSince)
	}
	if err != nil || p.result != "" {
		return err
	}
	cur, err := p.r.store.update(ctx, p.src, func(c cursor) bool {
		moved := false
		if next := newest.Add(-sinceOverlap); !newest.IsZero() && next.After(c.time(key)) {
			c.setTime(key, next)
			moved = true
		}
		if next := newestDep.Add(-deploymentOverlap); !newestDep.IsZero() && next.After(c.time(depKey)) {
			c.setTime(depKey, next)
			moved = true
		}
		return moved
	})
	if err != nil {
		return err
	}
	p.cur = cur
	return nil
}

// saveScan keeps how far a full pass's list got (cut) or that it was read
// to the end, for the passes that continue the full pass.
func (p *pass) saveScan(ctx context.Context, sc *scan, cut bool, since time.Time) error {
	if sc == nil {
		return nil
	}
	from, downTo := sc.next(cut, since)
	if from.Equal(sc.from) && downTo.Equal(sc.downTo) {
		return nil
	}
	cur, err := p.r.store.update(ctx, p.src, func(c cursor) bool {
		c.set(sc.key, from.UTC().Format(time.RFC3339)+"/"+downTo.UTC().Format(time.RFC3339))
		return true
	})
	if err != nil {
		return err
	}
	p.cur = cur
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
func (p *pass) pulls(ctx context.Context, repo string, since time.Time, sc *scan) (time.Time, error) {
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
			if sc.skip(at) {
				continue // read by an earlier pass of this full pass
			}
			// A review moves the pull request's updated_at, so the pull
			// requests read here are those whose reviews may be new.
			reviews, ok := p.reviews(ctx, repo, pr.GetNumber())
			if !ok {
				return newest, nil
			}
			ch, err := githubevent.FromAPIPullRequestWithReviews(full, pr, reviews)
			if err != nil {
				p.log.Warn("pull request from the API not reconciled", "number", pr.GetNumber(), "err", err)
				continue
			}
			if err := p.record(ctx, ch); err != nil {
				return newest, err
			}
			sc.processed(at)
		}
		if resp.NextPage == 0 {
			return newest, nil
		}
		opts.Page = resp.NextPage
	}
	return newest, nil
}

// branches creates the Branch objects missing for the repository's
// branches. On a full pass that reads the whole list, it also marks deleted
// the recorded branches the list lacks (their delete delivery was lost for
// good), ordered at the time the list was read.
func (p *pass) branches(ctx context.Context, repo string, fullPass bool) error {
	full := p.src.Owner + "/" + repo
	listedAt := p.r.opts.Now()
	listed := map[string]bool{}
	opts := &github.BranchListOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for p.take(ctx) {
		bs, resp, err := p.gh.Repositories.ListBranches(ctx, p.src.Owner, repo, opts)
		if !p.done(resp, err) {
			return nil
		}
		for _, b := range bs {
			listed[b.GetName()] = true
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
			if fullPass {
				return p.absentBranches(ctx, full, listed, listedAt)
			}
			return nil
		}
		opts.Page = resp.NextPage
	}
	return nil
}

// absentBranches marks deleted the recorded branches of repository that
// GitHub's complete list, read at listedAt, lacks.
func (p *pass) absentBranches(ctx context.Context, repository string, listed map[string]bool, listedAt time.Time) error {
	recorded, err := p.r.opts.Recorder.RecordedBranches(ctx, repository)
	if err != nil {
		return err
	}
	for _, name := range recorded {
		if listed[name] {
			continue
		}
		ch, err := githubevent.FromAPIBranchAbsent(repository, name, listedAt)
		if err != nil {
			p.log.Warn("absent branch not reconciled", "branch", name, "err", err)
			continue
		}
		if err := p.record(ctx, ch); err != nil {
			return err
		}
	}
	return nil
}

// deploymentOverlap re-reads the deployments created in the day before the
// newest one seen: their statuses (a deploy that fails, then is retried or
// rolled back) keep coming after the deployment is created, and the
// deployments list has no "updated since". A status posted later than that
// is read at the next FullResync.
const deploymentOverlap = 24 * time.Hour

// reviews lists the reviews of pull request number (GitHub's "List
// reviews for a pull request", GET
// /repos/{owner}/{repo}/pulls/{pull_number}/reviews, go-github
// pulls_reviews.go ListReviews; chronological, paginated): one request per
// page of 100. False when the pass ended first.
func (p *pass) reviews(ctx context.Context, repo string, number int) ([]*github.PullRequestReview, bool) {
	var all []*github.PullRequestReview
	opts := &github.ListOptions{PerPage: 100}
	for p.take(ctx) {
		rvs, resp, err := p.gh.PullRequests.ListReviews(ctx, p.src.Owner, repo, number, opts)
		if !p.done(resp, err) {
			return nil, false
		}
		all = append(all, rvs...)
		if resp.NextPage == 0 {
			return all, true
		}
		opts.Page = resp.NextPage
	}
	return nil, false
}

// deployments lists the repository's deployments (GitHub's "List
// deployments", GET /repos/{owner}/{repo}/deployments, go-github
// repos_deployments.go ListDeployments; newest first) down to those
// created before since, and for each its statuses ("List deployment
// statuses", ListDeploymentStatuses), and records them. It returns the
// newest created_at seen. A page whose deployments were all created before
// since ends the list.
func (p *pass) deployments(ctx context.Context, repo string, since time.Time, sc *scan) (time.Time, error) {
	full := p.src.Owner + "/" + repo
	var newest time.Time
	opts := &github.DeploymentsListOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for p.take(ctx) {
		deps, resp, err := p.gh.Repositories.ListDeployments(ctx, p.src.Owner, repo, opts)
		if !p.done(resp, err) {
			return newest, nil
		}
		inWindow := 0
		for _, d := range deps {
			at := d.GetCreatedAt().Time
			if at.Before(since) {
				continue
			}
			inWindow++
			if at.After(newest) {
				newest = at
			}
			if sc.skip(at) {
				continue // read by an earlier pass of this full pass
			}
			statuses, ok := p.deploymentStatuses(ctx, repo, d.GetID())
			if !ok {
				return newest, nil
			}
			ch, err := githubevent.FromAPIDeployment(full, d, statuses)
			if err != nil {
				p.log.Warn("deployment from the API not reconciled", "deployment", d.GetID(), "err", err)
				continue
			}
			if err := p.record(ctx, ch); err != nil {
				return newest, err
			}
			sc.processed(at)
		}
		if resp.NextPage == 0 || inWindow == 0 {
			return newest, nil
		}
		opts.Page = resp.NextPage
	}
	return newest, nil
}

// deploymentStatuses lists every status of deployment id; false when the
// pass ended first.
func (p *pass) deploymentStatuses(ctx context.Context, repo string, id int64) ([]*github.DeploymentStatus, bool) {
	var all []*github.DeploymentStatus
	opts := &github.ListOptions{PerPage: 100}
	for p.take(ctx) {
		sts, resp, err := p.gh.Repositories.ListDeploymentStatuses(ctx, p.src.Owner, repo, id, opts)
		if !p.done(resp, err) {
			return nil, false
		}
		all = append(all, sts...)
		if resp.NextPage == 0 {
			return all, true
		}
		opts.Page = resp.NextPage
	}
	return nil, false
}
