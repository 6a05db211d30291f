package fakegithub

// Repositories: their stable ids, renames and transfers, and the answers
// GitHub gives under a former name.
//
// Emulated from GitHub's REST docs ("Get a repository"; "Renaming a
// repository": the old URLs keep working, API requests are redirected) and
// what api.github.com answers: a request under a renamed (or transferred)
// repository's former owner/name is answered 301 Moved Permanently (307
// for other methods than GET and HEAD) with a Location under
// /repositories/{id}/..., the path GitHub serves every repository by id;
// go-github's http.Client follows it and decodes the repository's current
// state, new name included.

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
)

// RepositoryID is repository's GitHub id, given the first time the fake
// hears of it (ghwebhook.Repo's) and kept through renames and transfers.
func (s *Server) RepositoryID(repository string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repositoryID(repository)
}

func (s *Server) repositoryID(repository string) int64 {
	key := strings.ToLower(repository)
	if s.repoIDs == nil {
		s.repoIDs = map[string]int64{}
	}
	if id, ok := s.repoIDs[key]; ok {
		return id
	}
	// The id the deliveries internal/ghwebhook builds carry, so that a
	// delivery and the API agree on the repository's identity.
	id := ghwebhook.Repo(repository).ID()
	s.repoIDs[key] = id
	return id
}

// Rename renames (or, when the owner changes, transfers) repository from
// to to: its id, pull requests, reviews, branches, deployments and hooks go
// with it, and requests under from are redirected from now on. Deliveries
// for to carry the id too (ghwebhook.Repo.RenamedTo).
func (s *Server) Rename(from, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.repositoryID(from)
	ghwebhook.Repo(from).RenamedTo(to)
	delete(s.repoIDs, strings.ToLower(from))
	s.repoIDs[strings.ToLower(to)] = id
	if s.moved == nil {
		s.moved = map[string]int64{}
	}
	s.moved[strings.ToLower(from)] = id
	delete(s.moved, strings.ToLower(to))
	for _, p := range s.pulls {
		if strings.EqualFold(p.repo, from) {
			p.repo = to
		}
	}
	for repo, bs := range s.branches {
		if strings.EqualFold(repo, from) {
			delete(s.branches, repo)
			s.branches[to] = append(s.branches[to], bs...)
		}
	}
	for key, rvs := range s.reviews {
		repo, number, _ := strings.Cut(key, "#")
		if strings.EqualFold(repo, from) {
			delete(s.reviews, key)
			s.reviews[to+"#"+number] = rvs
		}
	}
	for _, d := range s.deploys {
		if strings.EqualFold(d.repo, from) {
			d.repo = to
		}
	}
	owner, name, _ := strings.Cut(to, "/")
	for _, h := range s.hooks {
		if h.repo != "" && strings.EqualFold(h.owner+"/"+h.repo, from) {
			h.owner, h.repo = owner, name
		}
	}
}

// nameOf is the current full name of repository id ("" when unknown).
func (s *Server) nameOf(id int64) string {
	for name, x := range s.repoIDs {
		if x == id {
			for _, p := range s.pulls { // the spelling the tests gave
				if strings.EqualFold(p.repo, name) {
					return p.repo
				}
			}
			for repo := range s.branches {
				if strings.EqualFold(repo, name) {
					return repo
				}
			}
			for _, d := range s.deploys {
				if strings.EqualFold(d.repo, name) {
					return d.repo
				}
			}
			return name
		}
	}
	return ""
}

// repositories serves /repositories/{id}/... as the repository's current
// /repos/{owner}/{repo}/..., and redirects requests under a former name
// there.
func (s *Server) repositories(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/repositories/"); ok {
			idText, tail, _ := strings.Cut(rest, "/")
			id, err := strconv.ParseInt(idText, 10, 64)
			s.mu.Lock()
			name := s.nameOf(id)
			s.mu.Unlock()
			if err != nil || name == "" {
				notFound(w)
				return
			}
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimSuffix("/repos/"+name+"/"+tail, "/")
			r2.URL.RawPath = ""
			next.ServeHTTP(w, r2)
			return
		}
		if rest, ok := strings.CutPrefix(r.URL.Path, "/repos/"); ok {
			parts := strings.SplitN(rest, "/", 3)
			if len(parts) >= 2 {
				s.mu.Lock()
				id, moved := s.moved[strings.ToLower(parts[0]+"/"+parts[1])]
				s.mu.Unlock()
				if moved {
					loc := s.srv.URL + "/repositories/" + strconv.FormatInt(id, 10)
					if len(parts) == 3 {
						loc += "/" + parts[2]
					}
					if r.URL.RawQuery != "" {
						loc += "?" + r.URL.RawQuery
					}
					code := http.StatusMovedPermanently
					if r.Method != http.MethodGet && r.Method != http.MethodHead {
						code = http.StatusTemporaryRedirect
					}
					w.Header().Set("Location", loc)
					writeJSON(w, code, map[string]string{"message": "Moved Permanently", "url": loc,
						"documentation_url": "https://docs.github.com/rest/guides/best-practices-for-using-the-rest-api#follow-redirects"})
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// getRepository answers GET /repos/{owner}/{repo}: its id and current name
// (go-github repos.go Get).
func (s *Server) getRepository(w http.ResponseWriter, r *http.Request) {
	repository := r.PathValue("owner") + "/" + r.PathValue("repo")
	s.mu.Lock()
	id := s.repositoryID(repository)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.repository(id, repository))
}

func (s *Server) repository(id int64, full string) *github.Repository {
	owner, name, _ := strings.Cut(full, "/")
	return &github.Repository{ID: github.Int64(id), Name: github.String(name), FullName: github.String(full),
		Owner:   &github.User{Login: github.String(owner)},
		HTMLURL: github.String("https://github.com/" + full)}
}
