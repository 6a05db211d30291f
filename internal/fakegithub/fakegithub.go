// Package fakegithub is a GitHub REST API on a loopback port for tests and
// `make run`: repository and organisation webhooks with their deliveries
// (request headers and payload, status code, attempts grouped by GUID),
// redelivery, pull requests, branches and rate limits. It serves go-github's
// own types, so the client under test decodes exactly what it decodes from
// GitHub.
//
// Emulated from what was read, not guessed:
//   - go-github v60 repos_hooks_deliveries.go and orgs_hooks_deliveries.go:
//     GET .../hooks/{hook_id}/deliveries (ListCursorOptions: per_page,
//     cursor), GET .../deliveries/{delivery_id}, POST
//     .../deliveries/{delivery_id}/attempts; github.go populatePageValues
//     reads the next cursor from the Link header's rel="next" URL.
//   - GitHub's REST docs "List deliveries for a repository webhook" (per_page
//     default 30, max 100; cursor from the Link header), the hook-delivery
//     and hook-delivery-item schemas (a list item has no request/response;
//     status is "OK" for a success, otherwise a description such as
//     "Invalid HTTP Response: 503" or "failed to connect" with status_code
//     0; guid is shared by every attempt of one event), "Redeliver a
//     delivery" (202 Accepted; the redelivery is a new delivery with the
//     same GUID and redelivery: true), "Handling failed webhook deliveries"
//     (GitHub never redelivers by itself) and "Redelivering webhooks"
//     (deliveries are kept 3 days on github.com: Options.Retention).
//   - go-github pulls.go PullRequestListOptions (state open|closed|all,
//     default open; sort created|updated, direction default desc for
//     created, else asc; page-number pagination) and repos.go ListBranches.
//   - Reviews and deployments: GitHub's REST docs "List reviews for a pull
//     request" (GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews;
//     "returns in chronological order"; per_page/page), "List deployments"
//     (GET /repos/{owner}/{repo}/deployments; sha, ref, task, environment
//     filters; per_page/page; served newest first, as github.com answers —
//     the docs name no order) and "List deployment statuses" (GET
//     .../deployments/{deployment_id}/statuses; per_page/page; newest
//     first; 404 for an unknown deployment); go-github pulls_reviews.go
//     ListReviews and repos_deployments.go ListDeployments,
//     ListDeploymentStatuses, whose types are served.
//   - GitHub Apps: "Generating an installation access token for a GitHub
//     App" (POST /app/installations/{installation_id}/access_tokens with
//     "Authorization: Bearer <JWT>", the JWT RS256-signed with the App's
//     private key, iss = the App's id, exp at most 10 minutes ahead; 201
//     with token and expires_at), as bradleyfalzon/ghinstallation/v2's
//     transport.go and appsTransport.go call it; the installation token is
//     then sent as "Authorization: token <t>".
//   - go-github github.go rate limits: X-RateLimit-Limit/-Remaining/-Reset
//     on every answer; 403 with X-RateLimit-Remaining: 0 is a
//     RateLimitError; 403 whose documentation_url ends in
//     "secondary-rate-limits" is an AbuseRateLimitError, with Retry-After.
package fakegithub

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
)

