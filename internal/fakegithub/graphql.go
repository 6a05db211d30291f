package fakegithub

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// GitHub's GraphQL API (POST /graphql on github.com, POST /api/graphql on
// GitHub Enterprise Server, whose REST API is under /api/v3), for the one
// operation gitpulse sends: OperationPullRequests, a repository's pull
// requests newest updated first with their reviews. The fake does not
// parse GraphQL: it recognises the operation by its name and answers the
// fields that operation selects, from the same pull requests and reviews
// the REST API serves. test/graphqlschema proves that the operation is
// valid against GitHub's published schema (@octokit/graphql-schema) and
// that these answers have the shape its selection gives them.
//
// Emulated from GitHub's docs "Rate limits and query limits for the
// GraphQL API": a primary limit in points (default 5,000 an hour), apart
// from the REST limit; a query costs the requests its connections need at
// their first arguments, divided by 100 and rounded, at least 1; answers
// carry x-ratelimit-limit/-remaining/-used/-reset and x-ratelimit-resource:
// graphql; beyond the limit the answer is still 200, with an error of
// type RATE_LIMITED and x-ratelimit-remaining 0. In-band errors are 200
// with "errors" (types NOT_FOUND, FORBIDDEN, ...) and data null where the
// field failed, as GitHub answers them.

// OperationPullRequests is the operation name the fake answers.
const OperationPullRequests = "GitpulsePullRequests"

// SetGraphQLRateLimit sets the GraphQL points left until reset.
func (s *Server) SetGraphQLRateLimit(remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gqlRemaining, s.gqlReset = remaining, reset
}

// GraphQLRemaining is the GraphQL points left.
func (s *Server) GraphQLRemaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gqlRemaining
}

// GraphQLErrorOnce answers the next GraphQL query with an in-band error of
// type typ (NOT_FOUND, FORBIDDEN, ...; HTTP 200, data null), as GitHub
// answers a repository it cannot resolve or a token without access.
func (s *Server) GraphQLErrorOnce(typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gqlError = typ
}

// GraphQLQueries is how many GraphQL queries were answered, by path
// (/graphql, /api/graphql).
func (s *Server) GraphQLQueries() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.gqlPaths {
		out[k] = v
	}
	return out
}

