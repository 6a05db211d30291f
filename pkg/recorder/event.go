package recorder

import (
	"context"
	"fmt"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// maxMessageBytes is the API server's limit on an Event's message.
const maxMessageBytes = 1024

// deliveryEvent is a delivery's one Event. Its name is derived from the
// delivery id rather than generated (as tools/events and tools/record do),
// because exactly one Event per delivery is the contract: the API server's
// AlreadyExists is what makes a redelivered or concurrent copy a no-op.
// The name records the id (stablev1.DeliveryID reads it); only an id the
// name cannot carry as it stands is also written in an annotation.
func (r *Recorder) deliveryEvent(ch githubevent.Change, ref corev1.ObjectReference) *corev1.Event {
	name := naming.EventName(ch.DeliveryID)
	ev := r.event(ch, ref, name, ch.Message())
	if name != stablev1.EventNamePrefix+ch.DeliveryID {
		ev.Annotations[stablev1.AnnotationDeliveryID] = ch.DeliveryID
	}
	ev.Reason, ev.Action, ev.ReportingController = ch.Reason(), ch.Action(), stablev1.ReportingController
	return ev
}

// reconciledEvent is a reconcile pass's one Event for the object. Only the
// pass whose write applied the change writes it (a concurrent pass that
// read the same state finds the synthetic id in status.recentDeliveries); the
// name is the id's and the object's UID, so a retry of this pass gets
// AlreadyExists, while the same state written again into an object
// recreated after a deletion (drift repair) gets an Event of its own. Its
// reason and controller are ones the metrics function's delivery counters
// do not select.
func (r *Recorder) reconciledEvent(ch githubevent.Change, ref corev1.ObjectReference) *corev1.Event {
	ev := r.event(ch, ref, naming.EventName(ch.DeliveryID+"-"+uidPrefix(ref)), ch.Message()+" (from the GitHub API)")
	ev.Reason, ev.Action, ev.ReportingController = stablev1.ReasonReconciled, stablev1.ActionReconciled, stablev1.ReconcilerController
	return ev
}

// renamedEvent is the one Event saying that the object ref followed its
// repository from the name from to ch's (a rename or transfer on GitHub;
// the object keeps its own name). Its name is the change's delivery id and
// the object's UID, so a retry gets AlreadyExists.
func (r *Recorder) renamedEvent(ch githubevent.Change, ref corev1.ObjectReference, from string) *corev1.Event {
	ev := r.event(ch, ref, naming.EventName(ch.DeliveryID+"-renamed-"+uidPrefix(ref)),
		fmt.Sprintf("repository %s is now %s (GitHub repository id %d)", from, ch.Repository, ch.RepositoryID))
	ev.Reason, ev.Action, ev.ReportingController = stablev1.ReasonRenamed, stablev1.ActionRenamed, stablev1.ReconcilerController
	ev.Annotations[annotationRenamedFrom] = from
	return ev
}

// annotationRenamedFrom, on a Renamed Event, is the repository's former
// name.
const annotationRenamedFrom = stablev1.GroupName + "/renamed-from"

// event is what every Event the recorder writes says: about ref, in ch's
// repository (its labels select Events by repository), now, with message
// cut to what the API server takes; a deployment's carries its environment,
// which the metrics function counts deployments by.
//
// It is written as the events.k8s.io/v1 library writes a core Event:
// eventTime and the reporting fields, not the deprecated firstTimestamp,
// lastTimestamp, count and source.host, which say the same again (a
// recorder Event happens once; reportingInstance is the host) and cost
// the API server a field each on every write. kubectl shows eventTime where
// lastTimestamp is empty. source.component stays: it names the recorder to
// tools that select Events by source.
func (r *Recorder) event(ch githubevent.Change, ref corev1.ObjectReference, name, message string) *corev1.Event {
	now := r.opts.Now()
	for len(message) > maxMessageBytes {
		_, size := utf8.DecodeLastRuneInString(message)
		message = message[:len(message)-size]
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   r.opts.Namespace,
			Annotations: map[string]string{stablev1.AnnotationRepository: ch.Repository},
		},
		InvolvedObject:    ref,
		Message:           message,
		Type:              corev1.EventTypeNormal,
		Source:            corev1.EventSource{Component: stablev1.SourceComponent},
		ReportingInstance: r.opts.Instance,
		EventTime:         metav1.NewMicroTime(now),
	}
	if ch.Deployment != nil {
		ev.Annotations[stablev1.AnnotationEnvironment] = ch.Deployment.Environment
	}
	return ev
}

// createEvent writes ev; it reports false when the Event already existed.
func (r *Recorder) createEvent(ctx context.Context, ev *corev1.Event) (bool, error) {
	var err error
	if rc, ok := r.opts.Kube.CoreV1().RESTClient().(*rest.RESTClient); ok && rc != nil {
		// The typed client's Create, without decoding the Event the API
		// server answers: nothing reads it.
		err = rc.Post().Namespace(r.opts.Namespace).Resource("events").Body(ev).Do(ctx).Error()
	} else { // a fake clientset (unit tests) has no REST client
		_, err = r.opts.Kube.CoreV1().Events(r.opts.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	}
	switch {
	case apierrors.IsAlreadyExists(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("creating event %s: %w", ev.Name, err)
	}
	return true, nil
}

func uidPrefix(ref corev1.ObjectReference) string {
	uid := string(ref.UID)
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return uid
}
