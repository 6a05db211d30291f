package githubevent

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// octokitExamples reads @octokit/webhooks-examples' payloads of eventType
// (GITPULSE_WEBHOOK_EXAMPLES, else the repository's .cache).
func octokitExamples(t testing.TB, eventType string) []json.RawMessage {
	t.Helper()
	dir := os.Getenv("GITPULSE_WEBHOOK_EXAMPLES")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", ".cache", "npm", "node_modules", "@octokit", "webhooks-examples")
	}
	b, err := os.ReadFile(filepath.Join(dir, "api.github.com", "index.json"))
	if err != nil {
		t.Skipf("@octokit/webhooks-examples not installed (make test installs it): %v", err)
	}
	var index []struct {
		Name     string            `json:"name"`
		Examples []json.RawMessage `json:"examples"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	for _, e := range index {
		if e.Name == eventType {
			if len(e.Examples) == 0 {
				break
			}
			return e.Examples
		}
	}
	t.Fatalf("no %s examples", eventType)
	return nil
}

// field reads a dotted path of a decoded payload as a string ("" when
// absent or null); numbers come back in their JSON spelling.
func field(doc map[string]any, path string) string {
	var v any = doc
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strings.TrimSuffix(strings.TrimSuffix(json.Number(jsonNumber(v)).String(), ".0"), ".")
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return ""
}

func jsonNumber(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func rfc3339(tm time.Time) string {
	if tm.IsZero() {
		return ""
	}
	return tm.UTC().Format(time.RFC3339)
}

// bothShapes builds the delivery as GitHub sends it (raw) and as the
// GitHubSource adapter re-encodes it (json.Marshal of the go-playground v5
// struct).
func bothShapes(t *testing.T, eventType string, raw []byte) map[string]event.Event {
	t.Helper()
	return map[string]event.Event{"raw": mustEvent(t, eventType, string(raw)), "adapter": adapterEvent(t, eventType, string(raw))}
}

// Every field the recorder relies on for reviews survives both shapes of
// every octokit pull_request_review example, except review.commit_id, which
// the adapter drops and the recorder does not read.
func TestParse_ReadsEveryOctokitReviewExampleInBothShapes(t *testing.T) {
	for i, raw := range octokitExamples(t, "pull_request_review") {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		for shape, e := range bothShapes(t, "pull_request_review", raw) {
			ch, err := Parse(e, received)
			if err != nil {
				t.Fatalf("example %d (%s): %v", i, shape, err)
			}
			r := ch.Review
			if r == nil || ch.Kind() != KindPullRequest {
				t.Fatalf("example %d (%s): no review change: %+v", i, shape, ch)
			}
			got := map[string]string{
				"action":                   r.Action,
				"review.id":                jsonNumber(float64(r.ID)),
				"review.state":             r.State,
				"review.submitted_at":      rfc3339(r.SubmittedAt),
				"review.user.login":        r.Reviewer,
				"pull_request.number":      jsonNumber(float64(r.PullRequest.Number)),
				"pull_request.title":       r.PullRequest.Title,
				"pull_request.user.login":  r.PullRequest.User,
				"pull_request.head.ref":    r.PullRequest.HeadBranch,
				"pull_request.base.ref":    r.PullRequest.BaseBranch,
				"pull_request.created_at":  rfc3339(r.PullRequest.OpenedAt),
				"repository.full_name":     ch.Repository,
				"pull_request.html_url":    r.PullRequest.URL,
				"pull_request.head.sha":    r.PullRequest.HeadSHA,
				"pull_request.merged_at":   rfc3339(r.PullRequest.MergedAt),
				"pull_request.closed_at":   rfc3339(r.PullRequest.ClosedAt),
				"pull_request.state":       map[bool]string{true: "closed", false: string(r.PullRequest.State)}[r.PullRequest.State == stablev1.PullRequestMerged],
				"review.submitted_at(ord)": rfc3339(ch.OccurredAt),
			}
			for path, v := range got {
				want := field(doc, strings.TrimSuffix(path, "(ord)"))
				if strings.HasSuffix(path, "_at") || strings.HasSuffix(path, "(ord)") {
					if want != "" {
						tm, _ := time.Parse(time.RFC3339, want)
						want = rfc3339(tm)
					}
				}
				if path == "review.state" {
					want = strings.ToLower(want)
				}
				if v != want {
					t.Errorf("example %d (%s): %s = %q, payload says %q", i, shape, path, v, want)
				}
			}
			if ch.Action() != "review_"+field(doc, "action") {
				t.Errorf("example %d (%s): Event action %q", i, shape, ch.Action())
			}
		}
	}
}

// Every field the recorder relies on for deployments survives both shapes
// of every octokit deployment and deployment_status example; the
// environment is deployment.environment (the adapter drops
// deployment_status.environment, and the examples show them equal).
func TestParse_ReadsEveryOctokitDeploymentExampleInBothShapes(t *testing.T) {
	for _, eventType := range []string{"deployment", "deployment_status"} {
		for i, raw := range octokitExamples(t, eventType) {
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			if eventType == "deployment_status" {
				if se := field(doc, "deployment_status.environment"); se != "" && se != field(doc, "deployment.environment") {
					t.Errorf("%s example %d: status environment %q differs from the deployment's: the recorder cannot see it in a cluster", eventType, i, se)
				}
			}
			for shape, e := range bothShapes(t, eventType, raw) {
				ch, err := Parse(e, received)
				if err != nil {
					t.Fatalf("%s example %d (%s): %v", eventType, i, shape, err)
				}
				d := ch.Deployment
				if d == nil || ch.Kind() != KindGitHubDeployment {
					t.Fatalf("%s example %d (%s): no deployment change", eventType, i, shape)
				}
				got := map[string]string{
					"deployment.id":            jsonNumber(float64(d.ID)),
					"deployment.environment":   d.Environment,
					"deployment.ref":           d.Ref,
					"deployment.sha":           d.SHA,
					"deployment.task":          d.Task,
					"deployment.creator.login": d.Creator,
					"deployment.created_at":    rfc3339(d.CreatedAt),
					"deployment.updated_at":    rfc3339(d.UpdatedAt),
					"repository.full_name":     ch.Repository,
				}
				wantAction := stablev1.ActionCreated
				if eventType == "deployment_status" {
					if d.Status == nil {
						t.Fatalf("%s example %d (%s): no status", eventType, i, shape)
					}
					got["deployment_status.id"] = jsonNumber(float64(d.Status.ID))
					got["deployment_status.state"] = d.Status.State
					got["deployment_status.updated_at"] = rfc3339(d.Status.At)
					wantAction = field(doc, "deployment_status.state")
				} else if d.Status != nil {
					t.Errorf("deployment example %d (%s): a status", i, shape)
				}
				for path, v := range got {
					want := field(doc, path)
					if strings.HasSuffix(path, "_at") {
						tm, _ := time.Parse(time.RFC3339, want)
						want = rfc3339(tm)
					}
					if v != want {
						t.Errorf("%s example %d (%s): %s = %q, payload says %q", eventType, i, shape, path, v, want)
					}
				}
				if ch.Action() != wantAction {
					t.Errorf("%s example %d (%s): action %q, want %q", eventType, i, shape, ch.Action(), wantAction)
				}
			}
		}
	}
}

// merge_commit_sha, which lead time attribution matches against a
// deployment's SHA, survives both shapes of every pull_request example.
func TestParse_ReadsMergeCommitSHAInBothShapes(t *testing.T) {
	for i, raw := range octokitExamples(t, "pull_request") {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		for shape, e := range bothShapes(t, "pull_request", raw) {
			ch, err := Parse(e, received)
			if err != nil {
				t.Fatalf("example %d (%s): %v", i, shape, err)
			}
			if got, want := ch.PullRequest.MergeCommitSHA, field(doc, "pull_request.merge_commit_sha"); got != want {
				t.Errorf("example %d (%s): merge commit %q, payload says %q", i, shape, got, want)
			}
		}
	}
}

// A review action GitHub may add later is acknowledged, not recorded under
// a label nobody declared; an empty environment can never be GitHub's.
func TestParse_ReviewAndDeploymentEdges(t *testing.T) {
	const r = `"repository":{"full_name":"o/r"}`
	tests := []struct {
		name, eventType, payload string
		wantIgnored              bool
		wantErr                  error
	}{
		{"unknown review action", "pull_request_review",
			`{"action":"reconsidered","review":{"id":1,"state":"approved"},"pull_request":{"number":2,"state":"open"},` + r + `}`, true, nil},
		{"review without a pull request number", "pull_request_review",
			`{"action":"submitted","review":{"id":1,"state":"approved"},"pull_request":{"state":"open"},` + r + `}`, false, ErrMismatch},
		{"deployment without an environment", "deployment",
			`{"deployment":{"id":3,"environment":"","created_at":"2026-01-01T10:00:00Z"},` + r + `}`, false, ErrMismatch},
		{"environment with a control character", "deployment",
			`{"deployment":{"id":3,"environment":"prod\u0007","created_at":"2026-01-01T10:00:00Z"},` + r + `}`, false, ErrMismatch},
		{"status without a state", "deployment_status",
			`{"deployment":{"id":3,"environment":"production"},"deployment_status":{"id":4,"created_at":"2026-01-01T10:01:00Z"},` + r + `}`, false, ErrMismatch},
		{"status without a time", "deployment_status",
			`{"deployment":{"id":3,"environment":"production"},"deployment_status":{"id":4,"state":"success"},` + r + `}`, false, ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := Parse(mustEvent(t, tt.eventType, tt.payload), received)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || (ch.Ignored != "") != tt.wantIgnored {
				t.Fatalf("ignored %q, err %v", ch.Ignored, err)
			}
		})
	}
}

// GitHub's ids, the identity that survives a rename or transfer, survive both
// shapes of every octokit example of every recorded type: repository.id on
// every Change, pull_request.id on a pull request's.
func TestParse_ReadsGitHubsIdsInBothShapes(t *testing.T) {
	for _, eventType := range RecordedEvents {
		for i, raw := range octokitExamples(t, eventType) {
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			for shape, e := range bothShapes(t, eventType, raw) {
				ch, err := Parse(e, received)
				if err != nil {
					t.Fatalf("%s example %d (%s): %v", eventType, i, shape, err)
				}
				if ch.Ignored != "" {
					continue
				}
				if got, want := jsonNumber(float64(ch.RepositoryID)), field(doc, "repository.id"); got != want || ch.RepositoryID <= 0 {
					t.Errorf("%s example %d (%s): repository id %s, payload says %s", eventType, i, shape, got, want)
				}
				if ch.PullRequest != nil {
					if got, want := jsonNumber(float64(ch.PullRequest.GitHubID)), field(doc, "pull_request.id"); got != want {
						t.Errorf("%s example %d (%s): pull request id %s, payload says %s", eventType, i, shape, got, want)
					}
				}
			}
		}
	}
}

// A payload without repository.id (hand-made) or with a nonsensical one
// says nothing about the id: the identity is then the name.
func TestParse_RepositoryIDAbsentOrNonPositiveIsUnknown(t *testing.T) {
	tests := []struct {
		name, repository string
		want             int64
	}{
		{"absent", `{"full_name":"octo/hello"}`, 0},
		{"negative", `{"id":-5,"full_name":"octo/hello"}`, 0},
		{"present", `{"id":35129377,"full_name":"octo/hello"}`, 35129377},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := Parse(mustEvent(t, "create", `{"ref":"x","ref_type":"branch","repository":`+tt.repository+`}`), received)
			if err != nil {
				t.Fatal(err)
			}
			if ch.RepositoryID != tt.want {
				t.Fatalf("repository id %d, want %d", ch.RepositoryID, tt.want)
			}
		})
	}
}
