package ghwebhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/liatrio/gitpulse/internal/ghsource"
)

func TestSignature_MatchesGitHubsDocumentedTestVector(t *testing.T) {
	got := Signature([]byte("It's a Secret to Everybody"), []byte("Hello, World!"))
	want := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// GitHub signs with both HMACs; the GitHubSource receive adapter checks
// only the SHA-1 one, the direct-mode intake only the SHA-256 one. Each is
// checked with go-github's own validation, which reads the algorithm from
// the value's prefix.
func TestRequest_SignsWithBothHeadersAsGitHubDoes(t *testing.T) {
	body := []byte(`{"zen":"Keep it logically awesome."}`)
	req, err := Request(context.Background(), "http://127.0.0.1:1/webhook", []byte("s3cret"), Delivery{Event: "ping", ID: "1", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		header, prefix, secret string
		valid                  bool
	}{
		{github.SHA1SignatureHeader, "sha1=", "s3cret", true},
		{github.SHA256SignatureHeader, "sha256=", "s3cret", true},
		{github.SHA1SignatureHeader, "sha1=", "another secret", false},
		{github.SHA256SignatureHeader, "sha256=", "another secret", false},
	}
	for _, tt := range tests {
		t.Run(tt.header+" with "+tt.secret, func(t *testing.T) {
			v := req.Header.Get(tt.header)
			if !strings.HasPrefix(v, tt.prefix) {
				t.Fatalf("%s = %q, want the prefix %s", tt.header, v, tt.prefix)
			}
			if err := github.ValidateSignature(v, body, []byte(tt.secret)); (err == nil) != tt.valid {
				t.Fatalf("ValidateSignature: %v, want valid %v", err, tt.valid)
			}
		})
	}
}

func TestPayloads_ParseWithGoGitHub(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		event string
		body  []byte
		check func(any) bool
	}{
		{"pull_request", PullRequest{Repo: "o/r", Number: 3, Action: "closed", Merged: true, User: "u", Head: "f", UpdatedAt: now}.Payload(),
			func(v any) bool {
				e := v.(*github.PullRequestEvent)
				return e.GetPullRequest().GetMerged() && e.GetRepo().GetFullName() == "o/r" && e.GetPullRequest().GetMergedAt().Time.Equal(now)
			}},
		{"push", Push{Repo: "o/r", Branch: "feature/x", After: "abc", At: now}.Payload(),
			func(v any) bool {
				e := v.(*github.PushEvent)
				return e.GetRef() == "refs/heads/feature/x" && e.GetRepo().GetFullName() == "o/r"
			}},
		{"create", Ref{Repo: "o/r", Ref: "feature/x"}.CreatePayload(),
			func(v any) bool { e := v.(*github.CreateEvent); return e.GetRefType() == "branch" }},
		{"delete", Ref{Repo: "o/r", Ref: "v1", RefType: "tag"}.DeletePayload(),
			func(v any) bool { e := v.(*github.DeleteEvent); return e.GetRefType() == "tag" }},
		{"push", Push{Repo: "o/r", Branch: "gone", Before: "abc", After: "0000", Deleted: true, At: now}.Payload(),
			func(v any) bool {
				e := v.(*github.PushEvent)
				return e.GetDeleted() && e.HeadCommit == nil && e.GetRepo().GetPushedAt().Time.Equal(now)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			v, err := github.ParseWebHook(tt.event, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			// The GitHubSource adapter must accept what we send as GitHub.
			if _, err := ghsource.Parse(tt.event, tt.body); err != nil {
				t.Fatalf("the adapter refuses this %s payload: %v", tt.event, err)
			}
			if !tt.check(v) {
				b, _ := json.Marshal(v)
				t.Fatalf("unexpected payload %s", b)
			}
		})
	}
}

func TestSender_RetriesTransientFailuresLikeABroker(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := github.ValidatePayload(r, []byte("s")); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		if calls.Add(1) < 3 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	s := &Sender{URL: srv.URL, Secret: []byte("s"), Backoff: time.Millisecond}
	res, err := s.Send(context.Background(), Delivery{Event: "ping", ID: "1", Body: []byte(`{}`)})
	if err != nil || res.Code != http.StatusAccepted || res.Attempts != 3 {
		t.Fatalf("res %+v err %v", res, err)
	}
	calls.Store(-100) // always failing now
	s.Retries = 2
	if _, err := s.Send(context.Background(), Delivery{Event: "ping", ID: "2", Body: []byte(`{}`)}); err == nil {
		t.Fatal("want an error after retries run out")
	}
}
