package fakegithub

// Deployments and their statuses.

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-github/v60/github"
)

type deploy struct {
	repo     string
	d        *github.Deployment
	statuses []*github.DeploymentStatus // in order of creation
}

// SetDeployment adds or replaces (by id) one of repository's deployments.
func (s *Server) SetDeployment(repository string, d *github.Deployment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.deploys {
		if x.repo == repository && x.d.GetID() == d.GetID() {
			x.d = d
			return
		}
	}
	s.deploys = append(s.deploys, &deploy{repo: repository, d: d})
}

// AddDeploymentStatus adds a status to deployment id of repository (which
// SetDeployment added).
func (s *Server) AddDeploymentStatus(repository string, id int64, st *github.DeploymentStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.deploys {
		if x.repo == repository && x.d.GetID() == id {
			x.statuses = append(x.statuses, st)
			// GitHub moves the deployment's updated_at with its statuses
			// (as its deployment_status payloads show).
			if at := st.GetUpdatedAt(); at.After(x.d.GetUpdatedAt().Time) {
				d := *x.d
				d.UpdatedAt = &at
				x.d = &d
			}
			return
		}
	}
	panic(fmt.Sprintf("fakegithub: no deployment %d in %s", id, repository))
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) {
	repository := r.PathValue("owner") + "/" + r.PathValue("repo")
	q := r.URL.Query()
	s.mu.Lock()
	var deps []*github.Deployment
	for _, x := range s.deploys {
		d := x.d
		if !strings.EqualFold(x.repo, repository) ||
			(q.Get("sha") != "" && d.GetSHA() != q.Get("sha")) || (q.Get("ref") != "" && d.GetRef() != q.Get("ref")) ||
			(q.Get("task") != "" && d.GetTask() != q.Get("task")) ||
			(q.Get("environment") != "" && d.GetEnvironment() != q.Get("environment")) {
			continue
		}
		deps = append(deps, d)
	}
	s.mu.Unlock()
	slices.SortFunc(deps, func(a, b *github.Deployment) int { return -cmp.Compare(a.GetID(), b.GetID()) })
	paginate(s, w, r, deps)
}

func (s *Server) listDeploymentStatuses(w http.ResponseWriter, r *http.Request) {
	repository := r.PathValue("owner") + "/" + r.PathValue("repo")
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	var sts []*github.DeploymentStatus
	found := false
	for _, x := range s.deploys {
		if strings.EqualFold(x.repo, repository) && x.d.GetID() == id {
			found = true
			sts = slices.Clone(x.statuses)
		}
	}
	s.mu.Unlock()
	if err != nil || !found {
		notFound(w)
		return
	}
	slices.Reverse(sts)
	paginate(s, w, r, sts)
}

// getDeployment answers one deployment (GET
// /repos/{owner}/{repo}/deployments/{deployment_id}).
func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request) {
	repository := r.PathValue("owner") + "/" + r.PathValue("repo")
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	var d *github.Deployment
	for _, x := range s.deploys {
		if strings.EqualFold(x.repo, repository) && x.d.GetID() == id {
			d = x.d
		}
	}
	s.mu.Unlock()
	if err != nil || d == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, d)
}
