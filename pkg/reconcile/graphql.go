package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/liatrio/gitpulse/pkg/githubevent"
)

// A backfill reads pull requests with their reviews through GitHub's
// GraphQL API: one query answers a hundred pull requests and the reviews
// of each, where the REST API needs a list page and then a review list
// per pull request (2,000 pull requests: 20 queries instead of 2,020
// requests). The query costs 1 point of GraphQL's own budget (5,000
// points an hour, apart from REST's 5,000 requests): GitHub's docs "Rate
// limits and query limits for the GraphQL API" count the requests its
// connections need at their first arguments (1 for the pull requests, 100
// for their reviews), divide by 100 and round.
//
// REST stays where it is cheaper: whether anything changed at all is asked
// with a conditional REST request (a 304 is free and counts against no
// limit; GraphQL has no conditional requests), and branches, deployments
// and a pull request with more than a hundred reviews are read over REST,
// with ETags (etag.go).

// PullRequestsQuery is the one GraphQL operation gitpulse sends. Its
// fields are what githubevent.FromAPIPullRequestWithReviews reads from the
// REST API, under GraphQL's names; test/graphqlschema validates it against
// GitHub's published schema.
const PullRequestsQuery = `query GitpulsePullRequests($owner: String!, $name: String!, $first: Int!, $after: String, $reviews: Int!) {
  rateLimit { cost limit remaining resetAt }
  repository(owner: $owner, name: $name) {
    pullRequests(first: $first, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        number title url state isDraft merged createdAt updatedAt closedAt mergedAt
        headRefName headRefOid baseRefName
        author { login }
        mergeCommit { oid }
        reviews(first: $reviews) {
          totalCount
          nodes { fullDatabaseId state submittedAt author { login } }
        }
      }
    }
  }
}`

// KeyPullsETag (+ "." + repository for an organisation) keeps the ETag of
// the pull request list as the last complete read of it saw it.
const KeyPullsETag = "pullRequests.etag"

// keyPullsResume (+ "." + repository for an organisation) is where a full
// pass that was cut resumes its GraphQL list: "<updated_at>|<cursor>". It
// starts with KeyPullsScan, so the completed full pass drops it with the
// bands.
const keyPullsResume = KeyPullsScan + "Resume"

// PullRequestsOperation is PullRequestsQuery's operation name.
const PullRequestsOperation = "GitpulsePullRequests"

// graphQLPage is the pull requests and the reviews of each a query asks
// for: the node limit's most (first within 1-100).
const graphQLPage = 100

// PullRequestsVariables are PullRequestsQuery's variables for a page of
// owner/name's pull requests after cursor ("" for the first page).
func PullRequestsVariables(owner, name, after string) map[string]any {
	v := map[string]any{"owner": owner, "name": name, "first": graphQLPage, "reviews": graphQLPage, "after": nil}
	if after != "" {
		v["after"] = after
	}
	return v
}

// GraphQLURL is the GraphQL endpoint of the REST API at apiURL (a
// GitHubSource's githubAPIURL): https://api.github.com/graphql for
// github.com, and for GitHub Enterprise Server, whose REST API is
// https://host/api/v3/, https://host/api/graphql (GitHub's docs "Forming
// calls with GraphQL": "http(s)://HOSTNAME/api/graphql").
func GraphQLURL(apiURL string) (string, error) {
	u, err := url.Parse(apiURL)
	if err != nil {
		return "", fmt.Errorf("spec.githubAPIURL %q: %w", apiURL, err)
	}
	path := strings.TrimSuffix(u.Path, "/")
	if prefix, ok := strings.CutSuffix(path, "/api/v3"); ok {
		u.Path = prefix + "/api/graphql"
	} else {
		u.Path = path + "/graphql"
	}
	u.RawPath = ""
	return u.String(), nil
}

// GraphQLError is one in-band error of a GraphQL answer (HTTP 200 with
// "errors"): Type is GitHub's classification (NOT_FOUND, FORBIDDEN,
// RATE_LIMITED, ...).
type GraphQLError struct {
	Type    string   `json:"type"`
	Code    string   `json:"code"`
	Path    []string `json:"path"`
	Message string   `json:"message"`
}

func (e *GraphQLError) Error() string {
	if e.Type == "" {
		return "GitHub GraphQL: " + e.Message
	}
	return fmt.Sprintf("GitHub GraphQL %s: %s", e.Type, e.Message)
}