// Options configure a Server.
type Options struct {
	// Token, when set, is the only credential accepted (Authorization:
	// Bearer or token); others get 401.
	Token string
	// RateLimit is the primary limit per reset window; default 5000.
	RateLimit int
	// Retention drops deliveries older than this from the API, as GitHub
	// does; default 72h (github.com keeps 3 days).
	Retention time.Duration
	// Client sends deliveries to the hooks; default a 10 s client (GitHub's
	// own delivery timeout on github.com).
	Client *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

type hook struct {
	id     int64
	owner  string // the repository's owner, or the organisation
	repo   string // "" for an organisation hook
	url    string
	secret []byte
}

type delivery struct {
	hookID int64
	d      github.HookDelivery
}

type pull struct {
	repo string
	pr   *github.PullRequest
}

type deploy struct {
	repo     string
	d        *github.Deployment
	statuses []*github.DeploymentStatus // in order of creation
}

// Server is one fake GitHub.
type Server struct {
	opts Options
	srv  *httptest.Server

	mu         sync.Mutex
	nextID     int64
	hooks      map[int64]*hook
	deliveries []*delivery // ascending id
	pulls      []*pull
	branches   map[string][]*github.Branch            // repository -> branches
	reviews    map[string][]*github.PullRequestReview // "repository#number" -> reviews, in order of submission
	deploys    []*deploy
	down       bool
	remaining  int
	reset      time.Time
	secondary  time.Duration // answer the next request with a secondary limit
	redelivers map[string]int

	requests atomic.Int64
	inflight sync.WaitGroup

	apps   map[int64]app   // installation id -> its App
	issued map[string]bool // installation tokens handed out
}

type app struct {
	id  int64
	key *rsa.PublicKey
}

// New starts a Server; Close stops it.
func New(opts Options) *Server {
	if opts.RateLimit == 0 {
		opts.RateLimit = 5000
	}
	if opts.Retention == 0 {
		opts.Retention = 72 * time.Hour
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, nextID: 1000, hooks: map[int64]*hook{}, branches: map[string][]*github.Branch{},
		reviews: map[string][]*github.PullRequestReview{}, remaining: opts.RateLimit, redelivers: map[string]int{}, apps: map[int64]app{}, issued: map[string]bool{}}
	s.reset = opts.Now().Add(time.Hour)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/{owner}/{repo}/hooks/{hook}/deliveries", s.listDeliveries)
	mux.HandleFunc("GET /repos/{owner}/{repo}/hooks/{hook}/deliveries/{id}", s.getDelivery)
	mux.HandleFunc("POST /repos/{owner}/{repo}/hooks/{hook}/deliveries/{id}/attempts", s.redeliver)
	mux.HandleFunc("GET /orgs/{owner}/hooks/{hook}/deliveries", s.listDeliveries)
	mux.HandleFunc("GET /orgs/{owner}/hooks/{hook}/deliveries/{id}", s.getDelivery)
	mux.HandleFunc("POST /orgs/{owner}/hooks/{hook}/deliveries/{id}/attempts", s.redeliver)
	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls", s.listPulls)
	mux.HandleFunc("GET /repos/{owner}/{repo}/branches", s.listBranches)
	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}/reviews", s.listReviews)
	mux.HandleFunc("GET /repos/{owner}/{repo}/deployments", s.listDeployments)
	mux.HandleFunc("GET /repos/{owner}/{repo}/deployments/{id}/statuses", s.listDeploymentStatuses)
	mux.HandleFunc("GET /orgs/{owner}/repos", s.listOrgRepos)
	mux.HandleFunc("POST /app/installations/{installation}/access_tokens", s.installationToken)
	s.srv = httptest.NewServer(s.limit(mux))
	return s
}

// URL is the API's base URL, with the trailing slash go-github requires
// (a GitHubSource's spec.githubAPIURL).
func (s *Server) URL() string { return s.srv.URL + "/" }

// Close waits for redeliveries in flight and stops the server.
func (s *Server) Close() {
	s.inflight.Wait()
	s.srv.Close()
}

// Wait blocks until every redelivery requested so far has been sent.
func (s *Server) Wait() { s.inflight.Wait() }

// Requests is how many API requests were answered (deliveries aside).
func (s *Server) Requests() int64 { return s.requests.Load() }

// SetDown makes every API request fail with 503 (deliveries still go out:
// GitHub's webhooks and its REST API fail independently).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// SetRateLimit sets the primary budget left until reset.
func (s *Server) SetRateLimit(remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remaining, s.reset = remaining, reset
}

// SecondaryLimitOnce answers the next API request with a secondary rate
// limit and Retry-After.
func (s *Server) SecondaryLimitOnce(retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secondary = retryAfter
}

// Remaining is the primary budget left.
func (s *Server) Remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remaining
}

