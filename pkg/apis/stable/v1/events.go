package v1

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// EventNamePrefix begins the name of a delivery's Event, which is the
// prefix and the delivery id (pkg/naming.EventName).
const EventNamePrefix = "delivery-"

// DeliveryID is the delivery id a delivery's Event records: its name after
// EventNamePrefix or, for an id its name could not carry as it stands
// (pkg/naming.EventName lower-cases, replaces and shortens, then adds a
// hash), its AnnotationDeliveryID. The recorder writes the annotation only
// then, so that no Event says its id twice; GitHub's ids are lower-case
// GUIDs, which a name carries as they stand. It is "" for an Event that is
// not a delivery's (not the recorder's ReportingController).
func DeliveryID(ev *corev1.Event) string {
	if ev.ReportingController != ReportingController {
		return ""
	}
	if id, ok := ev.Annotations[AnnotationDeliveryID]; ok {
		return id
	}
	if id, ok := strings.CutPrefix(ev.Name, EventNamePrefix); ok {
		return id
	}
	return ""
}
