package reconcile

import (
	"context"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/liatrio/gitpulse/pkg/githubevent"
)

// A repository's identity is its GitHub id, which renames and transfers
// keep (pkg/recorder). A pass learns each repository's id and current name
// as it backfills it — from the organisation's repository list or the pull
// requests' base repository, else with one GET /repos/{owner}/{repo}
// before its branches (GitHub answers a former name with a 301 to the
// repository, which go-github follows) — and every change it records
// carries them: objects of a renamed repository follow the new name as the
// pass writes them, and none is created a second time under it.

// repositoryRef is a repository as GitHub named it when the pass read it.
type repositoryRef struct {
	id       int64
	fullName string
	readAt   time.Time
}

// learn keeps what GitHub said of a repository, under the name the source
// asked for and under its current name.
func (p *pass) learn(asked string, repo *github.Repository) {
	if repo.GetID() <= 0 || repo.GetFullName() == "" {
		return
	}
	if p.repos == nil {
		p.repos = map[string]repositoryRef{}
	}
	ref := repositoryRef{id: repo.GetID(), fullName: repo.GetFullName(), readAt: p.r.opts.Now()}
	p.repos[strings.ToLower(asked)] = ref
	p.repos[strings.ToLower(ref.fullName)] = ref
}

// identify reads repository's id and current name unless the pass knows
// them (one request). False when the pass ended; a repository GitHub does
// not answer for is backfilled by name, as before, and its read is retried
// as a unit of work of its own.
func (p *pass) identify(ctx context.Context, repository string) bool {
	if _, ok := p.repos[strings.ToLower(repository)]; ok {
		return true
	}
	owner, name, _ := strings.Cut(repository, "/")
	if !p.take(ctx) {
		return false
	}
	u := listUnit(ResourceRepositories, repository)
	repo, resp, err := p.gh.Repositories.Get(ctx, owner, name)
	if !p.done(u, ResourceRepositories, resp, err) {
		// A unit failure of its own (failures.go); the repository is
		// backfilled by name unless the pass ended.
		return p.result == ""
	}
	p.succeededUnit(u)
	p.learn(repository, repo)
	return true
}

// currentName is repository's name as GitHub answered it in this pass.
func (p *pass) currentName(repository string) string {
	if ref, ok := p.repos[strings.ToLower(repository)]; ok {
		return ref.fullName
	}
	return repository
}

// identified is ch with its repository's id and current name, and when the
// pass read that name.
func (p *pass) identified(ch githubevent.Change) githubevent.Change {
	if ref, ok := p.repos[strings.ToLower(ch.Repository)]; ok {
		ch.Repository, ch.RepositoryID, ch.RepositoryNamedAt = ref.fullName, ref.id, ref.readAt
	}
	return ch
}
