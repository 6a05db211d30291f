package githubevent

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-github/v60/github"
)

// NewRawCloudEvent builds a CloudEvent whose data is the webhook body exactly
// as GitHub sent it ("raw shape"), with the attributes the Knative
// GitHubSource receive adapter sets: type dev.knative.source.github.<event>,
// id the X-GitHub-Delivery GUID, source https://github.com/<owner>/<repo>,
// the adapter's subject, content type application/json.
//
// A cluster never delivers this shape: the adapter re-encodes the payload
// (internal/ghsource builds that "adapter shape"). The recorder accepts both,
// so that other sources of GitHub CloudEvents work too, and the tests replay
// every payload in both shapes.
func NewRawCloudEvent(eventType, deliveryID string, payload []byte) (event.Event, error) {
	e := event.New(event.CloudEventsVersionV1)
	e.SetID(deliveryID)
	e.SetType(TypePrefix + eventType)
	var head struct {
		Repository struct {
			FullName string `json:"full_name"`
			HTMLURL  string `json:"html_url"`
		} `json:"repository"`
	}
	// The source is best effort: a payload the recorder will refuse still
	// makes an event, so that the refusal can be tested end to end.
	_ = json.Unmarshal(payload, &head)
	source := "https://github.com/"
	switch {
	case head.Repository.HTMLURL != "":
		source = head.Repository.HTMLURL
	case head.Repository.FullName != "":
		source += head.Repository.FullName
	}
	e.SetSource(source)
	if subject := subject(eventType, payload); subject != "" {
		e.SetSubject(subject)
	}
	if err := e.SetData(event.ApplicationJSON, payload); err != nil {
		return event.Event{}, fmt.Errorf("setting event data: %w", err)
	}
	if err := e.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("building event %s/%s: %w", eventType, deliveryID, err)
	}
	return e, nil
}

// subject mirrors the adapter's choice of subject per event type.
func subject(eventType string, payload []byte) string {
	parsed, err := github.ParseWebHook(eventType, payload)
	if err != nil {
		return ""
	}
	switch p := parsed.(type) {
	case *github.PullRequestEvent:
		return strconv.Itoa(p.GetPullRequest().GetNumber())
	case *github.PushEvent:
		c := p.GetCompare()
		return c[strings.LastIndex(c, "/")+1:]
	case *github.CreateEvent:
		return p.GetRefType()
	case *github.DeleteEvent:
		return p.GetRefType()
	case *github.PingEvent:
		return strconv.FormatInt(p.GetHookID(), 10)
	case *github.PullRequestReviewEvent:
		return strconv.FormatInt(p.GetReview().GetID(), 10)
	case *github.DeploymentEvent:
		return strconv.FormatInt(p.GetDeployment().GetID(), 10)
	case *github.DeploymentStatusEvent:
		return strconv.FormatInt(p.GetDeployment().GetID(), 10)
	}
	return ""
}
