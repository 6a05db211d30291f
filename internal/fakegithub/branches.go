package fakegithub

import (
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"
)

// Branches.

// DeleteBranch removes repository's branch name (GitHub sends a delete
// delivery for it; tests that lose that delivery call this alone).
func (s *Server) DeleteBranch(repository, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bs := s.branches[repository]
	for i, b := range bs {
		if b.GetName() == name {
			s.branches[repository] = append(bs[:i:i], bs[i+1:]...)
			return
		}
	}
}

// SetBranch adds or moves repository's branch name to sha.
func (s *Server) SetBranch(repository, name, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.branches[repository] {
		if b.GetName() == name {
			b.Commit.SHA = github.String(sha)
			return
		}
	}
	s.branches[repository] = append(s.branches[repository], &github.Branch{
		Name: github.String(name), Protected: github.Bool(false),
		Commit: &github.RepositoryCommit{SHA: github.String(sha),
			URL: github.String(s.srv.URL + "/repos/" + repository + "/commits/" + sha)},
	})
}

func (s *Server) listBranches(w http.ResponseWriter, r *http.Request) {
	repository := r.PathValue("owner") + "/" + r.PathValue("repo")
	s.mu.Lock()
	var bs []*github.Branch
	for repo, list := range s.branches {
		if strings.EqualFold(repo, repository) {
			bs = append(bs, list...)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(bs, func(a, b *github.Branch) int { return strings.Compare(a.GetName(), b.GetName()) })
	paginate(s, w, r, bs)
}
