package reconcile

// PingEventType is the type every Knative PingSource event has (eventing
// pkg/apis/sources/v1/ping_lifecycle.go PingSourceEventType; a PingSource
// cannot override it, its ceOverrides set extensions only). In a cluster
// config/'s PingSource triggers passes with it, so the recorder treats it
// as EventType.
const PingEventType = "dev.knative.sources.ping"

// IsTrigger reports whether a CloudEvent type asks for a pass.
func IsTrigger(eventType string) bool { return eventType == EventType || eventType == PingEventType }
