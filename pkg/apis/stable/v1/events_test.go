package v1

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeliveryID reads a delivery's id from its Event's name, or from the
// annotation when the name could not carry it, and says nothing for an
// Event that is not a delivery's.
func TestDeliveryID_ReadsTheNameOrTheAnnotation(t *testing.T) {
	ev := func(name, controller string, ann map[string]string) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}, ReportingController: controller}
	}
	tests := []struct {
		name string
		ev   *corev1.Event
		want string
	}{
		{"a name that carries the id", ev("delivery-72d3162e-cc78-11e3-81ab-4c9367dc0958", ReportingController, nil),
			"72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		{"an annotation beside a changed name", ev("delivery-abc-1f2e3d4c", ReportingController,
			map[string]string{AnnotationDeliveryID: "ABC"}), "ABC"},
		{"another controller's Event", ev("delivery-x", ReconcilerController, nil), ""},
		{"a recorder Event named otherwise", ev("something-else", ReportingController, nil), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DeliveryID(tt.ev); got != tt.want {
				t.Errorf("DeliveryID = %q, want %q", got, tt.want)
			}
		})
	}
}
