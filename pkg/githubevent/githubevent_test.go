package githubevent

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-github/v60/github"

	"github.com/liatrio/gitpulse/internal/ghsource"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

var received = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func mustEvent(t *testing.T, eventType, payload string) event.Event {
	t.Helper()
	e, err := NewRawCloudEvent(eventType, "delivery-1", []byte(payload))
	if err != nil {
		t.Fatalf("NewRawCloudEvent: %v", err)
	}
	return e
}

const repo = `"repository":{"full_name":"octo/hello","html_url":"https://github.com/octo/hello"}`

func TestParse_TranslatesEachRecordedEventType(t *testing.T) {
	tests := []struct {
		name       string
		eventType  string
		payload    string
		wantKind   string
		wantReason string
		wantAction string
		wantTime   string
		wantSource TimeSource
		check      func(t *testing.T, ch Change)
	}{{
		name:      "opened pull request",
		eventType: "pull_request",
		payload: `{"action":"opened","number":7,"pull_request":{"number":7,"state":"open","title":"Add x",
			"user":{"login":"alice"},"head":{"ref":"feature/x","sha":"abc"},"base":{"ref":"main"},
			"html_url":"https://github.com/octo/hello/pull/7","created_at":"2026-01-01T10:00:00Z",
			"updated_at":"2026-01-01T10:00:00Z"},"sender":{"login":"alice"},` + repo + `}`,
		wantKind: KindPullRequest, wantReason: stablev1.ReasonPullRequestOpened, wantAction: "opened",
		wantTime: "2026-01-01T10:00:00Z", wantSource: TimeFromUpdatedAt,
		check: func(t *testing.T, ch Change) {
			pr := ch.PullRequest
			if pr.Number != 7 || pr.User != "alice" || pr.HeadBranch != "feature/x" || pr.BaseBranch != "main" ||
				pr.State != stablev1.PullRequestOpen || pr.HeadSHA != "abc" || pr.Title != "Add x" {
				t.Errorf("unexpected pull request %+v", pr)
			}
			if want := `alice opened pull request #7 "Add x" (feature/x -> main) in octo/hello`; ch.Message() != want {
				t.Errorf("message = %q, want %q", ch.Message(), want)
			}
		},
	}, {
		name:      "closed and merged pull request is merged",
		eventType: "pull_request",
		payload: `{"action":"closed","pull_request":{"number":7,"state":"closed","merged":true,
			"merged_at":"2026-01-02T10:00:00Z","closed_at":"2026-01-02T10:00:00Z",
			"updated_at":"2026-01-02T10:00:01Z"},` + repo + `}`,
		wantKind: KindPullRequest, wantReason: stablev1.ReasonPullRequestMerged, wantAction: stablev1.ActionMerged,
		wantTime: "2026-01-02T10:00:01Z", wantSource: TimeFromUpdatedAt,
		check: func(t *testing.T, ch Change) {
			if ch.PullRequest.State != stablev1.PullRequestMerged || !ch.PullRequest.Merged {
				t.Errorf("state = %s merged = %v", ch.PullRequest.State, ch.PullRequest.Merged)
			}
		},
	}, {
		name:      "labeled pull request is an update",
		eventType: "pull_request",
		payload:   `{"action":"labeled","pull_request":{"number":7,"state":"open","updated_at":"2026-01-01T10:00:00Z"},` + repo + `}`,
		wantKind:  KindPullRequest, wantReason: stablev1.ReasonPullRequestUpdated, wantAction: "labeled",
		wantTime: "2026-01-01T10:00:00Z", wantSource: TimeFromUpdatedAt,
	}, {
		name:      "forced push to a branch",
		eventType: "push",
		payload: `{"ref":"refs/heads/feature/x","after":"def","forced":true,"commits":[{"id":"def"}],
			"repository":{"full_name":"octo/hello","pushed_at":1767261600},"sender":{"login":"bob"}}`,
		wantKind: KindBranch, wantReason: stablev1.ReasonBranchPushed, wantAction: stablev1.ActionPushed,
		wantTime: "2026-01-01T10:00:00Z", wantSource: TimeFromPushedAt,
		check: func(t *testing.T, ch Change) {
			b := ch.Branch
			if b.Name != "feature/x" || b.HeadSHA != "def" || !b.Forced || b.Commits != 1 {
				t.Errorf("unexpected branch %+v", b)
			}
			if want := "bob force-pushed 1 commit to branch feature/x in octo/hello (head def)"; ch.Message() != want {
				t.Errorf("message = %q, want %q", ch.Message(), want)
			}
		},
	}, {
		name:      "push without pushed_at falls back to the head commit",
		eventType: "push",
		payload: `{"ref":"refs/heads/main","after":"def","head_commit":{"timestamp":"2026-01-01T11:00:00+01:00"},
			"repository":{"full_name":"octo/hello"}}`,
		wantKind: KindBranch, wantReason: stablev1.ReasonBranchPushed, wantAction: stablev1.ActionPushed,
		wantTime: "2026-01-01T10:00:00Z", wantSource: TimeFromHeadCommit,
	}, {
		name:      "push deleting a branch",
		eventType: "push",
		payload: `{"ref":"refs/heads/old","deleted":true,"after":"0000000000000000000000000000000000000000",
			"repository":{"full_name":"octo/hello","pushed_at":1767261600}}`,
		wantKind: KindBranch, wantReason: stablev1.ReasonBranchDeleted, wantAction: stablev1.ActionDeleted,
		wantTime: "2026-01-01T10:00:00Z", wantSource: TimeFromPushedAt,
		check: func(t *testing.T, ch Change) {
			if ch.Branch.HeadSHA != "" {
				t.Errorf("deleted branch keeps head %q", ch.Branch.HeadSHA)
			}
		},
	}, {
		name:      "created branch without pushed_at uses the cloudevent time",
		eventType: "create",
		payload:   `{"ref":"feature/y","ref_type":"branch","sender":{"login":"carol"},` + repo + `}`,
		wantKind:  KindBranch, wantReason: stablev1.ReasonBranchCreated, wantAction: stablev1.ActionCreated,
		wantTime: "2026-01-03T00:00:00Z", wantSource: TimeFromCloudEvent,
		check: func(t *testing.T, ch Change) {
			if want := "carol created branch feature/y in octo/hello"; ch.Message() != want {
				t.Errorf("message = %q, want %q", ch.Message(), want)
			}
		},
	}, {
		name:      "deleted branch uses the repository's pushed_at",
		eventType: "delete",
		payload:   `{"ref":"feature/y","ref_type":"branch","repository":{"full_name":"octo/hello","pushed_at":"2026-01-02T10:00:00Z"}}`,
		wantKind:  KindBranch, wantReason: stablev1.ReasonBranchDeleted, wantAction: stablev1.ActionDeleted,
		wantTime: "2026-01-02T10:00:00Z", wantSource: TimeFromPushedAt,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustEvent(t, tt.eventType, tt.payload)
			if tt.eventType == "create" || tt.eventType == "delete" {
				e.SetTime(time.Date(2026, 1, 3, 0, 0, 0, 500, time.UTC))
			}
			ch, err := Parse(e, received)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ch.Ignored != "" || ch.Kind() != tt.wantKind || ch.Reason() != tt.wantReason || ch.Action() != tt.wantAction {
				t.Errorf("ignored=%q kind=%q reason=%q action=%q", ch.Ignored, ch.Kind(), ch.Reason(), ch.Action())
			}
			if got := ch.OccurredAt.Format(time.RFC3339); got != tt.wantTime || ch.TimeSource != tt.wantSource {
				t.Errorf("time = %s from %s, want %s from %s", got, ch.TimeSource, tt.wantTime, tt.wantSource)
			}
			if ch.Repository != "octo/hello" || ch.DeliveryID != "delivery-1" {
				t.Errorf("repository=%q delivery=%q", ch.Repository, ch.DeliveryID)
			}
			if tt.check != nil {
				tt.check(t, ch)
			}
		})
	}
}

