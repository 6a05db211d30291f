// Package ghwebhook builds GitHub webhook deliveries (payloads shaped as
// GitHub sends them, via go-github's own types) and sends them signed, with a
// Broker-like retry on 5xx. `make demo`, the end-to-end tests and the
// benchmarks use it to play GitHub.
package ghwebhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
)

// Delivery is one webhook delivery: what GitHub POSTs.
type Delivery struct {
	Event string // X-GitHub-Event: pull_request, push, create, delete, ...
	ID    string // X-GitHub-Delivery
	Body  []byte
}

// Repo identifies a repository as "owner/name".
type Repo string

// ID is the repository's GitHub id in the deliveries built here: a hash of
// the name, so that distinct repositories never share one (the recorder
// takes the id for the repository's identity), except for the repository
// of GitHub's own examples (@octokit/webhooks-examples), whose id theirs
// carry, so that tests may mix both. A test of a rename builds its
// payloads with the id kept (RenamedTo).
func (r Repo) ID() int64 {
	if id, ok := renamed.Load(r); ok {
		return id.(int64)
	}
	if r == octokitExamplesRepo {
		return octokitExamplesRepoID
	}
	h := fnv.New64a()
	h.Write([]byte(r))
	return int64(h.Sum64()&(1<<40-1)) + 1
}

// The repository every @octokit/webhooks-examples payload of the types
// gitpulse records is about, and its id there.
const (
	octokitExamplesRepo   Repo  = "Codertocat/Hello-World"
	octokitExamplesRepoID int64 = 186853002
)

// renamed are the repositories a test renamed (RenamedTo): the new name
// keeps the old one's id.
var renamed sync.Map // Repo -> int64

// RenamedTo is r after a rename (or transfer) to name on GitHub: deliveries
// built for the returned Repo carry name and r's id.
func (r Repo) RenamedTo(name string) Repo {
	renamed.Store(Repo(name), r.ID())
	return Repo(name)
}

func (r Repo) parts() (string, string) {
	owner, name, _ := strings.Cut(string(r), "/")
	return owner, name
}

func (r Repo) repository(now time.Time) *github.Repository {
	owner, name := r.parts()
	return &github.Repository{
		ID: github.Int64(r.ID()), Name: github.String(name), FullName: github.String(string(r)),
		Owner:    &github.User{Login: github.String(owner), Type: github.String("Organization")},
		HTMLURL:  github.String("https://github.com/" + string(r)),
		PushedAt: &github.Timestamp{Time: now}, DefaultBranch: github.String("main"),
	}
}

// PullRequest describes a pull_request delivery.
type PullRequest struct {
	Repo    Repo
	Number  int
	Action  string // opened, synchronize, closed, reopened, edited, ...
	User    string
	Title   string
	Head    string // head branch
	Base    string // base branch; default main
	HeadSHA string
	Merged  bool
	Draft   bool
	// MergeCommitSHA is merge_commit_sha (the commit a merge made).
	MergeCommitSHA string
	CreatedAt      time.Time
	UpdatedAt      time.Time // GitHub's updated_at: the order of deliveries
}

// Payload renders the pull_request webhook payload.
func (p PullRequest) Payload() []byte {
	base := p.Base
	if base == "" {
		base = "main"
	}
	state := "open"
	pr := &github.PullRequest{
		ID: github.Int64(int64(p.Number) + 1_000_000), Number: github.Int(p.Number),
		Title: github.String(p.Title), User: &github.User{Login: github.String(p.User)},
		HTMLURL:   github.String(fmt.Sprintf("https://github.com/%s/pull/%d", p.Repo, p.Number)),
		Head:      &github.PullRequestBranch{Ref: github.String(p.Head), SHA: github.String(p.HeadSHA)},
		Base:      &github.PullRequestBranch{Ref: github.String(base)},
		Draft:     github.Bool(p.Draft),
		Merged:    github.Bool(p.Merged),
		CreatedAt: &github.Timestamp{Time: p.CreatedAt}, UpdatedAt: &github.Timestamp{Time: p.UpdatedAt},
	}
	if p.Action == "closed" {
		state = "closed"
		pr.ClosedAt = &github.Timestamp{Time: p.UpdatedAt}
		if p.Merged {
			pr.MergedAt = &github.Timestamp{Time: p.UpdatedAt}
		}
	}
	pr.State = github.String(state)
	if p.MergeCommitSHA != "" {
		pr.MergeCommitSHA = github.String(p.MergeCommitSHA)
	}
	return mustJSON(&github.PullRequestEvent{
		Action: github.String(p.Action), Number: github.Int(p.Number), PullRequest: pr,
		Repo: p.Repo.repository(p.UpdatedAt), Sender: &github.User{Login: github.String(p.User)},
	})
}

// Push describes a push delivery to a branch.
type Push struct {
	Repo    Repo
	Branch  string
	Before  string
	After   string
	Pusher  string
	Forced  bool
	Created bool
	Deleted bool
	At      time.Time // head commit time: the order of pushes
}