type gqlRequest struct {
	Query         string          `json:"query"`
	OperationName string          `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
}

type gqlError struct {
	Type      string   `json:"type,omitempty"`
	Code      string   `json:"code,omitempty"`
	Path      []string `json:"path,omitempty"`
	Locations []struct {
		Line   int `json:"line"`
		Column int `json:"column"`
	} `json:"locations,omitempty"`
	Message string `json:"message"`
}

// The answer to OperationPullRequests, field for field as its selection
// names them.
type (
	gqlRateLimit struct {
		Cost      int    `json:"cost"`
		Limit     int    `json:"limit"`
		Remaining int    `json:"remaining"`
		ResetAt   string `json:"resetAt"`
	}
	gqlActor struct {
		Login string `json:"login"`
	}
	gqlReview struct {
		FullDatabaseID *string   `json:"fullDatabaseId"`
		State          string    `json:"state"`
		SubmittedAt    *string   `json:"submittedAt"`
		Author         *gqlActor `json:"author"`
	}
	gqlReviews struct {
		TotalCount int         `json:"totalCount"`
		Nodes      []gqlReview `json:"nodes"`
	}
	gqlCommit struct {
		OID string `json:"oid"`
	}
	gqlPullRequest struct {
		Number      int        `json:"number"`
		Title       string     `json:"title"`
		URL         string     `json:"url"`
		State       string     `json:"state"`
		IsDraft     bool       `json:"isDraft"`
		Merged      bool       `json:"merged"`
		CreatedAt   string     `json:"createdAt"`
		UpdatedAt   string     `json:"updatedAt"`
		ClosedAt    *string    `json:"closedAt"`
		MergedAt    *string    `json:"mergedAt"`
		HeadRefName string     `json:"headRefName"`
		HeadRefOID  string     `json:"headRefOid"`
		BaseRefName string     `json:"baseRefName"`
		Author      *gqlActor  `json:"author"`
		MergeCommit *gqlCommit `json:"mergeCommit"`
		Reviews     gqlReviews `json:"reviews"`
	}
	gqlPageInfo struct {
		HasNextPage bool    `json:"hasNextPage"`
		EndCursor   *string `json:"endCursor"`
	}
	gqlPullRequests struct {
		PageInfo gqlPageInfo      `json:"pageInfo"`
		Nodes    []gqlPullRequest `json:"nodes"`
	}
	gqlRepository struct {
		PullRequests gqlPullRequests `json:"pullRequests"`
	}
	gqlPullRequestsData struct {
		RateLimit  *gqlRateLimit  `json:"rateLimit"`
		Repository *gqlRepository `json:"repository"`
	}
)

// graphql answers POST /graphql and /api/graphql behind authentication and
// the outage switch (limit), with its own point budget.
func (s *Server) graphql(w http.ResponseWriter, r *http.Request) {
	var req gqlRequest
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&req) != nil || req.Query == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON",
			"documentation_url": "https://docs.github.com/graphql"})
		return
	}
	op := req.OperationName
	if op == "" {
		// GitHub runs the document's only operation; the fake knows it
		// by its name in the document.
		if strings.Contains(req.Query, "query "+OperationPullRequests) {
			op = OperationPullRequests
		}
	}
	if op != OperationPullRequests || !strings.Contains(req.Query, "query "+OperationPullRequests) {
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlError{{Message: "fake GitHub: unknown operation " + strconv.Quote(op)}}})
		return
	}
	var vars struct {
		Owner   string  `json:"owner"`
		Name    string  `json:"name"`
		First   int     `json:"first"`
		After   *string `json:"after"`
		Reviews int     `json:"reviews"`
	}
	if err := json.Unmarshal(req.Variables, &vars); err != nil || vars.Owner == "" || vars.Name == "" {
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlError{{Type: "INVALID_VARIABLES", Message: "Variable $owner or $name of type String! was provided invalid value"}}})
		return
	}
	if vars.First < 1 || vars.First > 100 || vars.Reviews < 1 || vars.Reviews > 100 {
		// The node limit's first rule: first within 1-100 on every
		// connection.
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlError{{Type: "EXCESSIVE_PAGINATION",
			Message: "Requesting more than 100 records on a connection is not supported."}}})
		return
	}
	// Requests the connections need: one for the pull requests, one per
	// pull request for its reviews.
	cost := max(1, int(math.Round(float64(1+vars.First)/100)))

	s.mu.Lock()
	s.gqlPaths[r.URL.Path]++
	if s.opts.Now().After(s.gqlReset) {
		s.gqlRemaining, s.gqlReset = s.opts.RateLimit, s.opts.Now().Add(time.Hour)
	}
	limited := s.gqlRemaining < cost
	if !limited {
		s.gqlRemaining -= cost
	}
	remaining, reset := s.gqlRemaining, s.gqlReset
	injected := s.gqlError
	s.gqlError = ""
	s.mu.Unlock()

	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.opts.RateLimit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.opts.RateLimit-remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "graphql")
	if limited {
		h.Set("X-RateLimit-Remaining", "0")
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlError{{Type: "RATE_LIMITED", Code: "graphql_rate_limit",
			Message: "API rate limit exceeded for user ID 1."}}})
		return
	}
	repository := vars.Owner + "/" + vars.Name
	switch injected {
	case "":
	case "NOT_FOUND":
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"repository": nil},
			"errors": []gqlError{{Type: "NOT_FOUND", Path: []string{"repository"},
				Message: fmt.Sprintf("Could not resolve to a Repository with the name '%s'.", repository)}}})
		return
	default:
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"repository": nil},
			"errors": []gqlError{{Type: injected, Path: []string{"repository"}, Message: "Resource not accessible by integration"}}})
		return
	}
	data := gqlPullRequestsData{
		RateLimit:  &gqlRateLimit{Cost: cost, Limit: s.opts.RateLimit, Remaining: remaining, ResetAt: reset.UTC().Format(time.RFC3339)},
		Repository: &gqlRepository{PullRequests: s.pullRequestsPage(repository, vars.First, vars.After, vars.Reviews)},
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

// pullRequestsPage is repository.pullRequests(first, after, orderBy:
// {field: UPDATED_AT, direction: DESC}) with reviews(first: reviews). Its
// cursors are keyset positions (updated_at, number), as GitHub's are, so a
// page read later continues after the same pull request even when newer
// ones came in above it.
func (s *Server) pullRequestsPage(repository string, first int, after *string, reviews int) gqlPullRequests {
	s.mu.Lock()
	var prs []*github.PullRequest
	for _, p := range s.pulls {
		if strings.EqualFold(p.repo, repository) {
			prs = append(prs, p.pr)
		}
	}
	rvs := map[int][]*github.PullRequestReview{}
	for key, list := range s.reviews {
		repo, num, _ := strings.Cut(key, "#")
		if n, err := strconv.Atoi(num); err == nil && strings.EqualFold(repo, repository) {
			rvs[n] = append(rvs[n], list...)
		}
	}
	s.mu.Unlock()
	desc := func(a, b *github.PullRequest) int {
		if c := b.GetUpdatedAt().Compare(a.GetUpdatedAt().Time); c != 0 {
			return c
		}
		return b.GetNumber() - a.GetNumber()
	}
	slices.SortStableFunc(prs, desc)
	from := 0
	if after != nil {
		at, number, ok := decodeCursor(*after)
		if ok {
			pos := &github.PullRequest{UpdatedAt: &github.Timestamp{Time: at}, Number: github.Int(number)}
			from = len(prs)
			for i, pr := range prs {
				if desc(pos, pr) < 0 { // pr comes after the cursor
					from = i
					break
				}
			}
		}
	}
	to := min(from+first, len(prs))
	out := gqlPullRequests{Nodes: []gqlPullRequest{}}
	for _, pr := range prs[from:to] {
		out.Nodes = append(out.Nodes, toGraphQL(pr, rvs[pr.GetNumber()], reviews))
	}
	out.PageInfo.HasNextPage = to < len(prs)
	if to > from {
		last := prs[to-1]
		c := encodeCursor(last.GetUpdatedAt().Time, last.GetNumber())
		out.PageInfo.EndCursor = &c
	}
	return out
}

func encodeCursor(at time.Time, number int) string {
	return base64.StdEncoding.EncodeToString([]byte("cursor:v2:" + at.UTC().Format(time.RFC3339Nano) + "|" + strconv.Itoa(number)))
}

func decodeCursor(c string) (time.Time, int, bool) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, 0, false
	}
	at, num, ok := strings.Cut(strings.TrimPrefix(string(b), "cursor:v2:"), "|")
	t, err1 := time.Parse(time.RFC3339Nano, at)
	n, err2 := strconv.Atoi(num)
	return t, n, ok && err1 == nil && err2 == nil
}

// toGraphQL is a pull request as the GraphQL API answers the fields
// gitpulse selects: the same facts the REST API serves under GraphQL's
// names (html_url is url, user is author, head.sha is headRefOid, the
// state is OPEN, CLOSED or MERGED, merge_commit_sha is mergeCommit.oid of
// a merged pull request), and the first reviews in the order submitted.
func toGraphQL(pr *github.PullRequest, reviews []*github.PullRequestReview, first int) gqlPullRequest {
	ts := func(t *github.Timestamp) *string {
		if t == nil || t.IsZero() {
			return nil
		}
		s := t.UTC().Format(time.RFC3339)
		return &s
	}
	merged := pr.GetMerged() || pr.MergedAt != nil
	state := strings.ToUpper(pr.GetState())
	if merged {
		state = "MERGED"
	}
	out := gqlPullRequest{
		Number: pr.GetNumber(), Title: pr.GetTitle(), URL: pr.GetHTMLURL(), State: state, IsDraft: pr.GetDraft(),
		Merged: merged, CreatedAt: *ts(pr.CreatedAt), UpdatedAt: *ts(pr.UpdatedAt), ClosedAt: ts(pr.ClosedAt),
		MergedAt: ts(pr.MergedAt), HeadRefName: pr.GetHead().GetRef(), HeadRefOID: pr.GetHead().GetSHA(),
		BaseRefName: pr.GetBase().GetRef(),
		Reviews:     gqlReviews{TotalCount: len(reviews), Nodes: []gqlReview{}},
	}
	if pr.GetUser().GetLogin() != "" && pr.GetUser().GetLogin() != "ghost" {
		// A deleted account is REST's "ghost" user and GraphQL's null.
		out.Author = &gqlActor{Login: pr.GetUser().GetLogin()}
	}
	if merged && pr.GetMergeCommitSHA() != "" {
		out.MergeCommit = &gqlCommit{OID: pr.GetMergeCommitSHA()}
	}
	for _, rv := range reviews[:min(first, len(reviews))] {
		n := gqlReview{State: rv.GetState(), SubmittedAt: ts(rv.SubmittedAt)}
		if rv.ID != nil {
			id := strconv.FormatInt(rv.GetID(), 10) // BigInt: a string
			n.FullDatabaseID = &id
		}
		if login := rv.GetUser().GetLogin(); login != "" && login != "ghost" {
			n.Author = &gqlActor{Login: login}
		}
		out.Reviews.Nodes = append(out.Reviews.Nodes, n)
	}
	return out
}
