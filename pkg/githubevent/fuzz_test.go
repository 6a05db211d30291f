package githubevent

import (
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/liatrio/gitpulse/internal/ghsource"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// FuzzParse feeds arbitrary event types and payloads through the
// payload -> Change translation. It must never panic, must refuse only with
// the documented 4xx errors, and every Change it accepts must be one the
// recorder can write: valid object names, a known reason, a non-empty
// action, an order time in whole seconds. The checked-in seed corpus
// (testdata/fuzz/FuzzParse) holds one small payload per shape.
func FuzzParse(f *testing.F) {
	f.Add("pull_request", []byte(`{"action":"opened","pull_request":{"number":1,"state":"open","updated_at":"2026-01-01T10:00:00Z"},"repository":{"full_name":"o/r"}}`))
	f.Add("push", []byte(`{"ref":"refs/heads/x","deleted":true,"after":"0000","head_commit":null,"commits":[],"repository":{"full_name":"o/r","pushed_at":1767261600}}`))
	f.Add("pull_request", []byte(`{"action":"converted_to_draft","pull_request":{"number":2,"state":"open","draft":true,"updated_at":"2026-01-01T10:00:00Z"},"repository":{"full_name":"o/r"}}`))
	f.Add("pull_request_review", []byte(`{"action":"submitted","review":{"id":1,"state":"approved","submitted_at":"2026-01-01T10:00:00Z"},"pull_request":{"number":2,"state":"open"},"repository":{"full_name":"o/r"}}`))
	f.Add("deployment_status", []byte(`{"deployment":{"id":3,"environment":"production","ref":"main","sha":"abc","created_at":"2026-01-01T10:00:00Z"},"deployment_status":{"id":4,"state":"success","created_at":"2026-01-01T10:01:00Z"},"repository":{"full_name":"o/r"}}`))
	f.Fuzz(func(t *testing.T, eventType string, payload []byte) {
		raw, rawOK := fuzzParse(t, func() (event.Event, error) { return NewRawCloudEvent(eventType, "fuzz-delivery", payload) })
		// The same delivery as the GitHubSource adapter would shape it.
		adapted, adaptedOK := fuzzParse(t, func() (event.Event, error) {
			return ghsource.FromWebhook("", eventType, "fuzz-delivery", payload)
		})
		if rawOK && adaptedOK && raw.Ignored == "" {
			if adapted.Kind() != raw.Kind() || adapted.Action() != raw.Action() || adapted.Repository != raw.Repository {
				t.Fatalf("the adapter's shape reads differently: raw %s %s %s, adapter %s %s %s",
					raw.Kind(), raw.Action(), raw.Repository, adapted.Kind(), adapted.Action(), adapted.Repository)
			}
		}
	})
}

// fuzzParse parses the event build makes and checks every invariant of an
// accepted Change; it reports whether there was one.
func fuzzParse(t *testing.T, build func() (event.Event, error)) (Change, bool) {
	t.Helper()
	{
		e, err := build()
		if err != nil {
			return Change{}, false // not an event the adapter could have sent
		}
		ch, err := Parse(e, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			if !IsInvalid(err) {
				t.Fatalf("error %v is not one of the documented refusals", err)
			}
			return Change{}, false
		}
		if ch.DeliveryID != "fuzz-delivery" || ch.OccurredAt.IsZero() || !ch.OccurredAt.Equal(ch.OccurredAt.Truncate(time.Second)) {
			t.Fatalf("bad identity or time: %+v", ch)
		}
		set := 0
		if ch.PullRequest != nil {
			set++
		}
		if ch.Branch != nil {
			set++
		}
		if ch.Review != nil {
			set++
		}
		if ch.Deployment != nil {
			set++
		}
		if ch.Ignored != "" {
			if ch.Kind() != "" || ch.Reason() != "" {
				t.Fatalf("ignored change has kind %q reason %q", ch.Kind(), ch.Reason())
			}
			return ch, true
		}
		if set != 1 {
			t.Fatalf("change is about %d objects: %+v", set, ch)
		}
		if err := checkRepository(ch.Repository); err != nil {
			t.Fatalf("accepted repository %q: %v", ch.Repository, err)
		}
		if ch.Reason() == "" || ch.Action() == "" || ch.Message() == "" {
			t.Fatalf("reason %q action %q message %q", ch.Reason(), ch.Action(), ch.Message())
		}
		var name string
		switch {
		case ch.PullRequest != nil:
			pr := ch.PullRequest
			if pr.Number <= 0 {
				t.Fatalf("pull request number %d", pr.Number)
			}
			switch pr.State {
			case stablev1.PullRequestOpen, stablev1.PullRequestClosed, stablev1.PullRequestMerged:
			default:
				t.Fatalf("pull request state %q", pr.State)
			}
			name = naming.PullRequestName(ch.Repository, ch.RepositoryID, pr.Number)
		case ch.Branch != nil:
			if ch.Branch.Name == "" {
				t.Fatal("branch without a name")
			}
			if _, ok := branchReasons[ch.Branch.Action]; !ok {
				t.Fatalf("branch action %q", ch.Branch.Action)
			}
			name = naming.BranchName(ch.Repository, ch.RepositoryID, ch.Branch.Name)
		case ch.Review != nil:
			if ch.Review.PullRequest.Number <= 0 || !slices.Contains(stablev1.ReviewActions, ch.Action()) {
				t.Fatalf("review of #%d with action %q", ch.Review.PullRequest.Number, ch.Action())
			}
			name = naming.PullRequestName(ch.Repository, ch.RepositoryID, ch.Review.PullRequest.Number)
		case ch.Deployment != nil:
			if ch.Deployment.ID <= 0 || checkEnvironment(ch.Deployment.Environment) != nil || len(ch.Action()) > 40 {
				t.Fatalf("deployment %d environment %q action %q", ch.Deployment.ID, ch.Deployment.Environment, ch.Action())
			}
			name = naming.DeploymentName(ch.Repository, ch.RepositoryID, ch.Deployment.ID)
		}
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Fatalf("object name %q: %v", name, errs)
		}
		if errs := validation.IsDNS1123Subdomain(naming.EventName(ch.DeliveryID)); len(errs) > 0 {
			t.Fatalf("event name: %v", errs)
		}
		return ch, true
	}
}