// Payload renders the push webhook payload.
func (p Push) Payload() []byte {
	owner, name := p.Repo.parts()
	ev := &github.PushEvent{
		Ref: github.String("refs/heads/" + p.Branch), Before: github.String(p.Before), After: github.String(p.After),
		Created: github.Bool(p.Created), Deleted: github.Bool(p.Deleted), Forced: github.Bool(p.Forced),
		Compare: github.String(fmt.Sprintf("https://github.com/%s/compare/%s...%s", p.Repo, short(p.Before), short(p.After))),
		Repo: &github.PushEventRepository{
			ID: github.Int64(p.Repo.ID()), Name: github.String(name), FullName: github.String(string(p.Repo)),
			Owner:   &github.User{Login: github.String(owner)},
			HTMLURL: github.String("https://github.com/" + string(p.Repo)), PushedAt: &github.Timestamp{Time: p.At},
		},
		Pusher: &github.CommitAuthor{Name: github.String(p.Pusher)},
		Sender: &github.User{Login: github.String(p.Pusher)},
	}
	if !p.Deleted {
		ev.HeadCommit = &github.HeadCommit{
			ID: github.String(p.After), Message: github.String("change on " + p.Branch),
			Timestamp: &github.Timestamp{Time: p.At}, Author: &github.CommitAuthor{Name: github.String(p.Pusher)},
		}
	}
	// GitHub's push payload differs from go-github's encoding of it: the
	// repository's created_at and pushed_at are Unix seconds (integers; the
	// GitHubSource adapter's struct refuses strings there), and a deletion
	// carries "head_commit": null and "commits": [] (see the @octokit
	// examples).
	var doc map[string]any
	if err := json.Unmarshal(mustJSON(ev), &doc); err != nil {
		panic(err)
	}
	repo := doc["repository"].(map[string]any)
	repo["pushed_at"], repo["created_at"] = p.At.Unix(), p.At.Add(-24*time.Hour).Unix()
	if _, ok := doc["commits"]; !ok {
		doc["commits"] = []any{}
	}
	if p.Deleted {
		doc["head_commit"] = nil
	}
	return mustJSON(doc)
}

// Ref describes a create or delete delivery.
type Ref struct {
	Repo    Repo
	Ref     string // branch or tag name
	RefType string // branch or tag; default branch
	Sender  string
	At      time.Time
}

// CreatePayload renders the create webhook payload.
func (r Ref) CreatePayload() []byte {
	return mustJSON(&github.CreateEvent{
		Ref: github.String(r.Ref), RefType: github.String(r.refType()), MasterBranch: github.String("main"),
		PusherType: github.String("user"), Repo: r.Repo.repository(r.At), Sender: &github.User{Login: github.String(r.Sender)},
	})
}

// DeletePayload renders the delete webhook payload.
func (r Ref) DeletePayload() []byte {
	return mustJSON(&github.DeleteEvent{
		Ref: github.String(r.Ref), RefType: github.String(r.refType()), PusherType: github.String("user"),
		Repo: r.Repo.repository(r.At), Sender: &github.User{Login: github.String(r.Sender)},
	})
}

func (r Ref) refType() string {
	if r.RefType == "" {
		return "branch"
	}
	return r.RefType
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own fixed structs are marshalled
	}
	return b
}

// Signature is the X-Hub-Signature-256 value GitHub sends for body.
func Signature(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// SignatureSHA1 is the X-Hub-Signature value GitHub sends for body beside
// X-Hub-Signature-256: the only one the GitHubSource receive adapter checks.
func SignatureSHA1(secret, body []byte) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write(body)
	return "sha1=" + hex.EncodeToString(mac.Sum(nil))
}

// Request builds the signed HTTP request GitHub would send to url.
func Request(ctx context.Context, url string, secret []byte, d Delivery) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/gitpulse")
	req.Header.Set(github.EventTypeHeader, d.Event)
	req.Header.Set(github.DeliveryIDHeader, d.ID)
	// Both signatures, as GitHub sends them when a webhook has a secret: the
	// GitHubSource receive adapter checks X-Hub-Signature (SHA-1), gitpulse's
	// direct-mode intake X-Hub-Signature-256.
	req.Header.Set(github.SHA1SignatureHeader, SignatureSHA1(secret, d.Body))
	req.Header.Set(github.SHA256SignatureHeader, Signature(secret, d.Body))
	return req, nil
}

// Sender delivers signed webhooks and, like a Broker, retries on 5xx, 429
// and connection errors with exponential backoff.
type Sender struct {
	URL     string
	Secret  []byte
	Client  *http.Client
	Retries int           // default 10
	Backoff time.Duration // first wait; default 100ms, doubling, capped at 5s
}

// Result says how a delivery ended.
type Result struct {
	Code     int // final status code (0 if never answered)
	Attempts int
	Body     string
}

// Send delivers d until it gets a final answer (2xx or 4xx) or the retries
// run out.
func (s *Sender) Send(ctx context.Context, d Delivery) (Result, error) {
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	retries, wait := s.Retries, s.Backoff
	if retries == 0 {
		retries = 10
	}
	if wait == 0 {
		wait = 100 * time.Millisecond
	}
	var res Result
	var lastErr error
	for res.Attempts = 1; res.Attempts <= retries+1; res.Attempts++ {
		req, err := Request(ctx, s.URL, s.Secret, d)
		if err != nil {
			return res, err
		}
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			res.Code, res.Body = resp.StatusCode, strings.TrimSpace(string(b))
			if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
				return res, nil
			}
			lastErr = fmt.Errorf("status %d: %s", resp.StatusCode, res.Body)
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
	return res, fmt.Errorf("delivery %s failed after %d attempts: %w", d.ID, res.Attempts-1, lastErr)
}
