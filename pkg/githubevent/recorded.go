package githubevent

import "slices"

// RecordedEvents are the GitHub event types (X-GitHub-Event, and the
// CloudEvent type after TypePrefix) whose deliveries the recorder records.
// It is the one list the parser, the reconcile pass's redelivery, the root
// func.yaml's subscriptions, config/eventing/githubsource.yaml's eventTypes
// and the docs follow; test/deploy fails when one of them drifts.
var RecordedEvents = []string{
	"pull_request", "push", "create", "delete", "pull_request_review", "deployment", "deployment_status",
}

// EventPing is GitHub's hook test: delivered to every new webhook, parsed and
// acknowledged without effect, so a failed one is not worth asking for again.
const EventPing = "ping"

// Records reports whether the recorder records deliveries of the GitHub
// event type t.
func Records(t string) bool { return slices.Contains(RecordedEvents, t) }
