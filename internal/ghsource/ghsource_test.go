package ghsource

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	gh "gopkg.in/go-playground/webhooks.v5/github"
)

const branchDeletingPush = `{"ref":"refs/heads/feature/x","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246",
 "after":"0000000000000000000000000000000000000000","created":false,"deleted":true,"forced":false,
 "base_ref":null,"compare":"https://github.com/octo/hello/compare/6113728f27ae...000000000000",
 "commits":[],"head_commit":null,
 "repository":{"id":1,"name":"hello","full_name":"octo/hello","owner":{"login":"octo"},"pushed_at":1767261600,"created_at":1767000000,"updated_at":"2026-01-01T10:00:00Z"},
 "pusher":{"name":"octocat"},"sender":{"login":"octocat"}}`

const draftPullRequest = `{"action":"opened","number":7,
 "pull_request":{"number":7,"state":"open","draft":true,"title":"t","created_at":"2026-01-01T10:00:00Z",
  "updated_at":"2026-01-01T10:00:00Z","closed_at":null,"merged_at":null,"merged":false,
  "user":{"login":"octocat"},"head":{"ref":"x","sha":"abc"},"base":{"ref":"main"}},
 "repository":{"id":1,"name":"hello","full_name":"octo/hello","owner":{"login":"octo"}},
 "sender":{"login":"octocat"},"installation":{"id":42}}`

func TestParse_RefusesWhatTheAdapterRefuses(t *testing.T) {
	tests := []struct {
		name, eventType, body string
		want                  error // nil: any error
	}{
		{"event type outside ValidEvents", "workflow_run", `{}`, ErrEventNotFound},
		{"no event type", "", `{}`, gh.ErrMissingGithubEventHeader},
		{"empty body", "push", ``, gh.ErrParsingPayload},
		{"broken JSON", "push", `{"ref":`, nil},
		{"field of the wrong type for the v5 struct", "push", `{"repository":{"pushed_at":"2026-01-01T10:00:00Z"}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.eventType, []byte(tt.body))
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFromWebhook_ShapesDataAsTheAdapterDoes(t *testing.T) {
	t.Run("a null head_commit becomes a zero-valued object, empty commits stay a list", func(t *testing.T) {
		e, err := FromWebhook("", "push", "d-1", []byte(branchDeletingPush))
		if err != nil {
			t.Fatal(err)
		}
		var data map[string]any
		if err := json.Unmarshal(e.Data(), &data); err != nil {
			t.Fatal(err)
		}
		head, ok := data["head_commit"].(map[string]any)
		if !ok || head["timestamp"] != "" || head["id"] != "" {
			t.Errorf("head_commit = %#v, want a zero-valued object", data["head_commit"])
		}
		if repo := data["repository"].(map[string]any); repo["pushed_at"] != float64(1767261600) {
			t.Errorf("repository.pushed_at = %#v, want the integer", repo["pushed_at"])
		}
	})
	t.Run("fields the v5 struct lacks are dropped, absent times stay null", func(t *testing.T) {
		e, err := FromWebhook("", "pull_request", "d-2", []byte(draftPullRequest))
		if err != nil {
			t.Fatal(err)
		}
		var data struct {
			PullRequest map[string]any `json:"pull_request"`
		}
		if err := json.Unmarshal(e.Data(), &data); err != nil {
			t.Fatal(err)
		}
		if _, ok := data.PullRequest["draft"]; ok {
			t.Error("draft survived; the adapter's struct has no such field")
		}
		if v, ok := data.PullRequest["merged_at"]; !ok || v != nil {
			t.Errorf("merged_at = %#v, want null", v)
		}
	})
}

func TestFromWebhook_SetsAttributesAsTheAdapterDoes(t *testing.T) {
	tests := []struct {
		name, ownerRepo, eventType, body string
		wantSource, wantSubject          string
		wantExt                          map[string]any
	}{{
		name: "push, source from the payload's repository", eventType: "push", body: branchDeletingPush,
		wantSource: "https://github.com/octo/hello", wantSubject: "6113728f27ae...000000000000",
		wantExt: map[string]any{"owner": "octo", "repository": "hello", "sender": "octocat", "pusher": "octocat",
			"ref": "refs/heads/feature/x", "created": false, "deleted": true, "forced": false, "installation": int32(0)},
	}, {
		name: "pull request, source from the GitHubSource's ownerAndRepository", ownerRepo: "octo",
		eventType: "pull_request", body: draftPullRequest,
		wantSource: "https://github.com/octo", wantSubject: "7",
		wantExt: map[string]any{"owner": "octo", "repository": "hello", "sender": "octocat", "action": "opened",
			"number": int32(7), "label": "", "installation": int32(42)},
	}, {
		name: "create", eventType: "create",
		body:       `{"ref":"feature/x","ref_type":"branch","repository":{"name":"hello","full_name":"octo/hello","owner":{"login":"octo"}},"sender":{"login":"c"}}`,
		wantSource: "https://github.com/octo/hello", wantSubject: "branch",
		wantExt: map[string]any{"owner": "octo", "repository": "hello", "sender": "c", "ref": "feature/x"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := FromWebhook(tt.ownerRepo, tt.eventType, "d-1", []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if e.ID() != "d-1" || e.Type() != TypePrefix+tt.eventType || e.Source() != tt.wantSource ||
				e.Subject() != tt.wantSubject || e.DataContentType() != "application/json" || e.Time().IsZero() {
				t.Errorf("attributes: %s", e)
			}
			if len(e.Extensions()) != len(tt.wantExt) {
				t.Errorf("extensions = %#v, want %#v", e.Extensions(), tt.wantExt)
			}
			for k, want := range tt.wantExt {
				if got := e.Extensions()[k]; got != want {
					t.Errorf("extension %s = %#v (%T), want %#v (%T)", k, got, got, want, want)
				}
			}
		})
	}
}

func TestNewEvent_FailsWhereTheAdapterFails(t *testing.T) {
	payload, err := Parse("pull_request", []byte(strings.Replace(draftPullRequest, `"id":42`, `"id":4294967296`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewEvent(Source("octo/hello"), "pull_request", "d-1", payload); err == nil {
		t.Error("an installation id beyond int32 made a valid event; sdk-go's SetExtension refuses it")
	}
	for _, missing := range []struct{ eventType, id string }{{"", "d-1"}, {"push", ""}} {
		if _, err := NewEvent(Source("o/r"), missing.eventType, missing.id, payload); !errors.Is(err, ErrMissingHeader) {
			t.Errorf("NewEvent(%q, %q): err = %v, want ErrMissingHeader", missing.eventType, missing.id, err)
		}
	}
}
