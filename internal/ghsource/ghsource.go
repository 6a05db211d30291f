// Package ghsource reproduces, field for field, what the Knative GitHubSource
// receive adapter does with one GitHub webhook delivery, for what must build
// adapter-shaped CloudEvents without HTTP: the recorder and reconcile tests,
// the benchmarks, fuzzing, and the direct-mode intake (GITPULSE_EVENTING=off).
// Where webhooks enter `make run`, `make demo` and the end-to-end tests, the
// real adapter runs (internal/ghadapter); adapter_test.go pins this package
// to it, example by example.
//
// Read from knative-extensions/eventing-github:
//   - pkg/common/handler.go: Handler.ServeHTTP parses the request with
//     gopkg.in/go-playground/webhooks.v5's github.Webhook.Parse restricted to
//     ValidEvents (404 for ErrEventNotFound, 400 for every other error), and
//     handleEvent builds the CloudEvent: id = X-GitHub-Delivery, type =
//     dev.knative.source.github.<X-GitHub-Event>, source = the adapter's
//     source, subject and extensions from SubjectAndExtensionsFromGitHubEvent,
//     data = json.Marshal of the v5 payload struct (application/json). It
//     answers 400 with the error when the sink does not acknowledge, and 202
//     "accepted" when it does.
//   - pkg/common/events.go: ValidEvents and SubjectAndExtensionsFromGitHubEvent.
//   - pkg/adapter/adapter.go: source = GitHubEventSource(GITHUB_OWNER_REPO),
//     that is https://github.com/<spec.ownerAndRepository>.
//
// Because the data is the v5 struct re-encoded, fields the structs lack are
// dropped (pull_request.draft), null objects become zero-valued objects
// (head_commit of a branch-deleting push), nil slices become null and absent
// time.Time fields become "0001-01-01T00:00:00Z". The recorder must read that
// shape correctly; pkg/githubevent documents how.
package ghsource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	gh "gopkg.in/go-playground/webhooks.v5/github"
)

// TypePrefix and SourcePrefix are eventing-github's GitHubEventTypePrefix
// and GitHubEventSourcePrefix (pkg/apis/sources/v1alpha1/githubsource_types.go).
const (
	TypePrefix   = "dev.knative.source.github."
	SourcePrefix = "https://github.com/"
)

// The adapter's own answers to GitHub (pkg/common/handler.go).
var (
	// ErrEventNotFound: the X-GitHub-Event is not one of ValidEvents; the
	// adapter answers 404.
	ErrEventNotFound = gh.ErrEventNotFound
	// ErrMissingHeader: X-GitHub-Event or X-GitHub-Delivery is not set; 400.
	ErrMissingHeader = errors.New("header is not set")
)

// ValidEvents is eventing-github's common.ValidEvents: the only GitHub event
// types the adapter accepts.
var ValidEvents = []gh.Event{
	gh.CheckRunEvent, gh.CheckSuiteEvent, gh.CommitCommentEvent, gh.CreateEvent, gh.DeleteEvent,
	gh.DeploymentEvent, gh.DeploymentStatusEvent, gh.ForkEvent, gh.GollumEvent, gh.InstallationEvent,
	gh.InstallationRepositoriesEvent, gh.IntegrationInstallationEvent, gh.IntegrationInstallationRepositoriesEvent,
	gh.IssueCommentEvent, gh.IssuesEvent, gh.LabelEvent, gh.MemberEvent, gh.MembershipEvent, gh.MilestoneEvent,
	gh.OrganizationEvent, gh.OrgBlockEvent, gh.PageBuildEvent, gh.PingEvent, gh.ProjectCardEvent,
	gh.ProjectColumnEvent, gh.ProjectEvent, gh.PublicEvent, gh.PullRequestEvent, gh.PullRequestReviewCommentEvent,
	gh.PullRequestReviewEvent, gh.PushEvent, gh.ReleaseEvent, gh.RepositoryEvent,
	gh.RepositoryVulnerabilityAlertEvent, gh.SecurityAdvisoryEvent, gh.StatusEvent, gh.TeamAddEvent,
	gh.TeamEvent, gh.WatchEvent,
}

// Source is the CloudEvent source of a GitHubSource whose
// spec.ownerAndRepository is ownerAndRepository ("owner/repo" or "org").
func Source(ownerAndRepository string) string { return SourcePrefix + ownerAndRepository }

// Parse parses a delivery body exactly as the adapter's Hook.Parse does
// (same library, same accepted events). The adapter's hook is built with the
// GitHubSource's secret and checks the SHA-1 X-Hub-Signature; gitpulse's
// direct-mode intake checks the SHA-256 signature itself before calling
// Parse, so no secret is given here.
func Parse(eventType string, body []byte) (any, error) {
	req := &http.Request{
		Method: http.MethodPost,
		Header: http.Header{"X-Github-Event": []string{eventType}},
		Body:   io.NopCloser(bytes.NewReader(body)),
	}
	hook, err := gh.New()
	if err != nil {
		return nil, err
	}
	return hook.Parse(req, ValidEvents...)
}

// NewEvent builds the CloudEvent handleEvent sends for a parsed payload.
// The adapter's CloudEvents client stamps the time when it sends (knative's
// adapter client defaults it), so NewEvent sets it to now.
func NewEvent(source, eventType, deliveryID string, payload any) (event.Event, error) {
	if eventType == "" {
		return event.Event{}, fmt.Errorf("%q %w", "X-GitHub-Event", ErrMissingHeader)
	}
	if deliveryID == "" {
		return event.Event{}, fmt.Errorf("%q %w", "X-GitHub-Delivery", ErrMissingHeader)
	}
	subject, extensions := SubjectAndExtensions(payload)
	e := cloudevents.NewEvent()
	e.SetID(deliveryID)
	e.SetType(TypePrefix + eventType)
	e.SetSource(source)
	e.SetSubject(subject)
	for k, v := range extensions {
		e.SetExtension(k, v)
	}
	if err := e.SetData(cloudevents.ApplicationJSON, payload); err != nil {
		return event.Event{}, fmt.Errorf("failed to marshal event data: %w", err)
	}
	e.SetTime(time.Now())
	// The CloudEvents client validates before sending (sdk-go client.Send);
	// an extension out of range (SetExtension accepts int32 only) fails here
	// as it does there.
	if err := e.Validate(); err != nil {
		return event.Event{}, err
	}
	return e, nil
}

// FromWebhook is Parse followed by NewEvent. ownerAndRepository is the
// GitHubSource's spec.ownerAndRepository; when empty, the payload's own
// repository.full_name stands in for it (one GitHubSource per repository).
func FromWebhook(ownerAndRepository, eventType, deliveryID string, body []byte) (event.Event, error) {
	payload, err := Parse(eventType, body)
	if err != nil {
		return event.Event{}, err
	}
	if ownerAndRepository == "" {
		ownerAndRepository = repositoryOf(payload)
	}
	return NewEvent(Source(ownerAndRepository), eventType, deliveryID, payload)
}

// repositoryOf returns the payload's owner/name from the owner and
// repository extensions the adapter sets.
func repositoryOf(payload any) string {
	_, ext := SubjectAndExtensions(payload)
	owner, _ := ext["owner"].(string)
	repo, _ := ext["repository"].(string)
	if owner == "" || repo == "" {
		return strings.TrimSuffix(owner+"/"+repo, "/")
	}
	return owner + "/" + repo
}