// RateLimited tells whether the error is GraphQL's primary rate limit:
// type RATE_LIMITED as GitHub's docs and clients name it, RATE_LIMIT (code
// graphql_rate_limit) as github.com has also answered.
func (e *GraphQLError) RateLimited() bool {
	return e.Type == "RATE_LIMITED" || e.Type == "RATE_LIMIT" || e.Code == "graphql_rate_limit"
}

// SecondaryLimited tells whether the error is a secondary rate limit,
// which GitHub may answer in-band (200) as well as with 403.
func (e *GraphQLError) SecondaryLimited() bool {
	return strings.Contains(strings.ToLower(e.Message), "secondary rate limit")
}

// StatusCode is the REST answer the error stands for, so that GraphQL's
// failures are classified as the REST API's are: NOT_FOUND is a 404,
// FORBIDDEN a 403, a rate limit a 403 with nothing remaining; anything
// else (a query GitHub could not answer) a 502.
func (e *GraphQLError) StatusCode() int {
	switch {
	case e.RateLimited(), e.SecondaryLimited(), e.Type == "FORBIDDEN":
		return http.StatusForbidden
	case e.Type == "NOT_FOUND":
		return http.StatusNotFound
	}
	return http.StatusBadGateway
}

// gqlPullRequest is a node of PullRequestsQuery's answer.
type gqlPullRequest struct {
	Number      int        `json:"number"`
	Title       string     `json:"title"`
	URL         string     `json:"url"`
	State       string     `json:"state"`
	IsDraft     bool       `json:"isDraft"`
	Merged      bool       `json:"merged"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	ClosedAt    *time.Time `json:"closedAt"`
	MergedAt    *time.Time `json:"mergedAt"`
	HeadRefName string     `json:"headRefName"`
	HeadRefOID  string     `json:"headRefOid"`
	BaseRefName string     `json:"baseRefName"`
	Author      *struct {
		Login string `json:"login"`
	} `json:"author"`
	MergeCommit *struct {
		OID string `json:"oid"`
	} `json:"mergeCommit"`
	Reviews struct {
		TotalCount int `json:"totalCount"`
		Nodes      []struct {
			FullDatabaseID string     `json:"fullDatabaseId"` // BigInt: a string
			State          string     `json:"state"`
			SubmittedAt    *time.Time `json:"submittedAt"`
			Author         *struct {
				Login string `json:"login"`
			} `json:"author"`
		} `json:"nodes"`
	} `json:"reviews"`
}

type gqlPullRequests struct {
	RateLimit *struct {
		Cost      int       `json:"cost"`
		Limit     int       `json:"limit"`
		Remaining int       `json:"remaining"`
		ResetAt   time.Time `json:"resetAt"`
	} `json:"rateLimit"`
	Repository *struct {
		PullRequests struct {
			PageInfo struct {
				HasNextPage bool   `json:"hasNextPage"`
				EndCursor   string `json:"endCursor"`
			} `json:"pageInfo"`
			Nodes []gqlPullRequest `json:"nodes"`
		} `json:"pullRequests"`
	} `json:"repository"`
}

// ghost is the login the REST API gives a deleted account, whose author
// GraphQL answers null.
const ghost = "ghost"

// restShape is the pull request and reviews as the REST API lists them,
// so that a pull request read either way becomes the same Change (and the
// same synthetic delivery id).
func (n *gqlPullRequest) restShape() (*github.PullRequest, []*github.PullRequestReview) {
	ts := func(t *time.Time) *github.Timestamp {
		if t == nil || t.IsZero() {
			return nil
		}
		return &github.Timestamp{Time: *t}
	}
	login := func(a *struct {
		Login string `json:"login"`
	}) *github.User {
		if a == nil || a.Login == "" {
			return &github.User{Login: github.String(ghost)}
		}
		return &github.User{Login: github.String(a.Login)}
	}
	state := "open"
	if n.State != "OPEN" {
		state = "closed" // CLOSED or MERGED: REST says closed (merged_at tells)
	}
	pr := &github.PullRequest{
		Number: github.Int(n.Number), Title: github.String(n.Title), HTMLURL: github.String(n.URL),
		State: github.String(state), Draft: github.Bool(n.IsDraft), Merged: github.Bool(n.Merged),
		CreatedAt: ts(&n.CreatedAt), UpdatedAt: ts(&n.UpdatedAt), ClosedAt: ts(n.ClosedAt), MergedAt: ts(n.MergedAt),
		User: login(n.Author),
		Head: &github.PullRequestBranch{Ref: github.String(n.HeadRefName), SHA: github.String(n.HeadRefOID)},
		Base: &github.PullRequestBranch{Ref: github.String(n.BaseRefName)},
	}
	if n.MergeCommit != nil {
		pr.MergeCommitSHA = github.String(n.MergeCommit.OID)
	}
	reviews := make([]*github.PullRequestReview, 0, len(n.Reviews.Nodes))
	for _, rv := range n.Reviews.Nodes {
		id, err := strconv.ParseInt(rv.FullDatabaseID, 10, 64)
		if err != nil {
			continue // no REST id to count it under
		}
		reviews = append(reviews, &github.PullRequestReview{ID: github.Int64(id), State: github.String(rv.State),
			SubmittedAt: ts(rv.SubmittedAt), User: login(rv.Author)})
	}
	return pr, reviews
}

// pullRequests is the backfill of repo's pull requests and their reviews
// updated since since (the whole window on a full pass, sc its progress):
// first a conditional REST request for the most recently updated pull
// request — a 304 to the ETag the last complete read kept under etagKey
// in the cursor means no pull request changed since, and nothing more is
// asked (a full pass reads all the same) — then PullRequestsQuery page by
// page, newest updated first, down to since. It returns the newest
// updated_at seen.
func (p *pass) pullRequests(ctx context.Context, u unit, repo string, since time.Time, sc *scan, etagKey string) (newest time.Time, listed bool, err error) {
	stored := p.cur.get(etagKey)
	if sc != nil || p.failures[u].Attempts > 0 {
		// A full pass reads everything, and so does the retry of a failed
		// list: only the new ETag is wanted.
		stored = ""
	}
	etag, changed, ok := p.pullsProbe(ctx, u, repo, stored)
	if !ok {
		return time.Time{}, false, nil
	}
	if !changed {
		p.succeededUnit(u)
		return time.Time{}, true, nil
	}
	newest, listed, err = p.pullsGraphQL(ctx, u, repo, since, sc, keyPullsResume+strings.TrimPrefix(etagKey, KeyPullsETag))
	if err == nil && p.gqlMissing && p.result == "" {
		// No GraphQL endpoint (a proxy, an old server): the REST lists.
		newest, listed, err = p.pulls(ctx, u, repo, since, sc)
	}
	if err != nil || !listed || p.result != "" || etag == "" || etag == p.cur.get(etagKey) {
		return newest, listed, err
	}
	// Read to the end: the next pass may trust a 304 to this ETag.
	cur, err := p.r.store.update(ctx, p.src, func(c cursor) bool {
		c.set(etagKey, etag)
		return true
	})
	if err != nil {
		return newest, listed, err
	}
	p.cur = cur
	return newest, listed, nil
}

// pullsProbe asks GET /repos/{owner}/{repo}/pulls?state=all&sort=updated
// &direction=desc&per_page=1 with If-None-Match: etag. Any change to a
// pull request (a review, a push, an edit) moves its updated_at and puts
// it first, which changes the answer. It returns the answer's ETag and
// whether it changed; false ok when the pass ended.
func (p *pass) pullsProbe(ctx context.Context, u unit, repo, etag string) (string, bool, bool) {
	if !p.take(ctx) {
		return "", false, false
	}
	path := fmt.Sprintf("repos/%v/pulls?state=all&sort=updated&direction=desc&per_page=1", p.currentName(p.src.Owner+"/"+repo))
	req, err := p.gh.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		p.fail(err)
		return "", false, false
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	// Its own ETag, kept in the cursor: the in-memory cache stays out.
	resp, err := p.gh.Do(withoutETagCache(ctx), req, nil)
	if resp != nil && resp.StatusCode == http.StatusNotModified {
		if resp.Rate.Limit > 0 {
			p.rate = resp.Rate
		}
		return etag, false, true
	}
	if !p.done(u, ResourcePulls, resp, err) {
		return "", false, false
	}
	return resp.Header.Get("ETag"), true, true
}

// pullsGraphQL is pulls (backfill.go) over GraphQL. On a full pass that
// an earlier pass cut (sc's band), it reads from the newest down into the
// band and then continues from the query cursor an earlier pass kept under
// resumeKey (the end of the last page it read through), instead of reading
// the band's pages again; and when it is cut itself, it keeps the end of
// its own last page read through. A kept cursor is used only while its
// place is inside the band; otherwise the band is read through, as the
// REST list is.
func (p *pass) pullsGraphQL(ctx context.Context, u unit, repo string, since time.Time, sc *scan, resumeKey string) (newest time.Time, listed bool, err error) {
	full := p.src.Owner + "/" + repo
	// Asked by the repository's current name: GraphQL's repository(owner,
	// name) has no 301 for a former one.
	owner, name, _ := strings.Cut(p.currentName(full), "/")
	// A kept cursor is good while its place is inside the band: every
	// pull request above it was read by this full pass.
	resume, resumeAt := "", time.Time{}
	if sc != nil && !sc.from.IsZero() {
		at, c, _ := strings.Cut(p.cur.get(resumeKey), "|")
		if t, err := time.Parse(time.RFC3339Nano, at); err == nil && c != "" && !t.Before(sc.downTo) && !t.After(sc.from) {
			resume, resumeAt = c, t
		}
	}
	// The last page read to its end: its last pull request's time and
	// the cursor after it.
	var lastAt time.Time
	lastEnd := ""
	defer func() {
		if sc == nil || p.result == "" || lastEnd == "" {
			return
		}
		from, downTo := sc.next(true, since)
		deeper := resume == "" || !lastAt.After(resumeAt) // never back up
		if deeper && !downTo.IsZero() && !lastAt.Before(downTo) && !lastAt.After(from) {
			// Cut: the next pass of this full pass resumes here.
			cur, err := p.r.store.update(ctx, p.src, func(c cursor) bool {
				c.set(resumeKey, lastAt.UTC().Format(time.RFC3339Nano)+"|"+lastEnd)
				return true
			})
			if err != nil {
				// Not fatal: the next pass reads the band through.
				p.log.Warn("keeping where the pull request list was cut", "err", err)
				return
			}
			p.cur = cur
		}
	}()
	after := ""
	for !p.gqlMissing && p.takeGraphQL(ctx) {
		var page gqlPullRequests
		if !p.graphql(ctx, u, PullRequestsQuery, PullRequestsVariables(owner, name, after), &page) {
			return newest, false, nil
		}
		if page.Repository == nil {
			p.unitFailed(u, ResourcePulls, ReasonNotFound, false, &GraphQLError{Type: "NOT_FOUND", Message: "repository " + full + " answered null"})
			return newest, false, nil
		}
		prs := page.Repository.PullRequests
		lastSkipped := false
		for i := range prs.Nodes {
			n := &prs.Nodes[i]
			at := n.UpdatedAt
			if at.Before(since) {
				p.succeededUnit(u)
				return newest, true, nil
			}
			if at.After(newest) {
				newest = at
			}
			if lastSkipped = sc.skip(at); lastSkipped {
				continue // read by an earlier pass of this full pass
			}
			pr, reviews := n.restShape()
			p.learn(full, pr.GetBase().GetRepo())
			pu := pullUnit(full, n.Number)
			if !p.due(pu) {
				sc.processed(at) // backing off: done for this scan
				continue
			}
			p.handled[pu] = true
			if n.Reviews.TotalCount > len(n.Reviews.Nodes) {
				// More reviews than a query reads: the REST list has them
				// all (a unit of work of its own, as on the REST path).
				if err := p.pull(ctx, pu, repo, pr); err != nil {
					return newest, false, err
				}
				if p.result != "" {
					return newest, false, nil
				}
				sc.processed(at)
				continue
			}
			ch, err := githubevent.FromAPIPullRequestWithReviews(full, pr, reviews)
			if err != nil {
				p.log.Warn("pull request from the API not reconciled", "number", n.Number, "err", err)
				continue
			}
			if err := p.record(ctx, ch); err != nil {
				return newest, false, err
			}
			p.succeededUnit(pu)
			sc.processed(at)
		}
		if !prs.PageInfo.HasNextPage || prs.PageInfo.EndCursor == "" {
			p.succeededUnit(u)
			return newest, true, nil
		}
		after = prs.PageInfo.EndCursor
		if len(prs.Nodes) > 0 {
			lastAt, lastEnd = prs.Nodes[len(prs.Nodes)-1].UpdatedAt, after
		}
		if lastSkipped && !sc.downTo.After(since) {
			// The band reaches the window's end: an earlier pass of this
			// full pass read the rest.
			p.succeededUnit(u)
			return newest, true, nil
		}
		if lastSkipped && resume != "" {
			// Inside the band: everything down to its lower edge was read.
			after, resume = resume, ""
		}
	}
	return newest, false, nil
}

// takeGraphQL is take for a GraphQL query: it also stops the pass, until
// GraphQL's reset, when the points left are under MinRemaining.
func (p *pass) takeGraphQL(ctx context.Context) bool {
	if p.result == "" && p.gqlRate.Limit > 0 && p.gqlRate.Remaining < p.r.opts.MinRemaining {
		p.result, p.notBefore = ResultRateLimited, p.gqlRate.Reset.Time
		return false
	}
	return p.take(ctx)
}

// graphql posts query with vars to the source's GraphQL endpoint and
// decodes the answer's data into out. False when it failed; the pass then
// ends as a REST failure of the same kind would end it (done): an HTTP
// error through go-github's own classification (CheckResponse: a 403 with
// nothing remaining, a secondary limit with Retry-After, 401, 5xx), and an
// in-band error by its type (GraphQLError.StatusCode).
func (p *pass) graphql(ctx context.Context, u unit, query string, vars map[string]any, out any) bool {
	endpoint, err := GraphQLURL(p.src.APIURL)
	if err != nil {
		p.fail(err)
		return false
	}
	body, err := json.Marshal(map[string]any{"query": query, "operationName": PullRequestsOperation, "variables": vars})
	if err != nil {
		p.fail(err)
		return false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		p.fail(err)
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", p.gh.UserAgent)
	resp, err := p.gh.Client().Do(req)
	if err != nil {
		// No answer: classified as the REST ones (network), a unit failure.
		return p.done(u, ResourcePulls, nil, err)
	}
	defer resp.Body.Close()
	rate := graphQLRate(resp.Header)
	if rate.Limit > 0 {
		p.gqlRate = rate
	}
	if resp.StatusCode == http.StatusNotFound && resp.Header.Get("X-RateLimit-Resource") != "graphql" {
		p.gqlMissing = true
		return false
	}
	if resp.StatusCode != http.StatusOK {
		// The same classification as every REST answer.
		err := github.CheckResponse(resp)
		if err == nil {
			err = fmt.Errorf("GitHub GraphQL: answered %s", resp.Status)
		}
		return p.done(u, ResourcePulls, nil, err)
	}
	var answer struct {
		Data   json.RawMessage `json:"data"`
		Errors []GraphQLError  `json:"errors"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&answer); err != nil {
		p.fail(fmt.Errorf("GitHub GraphQL: decoding the answer: %w", err))
		return false
	}
	if len(answer.Errors) > 0 {
		p.graphQLFailed(u, &answer.Errors[0], resp.Header, rate)
		return false
	}
	if err := json.Unmarshal(answer.Data, out); err != nil {
		p.fail(fmt.Errorf("GitHub GraphQL: decoding the data: %w", err))
		return false
	}
	return true
}

