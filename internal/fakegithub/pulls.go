package fakegithub

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// Pull requests and their reviews.

type pull struct {
	repo string
	pr   *github.PullRequest
}

// SetPullRequest adds or replaces repository's pull request pr.Number.
func (s *Server) SetPullRequest(repository string, pr *github.PullRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pulls {
		if p.repo == repository && p.pr.GetNumber() == pr.GetNumber() {
			p.pr = pr
			return
		}
	}
	s.pulls = append(s.pulls, &pull{repo: repository, pr: pr})
}

// AddReview adds (or replaces, by id) a review of repository's pull
// request number.
func (s *Server) AddReview(repository string, number int, rv *github.PullRequestReview) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := repository + "#" + strconv.Itoa(number)
	for i, r := range s.reviews[key] {
		if r.GetID() == rv.GetID() {
			s.reviews[key][i] = rv
			return
		}
	}
	s.reviews[key] = append(s.reviews[key], rv)
}

func (s *Server) listPulls(w http.ResponseWriter, r *http.Request) {
	repository := r.PathValue("owner") + "/" + r.PathValue("repo")
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	sortBy, dir := q.Get("sort"), q.Get("direction")
	if sortBy == "" {
		sortBy = "created"
	}
	if dir == "" {
		dir = "asc"
		if sortBy == "created" {
			dir = "desc"
		}
	}
	s.mu.Lock()
	var prs []*github.PullRequest
	for _, p := range s.pulls {
		if strings.EqualFold(p.repo, repository) && (state == "all" || p.pr.GetState() == state) {
			// Served with its base repository, as GitHub does: its id
			// and current name.
			pr := *p.pr
			base := github.PullRequestBranch{}
			if pr.Base != nil {
				base = *pr.Base
			}
			base.Repo = s.repository(s.repositoryID(p.repo), p.repo)
			pr.Base = &base
			prs = append(prs, &pr)
		}
	}
	s.mu.Unlock()
	key := func(pr *github.PullRequest) time.Time {
		if sortBy == "updated" {
			return pr.GetUpdatedAt().Time
		}
		return pr.GetCreatedAt().Time
	}
	slices.SortStableFunc(prs, func(a, b *github.PullRequest) int {
		c := key(a).Compare(key(b))
		if c == 0 {
			c = a.GetNumber() - b.GetNumber()
		}
		if dir == "desc" {
			return -c
		}
		return c
	})
	paginate(s, w, r, prs)
}

func (s *Server) listReviews(w http.ResponseWriter, r *http.Request) {
	repository := r.PathValue("owner") + "/" + r.PathValue("repo")
	number, err := strconv.Atoi(r.PathValue("number"))
	s.mu.Lock()
	found := false
	for _, p := range s.pulls {
		if strings.EqualFold(p.repo, repository) && p.pr.GetNumber() == number {
			found = true
		}
	}
	var rvs []*github.PullRequestReview
	for key, list := range s.reviews {
		if strings.EqualFold(key, repository+"#"+strconv.Itoa(number)) {
			rvs = append(rvs, list...)
		}
	}
	s.mu.Unlock()
	if err != nil || !found {
		notFound(w)
		return
	}
	paginate(s, w, r, rvs)
}

// getPull answers one pull request (GET
// /repos/{owner}/{repo}/pulls/{pull_number}).
func (s *Server) getPull(w http.ResponseWriter, r *http.Request) {
	repository := r.PathValue("owner") + "/" + r.PathValue("repo")
	number, err := strconv.Atoi(r.PathValue("number"))
	s.mu.Lock()
	var pr *github.PullRequest
	for _, p := range s.pulls {
		if strings.EqualFold(p.repo, repository) && p.pr.GetNumber() == number {
			pr = p.pr
		}
	}
	s.mu.Unlock()
	if err != nil || pr == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, pr)
}