// AddRepoHook registers a repository webhook (what a GitHubSource's
// controller does with CreateHook) and returns its id.
func (s *Server) AddRepoHook(repository, target string, secret []byte) int64 {
	owner, repo, _ := strings.Cut(repository, "/")
	return s.addHook(&hook{owner: owner, repo: repo, url: target, secret: secret})
}

// AddOrgHook registers an organisation webhook.
func (s *Server) AddOrgHook(org, target string, secret []byte) int64 {
	return s.addHook(&hook{owner: org, url: target, secret: secret})
}

// SetHookURL points hook id at target (a user editing the webhook's
// payload URL, e.g. after the receiver moved).
func (s *Server) SetHookURL(id int64, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hooks[id]; h != nil {
		h.url = target
	}
}

func (s *Server) addHook(h *hook) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	h.id = s.nextID
	s.hooks[h.id] = h
	return h.id
}

// Deliver sends d, as GitHub sends an event for repository, to every hook
// of the repository and of its owner, signed with each hook's secret, and
// keeps each attempt. It returns the first hook's status code (0 when the
// hook could not be reached).
func (s *Server) Deliver(ctx context.Context, repository string, d ghwebhook.Delivery) int {
	owner, repo, _ := strings.Cut(repository, "/")
	s.mu.Lock()
	var targets []*hook
	for _, h := range s.hooks {
		if strings.EqualFold(h.owner, owner) && (h.repo == "" || strings.EqualFold(h.repo, repo)) {
			targets = append(targets, h)
		}
	}
	s.mu.Unlock()
	sort.Slice(targets, func(i, j int) bool { return targets[i].id < targets[j].id })
	first := -1
	for _, h := range targets {
		code := s.send(ctx, h, d, false)
		if first < 0 {
			first = code
		}
	}
	return max(first, 0)
}

// send POSTs one attempt and records it.
func (s *Server) send(ctx context.Context, h *hook, d ghwebhook.Delivery, redelivery bool) int {
	start := s.opts.Now()
	req, err := ghwebhook.Request(ctx, h.url, h.secret, d)
	code, status := 0, "failed to connect"
	var respBody []byte
	respHeaders := map[string]string{}
	if err == nil {
		var resp *http.Response
		resp, err = s.opts.Client.Do(req)
		if err == nil {
			respBody, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			code = resp.StatusCode
			status = "OK"
			if code < 200 || code > 299 {
				status = fmt.Sprintf("Invalid HTTP Response: %d", code)
			}
			for k := range resp.Header {
				respHeaders[k] = resp.Header.Get(k)
			}
		}
	}
	reqHeaders := map[string]string{}
	if req != nil {
		for k := range req.Header {
			reqHeaders[k] = req.Header.Get(k)
		}
	}
	payload := json.RawMessage(bytes.Clone(d.Body))
	rb := json.RawMessage(strconv.Quote(string(respBody)))
	var doc struct {
		Action *string `json:"action"`
		Repo   struct {
			ID *int64 `json:"id"`
		} `json:"repository"`
	}
	_ = json.Unmarshal(d.Body, &doc)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.deliveries = append(s.deliveries, &delivery{hookID: h.id, d: github.HookDelivery{
		ID: github.Int64(s.nextID), GUID: github.String(d.ID), DeliveredAt: &github.Timestamp{Time: start.UTC()},
		Redelivery: github.Bool(redelivery), Duration: ptr(s.opts.Now().Sub(start).Seconds()),
		Status: github.String(status), StatusCode: github.Int(code), Event: github.String(d.Event),
		Action: doc.Action, RepositoryID: doc.Repo.ID,
		Request:  &github.HookRequest{Headers: reqHeaders, RawPayload: &payload},
		Response: &github.HookResponse{Headers: respHeaders, RawPayload: &rb},
	}})
	return code
}

// Attempts returns every attempt kept for guid, oldest first.
func (s *Server) Attempts(guid string) []github.HookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []github.HookDelivery
	for _, d := range s.deliveries {
		if d.d.GetGUID() == guid {
			out = append(out, d.d)
		}
	}
	return out
}