func TestParse_AcknowledgesWhatItDoesNotRecord(t *testing.T) {
	tests := []struct{ name, eventType, payload, want string }{
		{"tag created", "create", `{"ref":"v1","ref_type":"tag",` + repo + `}`, "create of a tag"},
		{"tag deleted", "delete", `{"ref":"v1","ref_type":"tag",` + repo + `}`, "delete of a tag"},
		{"tag pushed", "push", `{"ref":"refs/tags/v1",` + repo + `}`, "not a branch"},
		{"ping", "ping", `{"zen":"Keep it simple","hook_id":1,` + repo + `}`, "ping"},
		{"other GitHub event", "watch", `{"action":"started",` + repo + `}`, "not recorded"},
		{"GitHub event go-github does not know", "brand_new_thing", `{}`, "not recorded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := Parse(mustEvent(t, tt.eventType, tt.payload), received)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !strings.Contains(ch.Ignored, tt.want) || ch.Kind() != "" {
				t.Errorf("ignored = %q kind = %q, want ignored containing %q", ch.Ignored, ch.Kind(), tt.want)
			}
		})
	}
}

func TestParse_RefusesWhatCanNeverSucceed(t *testing.T) {
	tests := []struct {
		name, eventType, payload string
		want                     error
	}{
		{"malformed JSON", "pull_request", `{"action":`, ErrMalformed},
		{"wrong JSON type", "pull_request", `{"action":"opened","number":"seven"}`, ErrMalformed},
		{"empty body", "push", ``, ErrMalformed},
		{"invalid UTF-8", "create", "{\"ref\":\"a\xff\",\"ref_type\":\"branch\",\"repository\":{\"full_name\":\"o/r\"}}", ErrMalformed},
		{"push payload sent as pull_request", "pull_request", `{"ref":"refs/heads/x",` + repo + `}`, ErrMismatch},
		{"pull request without number", "pull_request", `{"action":"opened","pull_request":{"state":"open","updated_at":"2026-01-01T10:00:00Z"},` + repo + `}`, ErrMismatch},
		{"pull request without updated_at", "pull_request", `{"action":"opened","pull_request":{"number":1,"state":"open"},` + repo + `}`, ErrMismatch},
		{"pull request in unknown state", "pull_request", `{"action":"opened","pull_request":{"number":1,"state":"weird","updated_at":"2026-01-01T10:00:00Z"},` + repo + `}`, ErrMismatch},
		{"create without ref_type", "create", `{"ref":"x",` + repo + `}`, ErrMismatch},
		{"push without repository", "push", `{"ref":"refs/heads/x"}`, ErrNoRepository},
		{"pull request without repository", "pull_request", `{"action":"opened","pull_request":{"number":1,"state":"open","updated_at":"2026-01-01T10:00:00Z"}}`, ErrNoRepository},
		{"repository not owner/name", "delete", `{"ref":"x","ref_type":"branch","repository":{"full_name":"just-a-name"}}`, ErrNoRepository},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(mustEvent(t, tt.eventType, tt.payload), received)
			if !errors.Is(err, tt.want) || !IsInvalid(err) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParse_RefusesEventsThatAreNotGitHubs(t *testing.T) {
	e := mustEvent(t, "push", `{}`)
	e.SetType("com.example.something")
	if _, err := Parse(e, received); !errors.Is(err, ErrUnknownType) {
		t.Errorf("err = %v, want ErrUnknownType", err)
	}
	e = mustEvent(t, "push", `{}`)
	e.SetDataContentType("text/plain")
	if _, err := Parse(e, received); !errors.Is(err, ErrMalformed) {
		t.Errorf("text/plain: err = %v, want ErrMalformed", err)
	}
}

func TestNewCloudEvent_ShapesEventsLikeTheGitHubSourceAdapter(t *testing.T) {
	tests := []struct{ eventType, payload, wantSubject string }{
		{"pull_request", `{"action":"opened","number":7,"pull_request":{"number":7},` + repo + `}`, "7"},
		{"push", `{"ref":"refs/heads/x","compare":"https://github.com/octo/hello/compare/a10867b14bb7...000000000000",` + repo + `}`, "a10867b14bb7...000000000000"},
		{"create", `{"ref":"x","ref_type":"branch",` + repo + `}`, "branch"},
		{"delete", `{"ref":"v1","ref_type":"tag",` + repo + `}`, "tag"},
		{"ping", `{"hook_id":42,` + repo + `}`, "42"},
	}
	for _, tt := range tests {
		t.Run(tt.eventType, func(t *testing.T) {
			e := mustEvent(t, tt.eventType, tt.payload)
			if e.Type() != TypePrefix+tt.eventType || e.ID() != "delivery-1" || e.Source() != "https://github.com/octo/hello" ||
				e.Subject() != tt.wantSubject || e.DataContentType() != event.ApplicationJSON || string(e.Data()) != tt.payload {
				t.Errorf("unexpected event %s", e)
			}
		})
	}
	if _, err := NewRawCloudEvent("push", "", []byte(`{}`)); err == nil {
		t.Error("an event without a delivery id was built")
	}
}

// adapterEvent shapes payload as the GitHubSource adapter delivers it.
func adapterEvent(t *testing.T, eventType, payload string) event.Event {
	t.Helper()
	e, err := ghsource.FromWebhook("", eventType, "delivery-1", []byte(payload))
	if err != nil {
		t.Fatalf("adapter shape: %v", err)
	}
	return e
}

func TestParse_ReadsTheGitHubSourceAdaptersShape(t *testing.T) {
	const owner = `"owner":{"login":"octo"},"name":"hello","full_name":"octo/hello"`
	tests := []struct {
		name, eventType, payload string
		wantAction               string
		wantTime                 string
		wantSource               TimeSource
		wantDraft                *bool
	}{{
		name:      "branch-deleting push: null head_commit arrives as a zero-valued object",
		eventType: "push",
		payload: `{"ref":"refs/heads/old","deleted":true,"after":"0000000000000000000000000000000000000000","head_commit":null,"commits":[],
			"repository":{` + owner + `,"pushed_at":1767261600}}`,
		wantAction: stablev1.ActionDeleted, wantTime: "2026-01-01T10:00:00Z", wantSource: TimeFromPushedAt,
	}, {
		name:      "push without pushed_at or head_commit falls back to the CloudEvent time",
		eventType: "push",
		payload:   `{"ref":"refs/heads/old","deleted":true,"head_commit":null,"repository":{` + owner + `}}`,
		// pushed_at 0 (absent in the v5 struct) means absent, not 1970.
		wantAction: stablev1.ActionDeleted, wantTime: "2026-01-03T00:00:00Z", wantSource: TimeFromCloudEvent,
	}, {
		name:      "opened draft: the adapter drops draft, so it is unknown",
		eventType: "pull_request",
		payload: `{"action":"opened","number":3,"pull_request":{"number":3,"state":"open","draft":true,
			"created_at":"2026-01-01T10:00:00Z","updated_at":"2026-01-01T10:00:00Z","closed_at":null,"merged_at":null},"repository":{` + owner + `}}`,
		wantAction: "opened", wantTime: "2026-01-01T10:00:00Z", wantSource: TimeFromUpdatedAt, wantDraft: nil,
	}, {
		name:      "converted_to_draft says draft without a draft field",
		eventType: "pull_request",
		payload: `{"action":"converted_to_draft","number":3,"pull_request":{"number":3,"state":"open",
			"created_at":"2026-01-01T10:00:00Z","updated_at":"2026-01-01T11:00:00Z"},"repository":{` + owner + `}}`,
		wantAction: "converted_to_draft", wantTime: "2026-01-01T11:00:00Z", wantSource: TimeFromUpdatedAt, wantDraft: github.Bool(true),
	}, {
		name:      "ready_for_review says not draft",
		eventType: "pull_request",
		payload: `{"action":"ready_for_review","number":3,"pull_request":{"number":3,"state":"open",
			"created_at":"2026-01-01T10:00:00Z","updated_at":"2026-01-01T12:00:00Z"},"repository":{` + owner + `}}`,
		wantAction: "ready_for_review", wantTime: "2026-01-01T12:00:00Z", wantSource: TimeFromUpdatedAt, wantDraft: github.Bool(false),
	}, {
		name:       "branch created, pushed_at as GitHub's string",
		eventType:  "create",
		payload:    `{"ref":"feature/y","ref_type":"branch","repository":{` + owner + `,"pushed_at":"2026-01-02T10:00:00Z"}}`,
		wantAction: stablev1.ActionCreated, wantTime: "2026-01-02T10:00:00Z", wantSource: TimeFromPushedAt,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := adapterEvent(t, tt.eventType, tt.payload)
			e.SetTime(time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)) // the adapter's send time
			ch, err := Parse(e, received)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ch.Action() != tt.wantAction || ch.Repository != "octo/hello" {
				t.Errorf("action %q repository %q", ch.Action(), ch.Repository)
			}
			if got := ch.OccurredAt.Format(time.RFC3339); got != tt.wantTime || ch.TimeSource != tt.wantSource {
				t.Errorf("time = %s from %s, want %s from %s", got, ch.TimeSource, tt.wantTime, tt.wantSource)
			}
			if ch.PullRequest != nil {
				if got := ch.PullRequest.Draft; (got == nil) != (tt.wantDraft == nil) || (got != nil && *got != *tt.wantDraft) {
					t.Errorf("draft = %v, want %v", got, tt.wantDraft)
				}
				if !ch.PullRequest.MergedAt.IsZero() || !ch.PullRequest.ClosedAt.IsZero() {
					t.Errorf("absent times read as %v / %v", ch.PullRequest.MergedAt, ch.PullRequest.ClosedAt)
				}
			}
		})
	}
}

func TestParse_AcknowledgesUnrecordedTypesWithoutReadingThem(t *testing.T) {
	// A zero-valued object in the adapter's shape of another type must not
	// make an unrecorded delivery fail.
	ch, err := Parse(mustEvent(t, "commit_comment", `{"comment":{"created_at":""},`+repo+`}`), received)
	if err != nil || ch.Ignored == "" {
		t.Fatalf("ignored=%q err=%v", ch.Ignored, err)
	}
	if _, err := Parse(mustEvent(t, "commit_comment", `{"comment":`), received); !errors.Is(err, ErrMalformed) {
		t.Fatalf("broken JSON of an unrecorded type: err = %v, want ErrMalformed", err)
	}
}
