package githubevent

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/liatrio/gitpulse/internal/ghsource"
)

// TestSlimPullRequest_ReadsAsGoGithub: the slim decode of a pull_request
// payload makes the same Change as go-github's whole PullRequestEvent, for
// every @octokit/webhooks-examples payload and the fuzz seeds, in GitHub's
// own shape and in the GitHubSource adapter's; and refuses what it refuses.
func TestSlimPullRequest_ReadsAsGoGithub(t *testing.T) {
	payloads := [][]byte{
		[]byte(`{"action":"opened","pull_request":{"number":1,"state":"open","updated_at":"2026-01-01T10:00:00Z"},"repository":{"full_name":"o/r"}}`),
		[]byte(`{"action":"converted_to_draft","pull_request":{"number":2,"state":"open","draft":true,"updated_at":"2026-01-01T10:00:00Z"},"repository":{"full_name":"o/r"}}`),
		[]byte(`{"action":"closed","number":3,"pull_request":{"state":"closed","merged":true,"merged_at":1767261600,"updated_at":1767261600},"repository":{"id":7,"full_name":"o/r"},"sender":{"login":"s"}}`),
		[]byte(`{"action":"opened","number":"seven"}`),
		[]byte(`{"action":"opened","pull_request":{"number":1,"head":{"ref":7}},"repository":{"full_name":"o/r"}}`),
		[]byte(`{"action":"opened","pull_request":null,"repository":null,"sender":null}`),
	}
	readsAsGoGithub(t, "pull_request", payloads, parsePullRequestEvent, readPullRequest)
}

func readPullRequest(parse func([]byte) (any, error), data []byte) (Change, error) {
	p, err := parse(data)
	if err != nil {
		return Change{}, err
	}
	ch := Change{DeliveryID: "d", Event: "pull_request", OccurredAt: time.Unix(0, 0)}
	err = ch.fromPullRequest(p.(*github.PullRequestEvent))
	return ch, err
}

// TestSlimPullRequestReview_ReadsAsGoGithub: the same for a
// pull_request_review payload and go-github's whole PullRequestReviewEvent.
func TestSlimPullRequestReview_ReadsAsGoGithub(t *testing.T) {
	payloads := [][]byte{
		[]byte(`{"action":"submitted","review":{"id":1,"state":"APPROVED","submitted_at":"2026-01-01T10:00:00Z","user":{"login":"r"}},"pull_request":{"number":1,"state":"open","updated_at":"2026-01-01T09:00:00Z"},"repository":{"id":7,"full_name":"o/r"},"sender":{"login":"s"}}`),
		[]byte(`{"action":"dismissed","review":{"id":2,"state":"dismissed","submitted_at":1767261600},"pull_request":{"number":2,"state":"closed","merged":true,"merged_at":1767261600},"repository":{"full_name":"o/r"}}`),
		[]byte(`{"action":"edited","review":{"id":3,"state":"commented"},"pull_request":{"number":3,"updated_at":"2026-01-01T09:00:00Z"},"repository":{"full_name":"o/r"}}`),
		[]byte(`{"action":"submitted","review":{"id":"four"},"pull_request":{"number":4},"repository":{"full_name":"o/r"}}`),
		[]byte(`{"action":"submitted","review":{"id":5,"user":{"login":7}},"pull_request":{"number":5},"repository":{"full_name":"o/r"}}`),
		[]byte(`{"action":"submitted","review":null,"pull_request":null,"repository":null,"sender":null}`),
		[]byte(`{"action":"requested","review":{"id":6},"pull_request":{"number":6},"repository":{"full_name":"o/r"}}`),
	}
	readsAsGoGithub(t, "pull_request_review", payloads, parsePullRequestReviewEvent, readReview)
}

func readReview(parse func([]byte) (any, error), data []byte) (Change, error) {
	p, err := parse(data)
	if err != nil {
		return Change{}, err
	}
	ch := Change{DeliveryID: "d", Event: "pull_request_review", OccurredAt: time.Unix(0, 0)}
	err = ch.fromReview(p.(*github.PullRequestReviewEvent))
	return ch, err
}

// readsAsGoGithub checks that slim and go-github's whole struct, each read
// into a Change by read, give the same Change of every payload and of every
// octokit example of eventType, in GitHub's shape and in the adapter's, and
// refuse the same ones.
func readsAsGoGithub(t *testing.T, eventType string, payloads [][]byte, slim func([]byte) (any, error),
	read func(parse func([]byte) (any, error), data []byte) (Change, error)) {
	t.Helper()
	for _, p := range octokitExamples(t, eventType) {
		payloads = append(payloads, p)
	}
	full := func(data []byte) (any, error) { return github.ParseWebHook(eventType, data) }
	compared := 0
	for i, p := range payloads {
		shapes := [][]byte{p}
		if e, err := ghsource.FromWebhook("", eventType, "d", p); err == nil {
			shapes = append(shapes, e.Data())
		}
		for j, data := range shapes {
			a, errA := read(full, data)
			b, errB := read(slim, data)
			if (errA == nil) != (errB == nil) {
				t.Fatalf("payload %d shape %d: go-github err %v, slim err %v", i, j, errA, errB)
			}
			if !reflect.DeepEqual(a, b) {
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				t.Fatalf("payload %d shape %d:\ngo-github %s\nslim      %s", i, j, ja, jb)
			}
			compared++
		}
	}
	t.Logf("%d payloads read alike", compared)
}