// Redeliveries is how many redeliveries of guid were requested.
func (s *Server) Redeliveries(guid string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.redelivers[guid]
}

// TotalRedeliveries is how many redeliveries were requested in all.
func (s *Server) TotalRedeliveries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.redelivers {
		n += c
	}
	return n
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

// limit is the API's front: authentication, outage, rate limits.
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		down, secondary := s.down, s.secondary
		s.secondary = 0
		if s.opts.Now().After(s.reset) {
			s.remaining, s.reset = s.opts.RateLimit, s.opts.Now().Add(time.Hour)
		}
		exhausted := s.remaining <= 0
		if !down && !exhausted && secondary == 0 {
			s.remaining--
		}
		remaining, reset := s.remaining, s.reset
		s.mu.Unlock()
		if down {
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return
		}
		if s.opts.Token != "" && !strings.HasPrefix(r.URL.Path, "/app/") {
			auth := r.Header.Get("Authorization")
			_, tok, _ := strings.Cut(auth, " ")
			s.mu.Lock()
			issued := s.issued[tok]
			s.mu.Unlock()
			if auth != "Bearer "+s.opts.Token && auth != "token "+s.opts.Token && !issued {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials",
					"documentation_url": "https://docs.github.com/rest"})
				return
			}
		}
		w.Header().Set("X-RateLimit-Limit", strconv.Itoa(s.opts.RateLimit))
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		w.Header().Set("X-RateLimit-Resource", "core")
		switch {
		case secondary > 0:
			w.Header().Set("Retry-After", strconv.Itoa(int(secondary.Seconds())))
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "You have exceeded a secondary rate limit.",
				"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"})
		case exhausted:
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "API rate limit exceeded.",
				"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"})
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found",
		"documentation_url": "https://docs.github.com/rest"})
}

// hookOf finds the hook the request's path names, checking that it belongs
// to the repository or organisation the path names.
func (s *Server) hookOf(r *http.Request) *hook {
	id, err := strconv.ParseInt(r.PathValue("hook"), 10, 64)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hooks[id]
	if h == nil || !strings.EqualFold(h.owner, r.PathValue("owner")) || !strings.EqualFold(h.repo, r.PathValue("repo")) {
		return nil
	}
	return h
}

func perPage(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("per_page"))
	if err != nil || n <= 0 {
		return 30
	}
	return min(n, 100)
}

// listDeliveries answers newest first, per_page at a time; the next page's
// cursor (here: the id to continue below) is in the Link header.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	h := s.hookOf(r)
	if h == nil {
		notFound(w)
		return
	}
	n := perPage(r)
	below := int64(1 << 62)
	if c := r.URL.Query().Get("cursor"); c != "" {
		v, err := strconv.ParseInt(strings.TrimPrefix(c, "v1_"), 10, 64)
		if err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Invalid cursor"})
			return
		}
		below = v
	}
	cutoff := s.opts.Now().Add(-s.opts.Retention)
	s.mu.Lock()
	var page []github.HookDelivery
	more := false
	for i := len(s.deliveries) - 1; i >= 0; i-- {
		d := s.deliveries[i]
		if d.hookID != h.id || d.d.GetID() >= below || d.d.GetDeliveredAt().Before(cutoff) {
			continue
		}
		if len(page) == n {
			more = true
			break
		}
		item := d.d
		item.Request, item.Response = nil, nil // a list item has neither
		page = append(page, item)
	}
	s.mu.Unlock()
	if more {
		next := *r.URL
		q := next.Query()
		q.Set("cursor", "v1_"+strconv.FormatInt(page[len(page)-1].GetID(), 10))
		q.Set("per_page", strconv.Itoa(n))
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, s.srv.URL, next.RequestURI()))
	}
	if page == nil {
		page = []github.HookDelivery{}
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) findDelivery(r *http.Request) (*hook, *delivery) {
	h := s.hookOf(r)
	if h == nil {
		return nil, nil
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return h, nil
	}
	cutoff := s.opts.Now().Add(-s.opts.Retention)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.deliveries {
		if d.hookID == h.id && d.d.GetID() == id && !d.d.GetDeliveredAt().Before(cutoff) {
			return h, d
		}
	}
	return h, nil
}

