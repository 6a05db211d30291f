package fakegithub

import (
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"
)

// An organisation's repositories.

// listOrgRepos lists the repositories the fake knows of under an owner
// (those with pull requests, branches or hooks).
func (s *Server) listOrgRepos(w http.ResponseWriter, r *http.Request) {
	owner := r.PathValue("owner")
	seen := map[string]bool{}
	s.mu.Lock()
	add := func(full string) {
		o, _, _ := strings.Cut(full, "/")
		if strings.EqualFold(o, owner) {
			seen[full] = true
		}
	}
	for _, p := range s.pulls {
		add(p.repo)
	}
	for repo := range s.branches {
		add(repo)
	}
	for _, h := range s.hooks {
		if h.repo != "" {
			add(h.owner + "/" + h.repo)
		}
	}
	var repos []*github.Repository
	for full := range seen {
		repos = append(repos, s.repository(s.repositoryID(full), full))
	}
	s.mu.Unlock()
	slices.SortFunc(repos, func(a, b *github.Repository) int { return strings.Compare(a.GetFullName(), b.GetFullName()) })
	paginate(s, w, r, repos)
}
