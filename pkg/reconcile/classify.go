package reconcile

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"

	"github.com/google/go-github/v60/github"
)

// Why a GitHub request failed, as the reason label of
// gitpulse_reconcile_errors_total and the failed units in the cursor
// (stablev1.ReconcileErrorReasons). 404 and 403 on a sub-resource are what
// GitHub answers for what the token may not see (a fine-grained token or
// App without the permission, a repository it was not given): they need a
// change on GitHub's side and are told apart from GitHub's own failures.
const (
	ReasonNotFound     = "not_found"    // 404: gone, or hidden from the token
	ReasonForbidden    = "forbidden"    // 403 that is not a rate limit: the token's permissions
	ReasonUnauthorized = "unauthorized" // 401: the credentials themselves
	ReasonRateLimited  = "rate_limited" // primary or secondary limit, 429
	ReasonServerError  = "server_error" // 5xx
	ReasonNetwork      = "network"      // no answer: connection, TLS, timeout
	ReasonClientError  = "client_error" // any other 4xx (422 ...)
	ReasonOther        = "other"        // not an HTTP failure (a body that does not decode ...)
)

// classify says why a GitHub request failed, and whether asking again
// unchanged may succeed (retriable: GitHub's or the network's failure, a
// rate limit) or something must change first (the token's permissions,
// the item itself). It reads go-github's error types and the wrapped HTTP
// status, so it serves any go-github call (and any client whose errors
// wrap an *http.Response's status the same way).
func classify(err error) (reason string, retriable bool) {
	var (
		primary *github.RateLimitError
		abuse   *github.AbuseRateLimitError
		resp    *github.ErrorResponse
		netErr  net.Error
		urlErr  *url.Error
		gql     *GraphQLError
	)
	switch {
	case err == nil:
		return "", false
	case errors.As(err, &primary), errors.As(err, &abuse):
		return ReasonRateLimited, true
	case errors.As(err, &gql):
		// GraphQL's in-band errors (HTTP 200) by their type, as the REST
		// answer of the same meaning (graphql.go).
		if gql.RateLimited() || gql.SecondaryLimited() {
			return ReasonRateLimited, true
		}
		return classifyStatus(gql.StatusCode())
	case errors.As(err, &resp) && resp.Response != nil:
		return classifyStatus(resp.Response.StatusCode)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ReasonNetwork, true
	case errors.As(err, &netErr), errors.As(err, &urlErr):
		return ReasonNetwork, true
	}
	return ReasonOther, false
}

// classifyStatus is classify for an HTTP status.
func classifyStatus(code int) (reason string, retriable bool) {
	switch {
	case code == http.StatusNotFound:
		return ReasonNotFound, false
	case code == http.StatusForbidden:
		return ReasonForbidden, false
	case code == http.StatusUnauthorized:
		return ReasonUnauthorized, false
	case code == http.StatusTooManyRequests:
		return ReasonRateLimited, true
	case code >= 500:
		return ReasonServerError, true
	case code >= 400:
		return ReasonClientError, false
	}
	return ReasonOther, false
}

// errorDetail is the HTTP status (0 when GitHub did not answer) and the
// URL of a failed request, for the log and the cursor's failed units.
func errorDetail(err error) (status int, u string) {
	var (
		primary *github.RateLimitError
		abuse   *github.AbuseRateLimitError
		resp    *github.ErrorResponse
		urlErr  *url.Error
	)
	var r *http.Response
	switch {
	case errors.As(err, &primary):
		r = primary.Response
	case errors.As(err, &abuse):
		r = abuse.Response
	case errors.As(err, &resp):
		r = resp.Response
	case errors.As(err, &urlErr):
		return 0, urlErr.URL
	}
	if r == nil {
		return 0, ""
	}
	if r.Request != nil && r.Request.URL != nil {
		u = r.Request.URL.String()
	}
	return r.StatusCode, u
}

// tokenScope reports whether reason is GitHub refusing the token (rather
// than failing): what docs/deploy.md's token permissions fix.
func tokenScope(reason string) bool {
	return reason == ReasonNotFound || reason == ReasonForbidden || reason == ReasonUnauthorized
}
