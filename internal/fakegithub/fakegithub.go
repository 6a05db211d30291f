// Package fakegithub is a GitHub REST API on a loopback port for tests and
// `make run`: repository and organisation webhooks with their deliveries
// (request headers and payload, status code, attempts grouped by GUID),
// redelivery, repositories (stable ids, renames answered with 301), pull
// requests, branches and rate limits. It serves go-github's
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
//   - One pull request and one deployment: "Get a pull request" (GET
//     /repos/{owner}/{repo}/pulls/{pull_number}) and "Get a deployment" (GET
//     /repos/{owner}/{repo}/deployments/{deployment_id}), 404 when unknown;
//     go-github PullRequests.Get and Repositories.GetDeployment.
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
//
// One file per API area: hooks.go (webhooks, deliveries, redelivery),
// pulls.go (pull requests and reviews), branches.go, deployments.go
// (deployments and statuses), orgs.go (an organisation's repositories),
// apps.go (GitHub App installation tokens), repos.go (repository ids,
// renames and transfers), graphql.go (the one GraphQL operation gitpulse
// sends, with GraphQL's point budget), ratelimit.go (the front every API
// request passes: credentials, outage, rate limits, ETags and 304 Not
// Modified) and faults.go (a status, or no answer, injected on one path:
// FailOn). This file
// holds the Server, its routes and the shared answers and pagination.
package fakegithub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v60/github"
)

// Options configure a Server.
type Options struct {
	// Token, when set, is the only credential accepted (Authorization:
	// Bearer or token); others get 401.
	Token string
	// RateLimit is the primary limit per reset window, of the REST API in
	// requests and of the GraphQL API in points; default 5000.
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
	// secondaryOn, when set, narrows that to the next request with this
	// method whose path ends so (SecondaryLimitOnceOn).
	secondaryOn struct{ method, suffix string }
	redelivers  map[string]int
	// repoIDs are the repositories' ids by lower-cased full name, moved
	// the ids of former names (repos.go).
	repoIDs map[string]int64
	moved   map[string]int64
	// faults answer matching requests instead of the API (faults.go);
	// cleared are those FailOn counted down, kept for Faulted.
	faults, cleared []*fault

	// GraphQL's own point budget, the next in-band error to answer
	// (graphql.go) and the queries answered by path.
	gqlRemaining int
	gqlReset     time.Time
	gqlError     string
	gqlPaths     map[string]int

	requests    atomic.Int64
	notModified atomic.Int64
	inflight    sync.WaitGroup

	apps   map[int64]app   // installation id -> its App
	issued map[string]bool // installation tokens handed out
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
	s.gqlRemaining, s.gqlReset, s.gqlPaths = opts.RateLimit, s.reset, map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/{owner}/{repo}/hooks/{hook}/deliveries", s.listDeliveries)
	mux.HandleFunc("GET /repos/{owner}/{repo}/hooks/{hook}/deliveries/{id}", s.getDelivery)
	mux.HandleFunc("POST /repos/{owner}/{repo}/hooks/{hook}/deliveries/{id}/attempts", s.redeliver)
	mux.HandleFunc("GET /orgs/{owner}/hooks/{hook}/deliveries", s.listDeliveries)
	mux.HandleFunc("GET /orgs/{owner}/hooks/{hook}/deliveries/{id}", s.getDelivery)
	mux.HandleFunc("POST /orgs/{owner}/hooks/{hook}/deliveries/{id}/attempts", s.redeliver)
	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls", s.listPulls)
	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}", s.getPull)
	mux.HandleFunc("GET /repos/{owner}/{repo}/branches", s.listBranches)
	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}/reviews", s.listReviews)
	mux.HandleFunc("GET /repos/{owner}/{repo}/deployments", s.listDeployments)
	mux.HandleFunc("GET /repos/{owner}/{repo}/deployments/{id}", s.getDeployment)
	mux.HandleFunc("GET /repos/{owner}/{repo}/deployments/{id}/statuses", s.listDeploymentStatuses)
	mux.HandleFunc("GET /orgs/{owner}/repos", s.listOrgRepos)
	mux.HandleFunc("GET /repos/{owner}/{repo}", s.getRepository)
	mux.HandleFunc("POST /app/installations/{installation}/access_tokens", s.installationToken)
	s.srv = httptest.NewServer(s.limit(s.repositories(mux)))
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

// Requests is how many API requests were answered (deliveries aside),
// REST and GraphQL, 304s included.
func (s *Server) Requests() int64 { return s.requests.Load() }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found",
		"documentation_url": "https://docs.github.com/rest"})
}

func perPage(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("per_page"))
	if err != nil || n <= 0 {
		return 30
	}
	return min(n, 100)
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

func ptr[T any](v T) *T { return &v }
