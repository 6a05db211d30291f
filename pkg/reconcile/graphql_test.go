package reconcile

import (
	"net/http"
	"testing"
)

func TestGraphQLURL_GitHubAndEnterprise(t *testing.T) {
	for _, tc := range []struct{ api, want string }{
		{"https://api.github.com/", "https://api.github.com/graphql"},
		{"https://github.example.com/api/v3/", "https://github.example.com/api/graphql"},
		{"https://github.example.com/api/v3", "https://github.example.com/api/graphql"},
		{"https://example.com/github/api/v3/", "https://example.com/github/api/graphql"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/graphql"},
	} {
		got, err := GraphQLURL(tc.api)
		if err != nil || got != tc.want {
			t.Errorf("GraphQLURL(%q) = %q, %v; want %q", tc.api, got, err, tc.want)
		}
	}
}

// In-band errors stand for the REST answers a pass already classifies.
func TestGraphQLError_ClassifiedAsTheRESTAnswers(t *testing.T) {
	for _, tc := range []struct {
		name               string
		err                GraphQLError
		status             int
		rateLimited, secnd bool
	}{
		{"not found", GraphQLError{Type: "NOT_FOUND", Message: "Could not resolve to a Repository with the name 'a/b'."}, http.StatusNotFound, false, false},
		{"forbidden", GraphQLError{Type: "FORBIDDEN", Message: "Resource not accessible by integration"}, http.StatusForbidden, false, false},
		{"rate limited", GraphQLError{Type: "RATE_LIMITED", Message: "API rate limit exceeded for user ID 1."}, http.StatusForbidden, true, false},
		{"rate limit (github.com's other spelling)", GraphQLError{Type: "RATE_LIMIT", Code: "graphql_rate_limit", Message: "API rate limit already exceeded for user ID 1."}, http.StatusForbidden, true, false},
		{"secondary", GraphQLError{Message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}, http.StatusForbidden, false, true},
		{"anything else", GraphQLError{Message: "Something went wrong while executing your query."}, http.StatusBadGateway, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.StatusCode(); got != tc.status {
				t.Errorf("StatusCode %d, want %d", got, tc.status)
			}
			if tc.err.RateLimited() != tc.rateLimited || tc.err.SecondaryLimited() != tc.secnd {
				t.Errorf("RateLimited %v SecondaryLimited %v", tc.err.RateLimited(), tc.err.SecondaryLimited())
			}
		})
	}
}

// The ETag cache keeps within its bound, the oldest answers going first.
func TestETagCache_BoundedOldestFirst(t *testing.T) {
	c := newETagCache(100)
	for i, k := range []string{"a", "b", "c"} {
		c.put(&etagEntry{key: k, etag: k, body: make([]byte, 40+i)})
	}
	if c.get("a") != nil || c.get("b") == nil || c.get("c") == nil || c.size > 100 {
		t.Errorf("after 40+41+42 bytes in 100: a %v b %v c %v size %d", c.get("a") != nil, c.get("b") != nil, c.get("c") != nil, c.size)
	}
	c.put(&etagEntry{key: "b", etag: "b2", body: make([]byte, 10)})
	if c.get("b").etag != "b2" || c.size != 52 {
		t.Errorf("replaced b: etag %q size %d", c.get("b").etag, c.size)
	}
}