// graphQLFailed answers an in-band error: a rate limit ends the pass until
// GitHub's reset (or, for a secondary limit, Retry-After or a minute, as
// GitHub's docs advise), anything else as a failure.
func (p *pass) graphQLFailed(u unit, e *GraphQLError, h http.Header, rate github.Rate) {
	reason, retriable := classify(e)
	p.errors[ResourcePulls+"."+reason]++
	switch {
	case e.RateLimited():
		reset := rate.Reset.Time
		if reset.IsZero() {
			reset = p.r.opts.Now().Add(time.Hour)
		}
		p.result, p.notBefore, p.ghErr = ResultRateLimited, reset, e
	case e.SecondaryLimited():
		wait := time.Minute
		if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		p.result, p.notBefore, p.ghErr = ResultRateLimited, p.r.opts.Now().Add(wait), e
	default:
		// NOT_FOUND, FORBIDDEN (the token's scope) and the rest, as the
		// REST answers of the same status are: this list's failure only.
		p.unitFailed(u, ResourcePulls, reason, retriable, e)
	}
}

// graphQLRate reads GraphQL's x-ratelimit-* headers (resource graphql).
func graphQLRate(h http.Header) github.Rate {
	var r github.Rate
	r.Limit, _ = strconv.Atoi(h.Get("X-RateLimit-Limit"))
	r.Remaining, _ = strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	if s, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		r.Reset = github.Timestamp{Time: time.Unix(s, 0)}
	}
	return r
}