func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) {
	_, d := s.findDelivery(r)
	if d == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, d.d)
}

// redeliver answers 202 and sends the stored request again, later, as a
// new delivery with the same GUID and event, signed with the hook's
// current secret.
func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) {
	h, d := s.findDelivery(r)
	if d == nil {
		notFound(w)
		return
	}
	s.mu.Lock()
	s.redelivers[d.d.GetGUID()]++
	s.mu.Unlock()
	body := []byte(*d.d.Request.RawPayload)
	again := ghwebhook.Delivery{Event: d.d.GetEvent(), ID: d.d.GetGUID(), Body: body}
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.send(ctx, h, again, true)
	}()
	writeJSON(w, http.StatusAccepted, map[string]any{})
}

func (s *Server) pageOf(r *http.Request) int {
	p, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || p < 1 {
		return 1
	}
	return p
}

// paginate answers items[page] with a page-number Link header.
func paginate[T any](s *Server, w http.ResponseWriter, r *http.Request, items []T) {
	n, p := perPage(r), s.pageOf(r)
	from := min((p-1)*n, len(items))
	to := min(from+n, len(items))
	if to < len(items) {
		next := *r.URL
		q := next.Query()
		q.Set("page", strconv.Itoa(p+1))
		q.Set("per_page", strconv.Itoa(n))
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, s.srv.URL, next.RequestURI()))
	}
	out := items[from:to]
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, out)
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
			prs = append(prs, p.pr)
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
	s.mu.Unlock()
	var repos []*github.Repository
	for full := range seen {
		o, n, _ := strings.Cut(full, "/")
		repos = append(repos, &github.Repository{Name: github.String(n), FullName: github.String(full),
			Owner: &github.User{Login: github.String(o)}})
	}
	slices.SortFunc(repos, func(a, b *github.Repository) int { return strings.Compare(a.GetFullName(), b.GetFullName()) })
	paginate(s, w, r, repos)
}

func ptr[T any](v T) *T { return &v }

// AddAppInstallation registers a GitHub App (its id and public key) and one
// installation of it.
func (s *Server) AddAppInstallation(appID, installationID int64, key *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[installationID] = app{id: appID, key: key}
}

// InstallationTokens is how many installation tokens were issued.
func (s *Server) InstallationTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.issued)
}

// installationToken checks the App's JWT and issues an installation token.
func (s *Server) installationToken(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("installation"), 10, 64)
	s.mu.Lock()
	a, ok := s.apps[id]
	s.mu.Unlock()
	if !ok {
		notFound(w)
		return
	}
	jwt, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || verifyJWT(jwt, a, s.opts.Now()) != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "A JSON web token could not be decoded",
			"documentation_url": "https://docs.github.com/rest"})
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "ghs_" + hex.EncodeToString(b)
	s.mu.Lock()
	s.issued[tok] = true
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "expires_at": s.opts.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"permissions": map[string]string{"repository_hooks": "write", "pull_requests": "read", "contents": "read"}})
}

// verifyJWT checks an RS256 JWT's signature with the App's key, that it
// was issued by the App, and that it has not expired.
func verifyJWT(token string, a app, now time.Time) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss string `json:"iss"`
		Exp int64  `json:"exp"`
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3, json.Unmarshal(hb, &header), json.Unmarshal(cb, &claims)); err != nil {
		return err
	}
	if header.Alg != "RS256" {
		return fmt.Errorf("alg %s", header.Alg)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(a.key, crypto.SHA256, sum[:], sig); err != nil {
		return err
	}
	if claims.Iss != strconv.FormatInt(a.id, 10) || time.Unix(claims.Exp, 0).Before(now) || time.Unix(claims.Exp, 0).After(now.Add(11*time.Minute)) {
		return fmt.Errorf("claims %+v", claims)
	}
	return nil
}
