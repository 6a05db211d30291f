package reconcile

import (
	"context"
	"slices"
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
			return nil // the pass ended, or the list failed: retried with backoff
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

// backfillRepo is backfill for one repository: its pull request list, its
// branch list and its deployment list, each a unit of work, and each pull
// request (with its reviews) and deployment (with its statuses) read, a
// unit of its own. A unit that fails is remembered and retried (failures.go);
// a list that failed does not move its cursor, an item that failed is read
// again by itself (retryItems) when its backoff is over.
func (p *pass) backfillRepo(ctx context.Context, repo string, now time.Time, fullPass bool) error {
	suffix := ""
	if p.src.Repo == "" {
		suffix = "." + repo
	}
	full := p.src.Owner + "/" + repo
	pullsU, branchesU, depsU := listUnit(ResourcePulls, full), listUnit(ResourceBranches, full), listUnit(ResourceDeployments, full)
	// A list whose full read failed is read whole when retried.
	pullsFull := fullPass || p.failures[pullsU].Full
	depsFull := fullPass || p.failures[depsU].Full
	p.fullRead[pullsU], p.fullRead[depsU] = pullsFull, depsFull
	key, depKey := KeyPullsSince+suffix, KeyDeploymentsSince+suffix
	since, depSince := p.cur.time(key), p.cur.time(depKey)
	if pullsFull || since.IsZero() || since.Before(now.Add(-p.r.opts.Window)) {
		since = now.Add(-p.r.opts.Window)
	}
	if depsFull || depSince.IsZero() || depSince.Before(now.Add(-p.r.opts.Window)) {
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
	// The repository's id and current name, first: the pull requests
	// read over GraphQL do not say them, and GraphQL asks by the current
	// name (an organisation's list told them already; else one request,
	// which follows GitHub's 301 for a former name; identity.go).
	if !p.identify(ctx, full) {
		return nil
	}
	var newest, newestDep time.Time
	if p.due(pullsU) {
		var (
			listed bool
			err    error
		)
		newest, listed, err = p.pullRequests(ctx, pullsU, repo, since, pullScan, KeyPullsETag+suffix) // graphql.go
		if err != nil {
			return err
		}
		if !listed {
			newest = time.Time{} // the list failed: its cursor stays
		}
		if err := p.saveScan(ctx, pullScan, p.result != "" || !listed, since); err != nil || p.result != "" {
			return err
		}
	}
	if err := p.retryItems(ctx, "pull", full); err != nil || p.result != "" {
		return err
	}
	if p.due(branchesU) {
		if err := p.branches(ctx, branchesU, repo, fullPass || p.failures[branchesU].Full); err != nil || p.result != "" {
			return err
		}
	}
	var err error
	if p.due(depsU) {
		var listed bool
		newestDep, listed, err = p.deployments(ctx, depsU, repo, depSince, depScan)
		if !listed {
			newestDep = time.Time{} // the list failed: its cursor stays
		}
		if err == nil {
			err = p.saveScan(ctx, depScan, p.result != "" || !listed, depSince)
		}
		if err != nil {
			return err
		}
	}
	if p.result == "" {
		err = p.retryItems(ctx, "deployment", full)
	}
	if err == nil && (p.reconciled != reconciled || !newestDep.IsZero()) {
		// Also after a partial list: what was written is attributed.
		// And whenever deployments are in range, though nothing moved:
		// a pass may have ended between a write and its attribution.
		err = p.r.opts.Recorder.Ship(ctx, p.currentName(full))
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

// retryItems reads again, one by one, the pull requests (kind "pull") or
// deployments ("deployment") of repository that failed in an earlier pass
// and whose backoff is over, unless this pass already read them in its
// list: the list's cursor has moved past them.
func (p *pass) retryItems(ctx context.Context, kind, repository string) error {
	var due []unit
	for u := range p.failures {
		k, r, _, ok := u.item()
		if ok && k == kind && r == repository && !p.handled[u] && p.due(u) {
			due = append(due, u)
		}
	}
	slices.Sort(due)
	for _, u := range due {
		_, _, n, _ := u.item()
		var err error
		if kind == "pull" {
			err = p.retryPull(ctx, u, repository, int(n))
		} else {
			err = p.retryDeployment(ctx, u, repository, n)
		}
		if err != nil || p.result != "" {
			return err
		}
	}
	return nil
}

// retryPull reads pull request number (GET
// /repos/{owner}/{repo}/pulls/{pull_number}) and its reviews, and records
// them.
func (p *pass) retryPull(ctx context.Context, u unit, repository string, number int) error {
	p.handled[u] = true
	_, repo, _ := strings.Cut(repository, "/")
	if !p.take(ctx) {
		return nil
	}
	pr, resp, err := p.gh.PullRequests.Get(ctx, p.src.Owner, repo, number)
	if !p.done(u, ResourcePulls, resp, err) {
		return nil
	}
	return p.pull(ctx, u, repo, pr)
}

// retryDeployment reads deployment id (GET
// /repos/{owner}/{repo}/deployments/{deployment_id}) and its statuses, and
// records them.
func (p *pass) retryDeployment(ctx context.Context, u unit, repository string, id int64) error {
	p.handled[u] = true
	_, repo, _ := strings.Cut(repository, "/")
	if !p.take(ctx) {
		return nil
	}
	d, resp, err := p.gh.Repositories.GetDeployment(ctx, p.src.Owner, repo, id)
	if !p.done(u, ResourceDeployments, resp, err) {
		return nil
	}
	return p.deployment(ctx, u, repo, d)
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

// orgRepos lists the organisation's repositories (one unit of work); false
// when the pass ended, the list failed or still backs off.
func (p *pass) orgRepos(ctx context.Context) ([]string, bool) {
	u := listUnit(ResourceRepositories, p.src.Owner)
	if !p.due(u) {
		return nil, false
	}
	var names []string
	opts := &github.RepositoryListByOrgOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for p.take(ctx) {
		repos, resp, err := p.gh.Repositories.ListByOrg(ctx, p.src.Owner, opts)
		if !p.done(u, ResourceRepositories, resp, err) {
			return nil, false
		}
		for _, r := range repos {
			names = append(names, r.GetName())
			p.learn(p.src.Owner+"/"+r.GetName(), r)
		}
		if resp.NextPage == 0 {
			p.succeededUnit(u)
			return names, true
		}
		opts.Page = resp.NextPage
	}
	return nil, false
}

func (p *pass) record(ctx context.Context, ch githubevent.Change) error {
	out, err := p.r.opts.Recorder.RecordReconciled(ctx, p.identified(ch))
	if err != nil {
		return err
	}
	if out == recorder.Reconciled {
		p.reconciled++
	}
	return nil
}

// pulls lists the repository's pull requests, newest updated first
// (state=all, sort=updated, direction=desc), down to since, and reads each
// (pull). It returns the newest updated_at seen, and whether the list was
// read without failing (listed; false too when the pass ended).
func (p *pass) pulls(ctx context.Context, u unit, repo string, since time.Time, sc *scan) (newest time.Time, listed bool, err error) {
	full := p.src.Owner + "/" + repo
	opts := &github.PullRequestListOptions{State: "all", Sort: "updated", Direction: "desc",
		ListOptions: github.ListOptions{PerPage: 100}}
	for p.take(ctx) {
		prs, resp, err := p.gh.PullRequests.List(ctx, p.src.Owner, repo, opts)
		if !p.done(u, ResourcePulls, resp, err) {
			return newest, false, nil
		}
		for _, pr := range prs { // the base repository: its id and current name
			p.learn(full, pr.GetBase().GetRepo())
		}
		for _, pr := range prs {
			at := pr.GetUpdatedAt().Time
			if at.Before(since) {
				p.succeededUnit(u)
				return newest, true, nil
			}
			if at.After(newest) {
				newest = at
			}
			if sc.skip(at) {
				continue // read by an earlier pass of this full pass
			}
			// A review moves the pull request's updated_at, so the pull
			// requests read here are those whose reviews may be new.
			if pu := pullUnit(full, pr.GetNumber()); p.due(pu) {
				p.handled[pu] = true
				if err := p.pull(ctx, pu, repo, pr); err != nil {
					return newest, false, err
				}
				if p.result != "" {
					return newest, false, nil
				}
			}
			// Read, failed (remembered) or backing off: done for this scan.
			sc.processed(at)
		}
		if resp.NextPage == 0 {
			p.succeededUnit(u)
			return newest, true, nil
		}
		opts.Page = resp.NextPage
	}
	return newest, false, nil
}

// pull reads one pull request's reviews and records both (unit u). A
// failure to read the reviews costs this pull request only.
func (p *pass) pull(ctx context.Context, u unit, repo string, pr *github.PullRequest) error {
	reviews, ok := p.reviews(ctx, u, repo, pr.GetNumber())
	if !ok {
		return nil
	}
	ch, err := githubevent.FromAPIPullRequestWithReviews(p.src.Owner+"/"+repo, pr, reviews)
	if err != nil {
		p.log.Warn("pull request from the API not reconciled", "number", pr.GetNumber(), "err", err)
		return nil
	}
	return p.record(ctx, ch)
}

// branches creates the Branch objects missing for the repository's
// branches. On a full pass that reads the whole list, it also marks deleted
// the recorded branches the list lacks (their delete delivery was lost for
// good), ordered at the time the list was read.
func (p *pass) branches(ctx context.Context, u unit, repo string, fullPass bool) error {
	full := p.currentName(p.src.Owner + "/" + repo)
	p.fullRead[u] = fullPass
	listedAt := p.r.opts.Now()
	listed := map[string]bool{}
	opts := &github.BranchListOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for p.take(ctx) {
		bs, resp, err := p.gh.Repositories.ListBranches(ctx, p.src.Owner, repo, opts)
		if !p.done(u, ResourceBranches, resp, err) {
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
			p.succeededUnit(u)
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
	recorded, err := p.r.opts.Recorder.RecordedBranches(ctx, repository, p.repos[strings.ToLower(repository)].id)
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
// page of 100. False when the pass ended first or a page failed (unit u's
// failure).
func (p *pass) reviews(ctx context.Context, u unit, repo string, number int) ([]*github.PullRequestReview, bool) {
	var all []*github.PullRequestReview
	opts := &github.ListOptions{PerPage: 100}
	for p.take(ctx) {
		rvs, resp, err := p.gh.PullRequests.ListReviews(ctx, p.src.Owner, repo, number, opts)
		if !p.done(u, ResourceReviews, resp, err) {
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
// created before since, and reads each (deployment). It returns the newest
// created_at seen, and whether the list was read without failing (listed;
// false too when the pass ended). A page whose deployments were all
// created before since ends the list.
func (p *pass) deployments(ctx context.Context, u unit, repo string, since time.Time, sc *scan) (newest time.Time, listed bool, err error) {
	full := p.src.Owner + "/" + repo
	opts := &github.DeploymentsListOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for p.take(ctx) {
		deps, resp, err := p.gh.Repositories.ListDeployments(ctx, p.src.Owner, repo, opts)
		if !p.done(u, ResourceDeployments, resp, err) {
			return newest, false, nil
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
			if du := deploymentUnit(full, d.GetID()); p.due(du) {
				p.handled[du] = true
				if err := p.deployment(ctx, du, repo, d); err != nil {
					return newest, false, err
				}
				if p.result != "" {
					return newest, false, nil
				}
			}
			sc.processed(at)
		}
		if resp.NextPage == 0 || inWindow == 0 {
			p.succeededUnit(u)
			return newest, true, nil
		}
		opts.Page = resp.NextPage
	}
	return newest, false, nil
}

// deployment reads one deployment's statuses ("List deployment statuses",
// ListDeploymentStatuses) and records both (unit u). A failure to read the
// statuses costs this deployment only.
func (p *pass) deployment(ctx context.Context, u unit, repo string, d *github.Deployment) error {
	statuses, ok := p.deploymentStatuses(ctx, u, repo, d.GetID())
	if !ok {
		return nil
	}
	ch, err := githubevent.FromAPIDeployment(p.src.Owner+"/"+repo, d, statuses)
	if err != nil {
		p.log.Warn("deployment from the API not reconciled", "deployment", d.GetID(), "err", err)
		return nil
	}
	return p.record(ctx, ch)
}

// deploymentStatuses lists every status of deployment id; false when the
// pass ended first or a page failed (unit u's failure).
func (p *pass) deploymentStatuses(ctx context.Context, u unit, repo string, id int64) ([]*github.DeploymentStatus, bool) {
	var all []*github.DeploymentStatus
	opts := &github.ListOptions{PerPage: 100}
	for p.take(ctx) {
		sts, resp, err := p.gh.Repositories.ListDeploymentStatuses(ctx, p.src.Owner, repo, id, opts)
		if !p.done(u, ResourceDeploymentStatuses, resp, err) {
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
