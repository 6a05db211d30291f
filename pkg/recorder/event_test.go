package recorder

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// A delivery's Event and a reconcile pass's are built alike and differ
// only where the metrics function must tell them apart: name, reason,
// action, controller, the delivery id and the message's suffix.
func TestEvents_DeliveryAndReconciledDifferOnlyWhereCountersLook(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &Recorder{opts: Options{Namespace: "ns", Instance: "replica-1", Now: func() time.Time { return now }}}
	ref := corev1.ObjectReference{Kind: githubevent.KindGitHubDeployment, Name: "d", Namespace: "ns", UID: "0123456789abcdef"}
	ch := githubevent.Change{DeliveryID: "guid", Repository: "Octo/Hello", Sender: "alice",
		Deployment: &githubevent.DeploymentChange{ID: 9, Environment: "production",
			Status: &githubevent.DeploymentStatusChange{State: stablev1.DeploymentStateSuccess}}}
	apiCh := ch
	apiCh.DeliveryID = githubevent.ReconciledIDPrefix + "x"

	tests := []struct {
		name                            string
		ev                              *corev1.Event
		wantName, reason, action, ctrl  string
		wantDelivery, wantMessageSuffix string
	}{
		{"delivery", r.deliveryEvent(ch, ref), naming.EventName("guid"),
			stablev1.ReasonDeploymentSucceeded, stablev1.DeploymentStateSuccess, stablev1.ReportingController, "guid", "in Octo/Hello: success"},
		{"reconciled", r.reconciledEvent(apiCh, ref), naming.EventName(apiCh.DeliveryID + "-01234567"),
			stablev1.ReasonReconciled, stablev1.ActionReconciled, stablev1.ReconcilerController, "", "(from the GitHub API)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.ev
			if ev.Name != tt.wantName || ev.Namespace != "ns" {
				t.Errorf("name %s/%s, want ns/%s", ev.Namespace, ev.Name, tt.wantName)
			}
			if ev.Reason != tt.reason || ev.Action != tt.action || ev.ReportingController != tt.ctrl {
				t.Errorf("reason %q action %q controller %q, want %q %q %q", ev.Reason, ev.Action, ev.ReportingController, tt.reason, tt.action, tt.ctrl)
			}
			if got := stablev1.DeliveryID(ev); got != tt.wantDelivery {
				t.Errorf("delivery id %q, want %q", got, tt.wantDelivery)
			}
			if !strings.HasSuffix(ev.Message, tt.wantMessageSuffix) {
				t.Errorf("message %q, want it to end in %q", ev.Message, tt.wantMessageSuffix)
			}
			// What both say alike.
			if ev.Annotations[stablev1.AnnotationRepository] != "Octo/Hello" || ev.Annotations[stablev1.AnnotationEnvironment] != "production" {
				t.Errorf("annotations %v", ev.Annotations)
			}
			if len(ev.Labels) != 0 {
				t.Errorf("labels %v, want none (nothing selects Events by label)", ev.Labels)
			}
			if ev.InvolvedObject != ref || ev.Type != corev1.EventTypeNormal ||
				ev.Source != (corev1.EventSource{Component: stablev1.SourceComponent}) || ev.ReportingInstance != "replica-1" {
				t.Errorf("event %+v", ev)
			}
			// eventTime only: the deprecated fields would say it again.
			if !ev.EventTime.Time.Equal(now) || !ev.FirstTimestamp.IsZero() || !ev.LastTimestamp.IsZero() || ev.Count != 0 {
				t.Errorf("timestamps %v %v %v count %d, want eventTime %v alone", ev.FirstTimestamp, ev.LastTimestamp, ev.EventTime, ev.Count, now)
			}
		})
	}
}

// A delivery's Event records its id once: in its name when the name can
// carry it as it stands (GitHub's lower-case GUIDs), else in an
// annotation as well, beside a name that had to change it.
func TestDeliveryEvent_RecordsItsIdOnce(t *testing.T) {
	r := &Recorder{opts: Options{Namespace: "ns", Instance: "replica-1", Now: time.Now}}
	ref := corev1.ObjectReference{Kind: githubevent.KindPullRequest, Name: "p", Namespace: "ns", UID: "0123456789abcdef"}
	tests := []struct {
		name, id       string
		wantAnnotation bool
	}{
		{"a GitHub delivery GUID", "72d3162e-cc78-11e3-81ab-4c9367dc0958", false},
		{"an upper-case id", "72D3162E-CC78-11E3-81AB-4C9367DC0958", true},
		{"an id with characters a name cannot hold", "redeliver/7:x", true},
		{"an id too long for a name", strings.Repeat("a", 300), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := githubevent.Change{DeliveryID: tt.id, Repository: "o/r",
				PullRequest: &githubevent.PullRequestChange{Action: stablev1.ActionOpened, Number: 1}}
			ev := r.deliveryEvent(ch, ref)
			if ev.Name != naming.EventName(tt.id) {
				t.Errorf("name %q, want %q", ev.Name, naming.EventName(tt.id))
			}
			if _, got := ev.Annotations[stablev1.AnnotationDeliveryID]; got != tt.wantAnnotation {
				t.Errorf("delivery annotation written: %v, want %v (name %q)", got, tt.wantAnnotation, ev.Name)
			}
			if got := stablev1.DeliveryID(ev); got != tt.id {
				t.Errorf("DeliveryID %q, want %q", got, tt.id)
			}
		})
	}
}

// The API server takes 1,024 bytes of message: a longer one is cut on a
// character boundary, whichever Event it is.
func TestEvents_LongMessagesAreCutOnACharacterBoundary(t *testing.T) {
	r := &Recorder{opts: Options{Namespace: "ns", Now: time.Now}}
	title := strings.Repeat("é", 2000)
	ch := githubevent.Change{DeliveryID: githubevent.ReconciledIDPrefix + "y", Repository: "o/r",
		PullRequest: &githubevent.PullRequestChange{Action: stablev1.ActionOpened, Number: 1, Title: title}}
	for name, ev := range map[string]*corev1.Event{
		"delivery":   r.deliveryEvent(ch, corev1.ObjectReference{}),
		"reconciled": r.reconciledEvent(ch, corev1.ObjectReference{}),
	} {
		if len(ev.Message) > maxMessageBytes || len(ev.Message) < maxMessageBytes-1 || !utf8.ValidString(ev.Message) {
			t.Errorf("%s: message of %d bytes (valid UTF-8: %v)", name, len(ev.Message), utf8.ValidString(ev.Message))
		}
	}
}
