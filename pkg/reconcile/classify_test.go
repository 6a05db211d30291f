package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/google/go-github/v60/github"
)

func answered(code int) *http.Response {
	return &http.Response{StatusCode: code, Request: &http.Request{Method: http.MethodGet,
		URL: &url.URL{Scheme: "https", Host: "api.github.com", Path: "/repos/acme/api/pulls/7/reviews"}}}
}

func TestClassify_TellsTheTokensRefusalFromGitHubsFailure(t *testing.T) {
	timeout := &url.Error{Op: "Get", URL: "https://api.github.com/repos/acme/api/branches",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}}
	refused := &url.Error{Op: "Get", URL: "https://api.github.com/repos/acme/api/branches",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	for _, tt := range []struct {
		name          string
		err           error
		wantReason    string
		wantRetriable bool
		wantStatus    int
		wantURL       string
	}{
		{name: "404: gone, or hidden from the token", err: &github.ErrorResponse{Response: answered(404)},
			wantReason: ReasonNotFound, wantStatus: 404, wantURL: "https://api.github.com/repos/acme/api/pulls/7/reviews"},
		{name: "403 without a rate limit: the token's permissions", err: &github.ErrorResponse{Response: answered(403)},
			wantReason: ReasonForbidden, wantStatus: 403, wantURL: "https://api.github.com/repos/acme/api/pulls/7/reviews"},
		{name: "401: the credentials", err: &github.ErrorResponse{Response: answered(401)}, wantReason: ReasonUnauthorized, wantStatus: 401,
			wantURL: "https://api.github.com/repos/acme/api/pulls/7/reviews"},
		{name: "422: another client error", err: &github.ErrorResponse{Response: answered(422)}, wantReason: ReasonClientError, wantStatus: 422,
			wantURL: "https://api.github.com/repos/acme/api/pulls/7/reviews"},
		{name: "500: GitHub's failure, may pass", err: &github.ErrorResponse{Response: answered(500)},
			wantReason: ReasonServerError, wantRetriable: true, wantStatus: 500, wantURL: "https://api.github.com/repos/acme/api/pulls/7/reviews"},
		{name: "502 wrapped", err: fmt.Errorf("listing: %w", &github.ErrorResponse{Response: answered(502)}),
			wantReason: ReasonServerError, wantRetriable: true, wantStatus: 502, wantURL: "https://api.github.com/repos/acme/api/pulls/7/reviews"},
		{name: "429", err: &github.ErrorResponse{Response: answered(429)}, wantReason: ReasonRateLimited, wantRetriable: true,
			wantStatus: 429, wantURL: "https://api.github.com/repos/acme/api/pulls/7/reviews"},
		{name: "primary rate limit (a 403)", err: &github.RateLimitError{Response: answered(403)}, wantReason: ReasonRateLimited,
			wantRetriable: true, wantStatus: 403, wantURL: "https://api.github.com/repos/acme/api/pulls/7/reviews"},
		{name: "secondary rate limit (a 403)", err: &github.AbuseRateLimitError{Response: answered(403)}, wantReason: ReasonRateLimited,
			wantRetriable: true, wantStatus: 403, wantURL: "https://api.github.com/repos/acme/api/pulls/7/reviews"},
		{name: "a timeout: no answer", err: timeout, wantReason: ReasonNetwork, wantRetriable: true,
			wantURL: "https://api.github.com/repos/acme/api/branches"},
		{name: "connection refused: no answer", err: refused, wantReason: ReasonNetwork, wantRetriable: true,
			wantURL: "https://api.github.com/repos/acme/api/branches"},
		{name: "a deadline", err: context.DeadlineExceeded, wantReason: ReasonNetwork, wantRetriable: true},
		{name: "anything else", err: errors.New("invalid character '<' looking for beginning of value"), wantReason: ReasonOther},
		{name: "an error response without its response", err: &github.ErrorResponse{}, wantReason: ReasonOther},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reason, retriable := classify(tt.err)
			if reason != tt.wantReason || retriable != tt.wantRetriable {
				t.Errorf("classify = %q, %v; want %q, %v", reason, retriable, tt.wantReason, tt.wantRetriable)
			}
			status, u := errorDetail(tt.err)
			if status != tt.wantStatus || u != tt.wantURL {
				t.Errorf("errorDetail = %d %q; want %d %q", status, u, tt.wantStatus, tt.wantURL)
			}
		})
	}
	if r, _ := classify(nil); r != "" {
		t.Errorf("classify(nil) = %q", r)
	}
}

func TestTokenScope_OnlyTheTokensRefusals(t *testing.T) {
	for reason, want := range map[string]bool{ReasonNotFound: true, ReasonForbidden: true, ReasonUnauthorized: true,
		ReasonServerError: false, ReasonNetwork: false, ReasonRateLimited: false, ReasonClientError: false, ReasonOther: false} {
		if got := tokenScope(reason); got != want {
			t.Errorf("tokenScope(%s) = %v, want %v", reason, got, want)
		}
	}
}
