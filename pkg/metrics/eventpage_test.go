package metrics

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// protobufPage is list as the API server answers a list in protobuf (the
// same serializer, k8s.io/apimachinery's).
func protobufPage(t testing.TB, list *corev1.EventList) []byte {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(coreCodecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	if !ok {
		t.Fatal("no protobuf serializer")
	}
	var buf bytes.Buffer
	if err := coreCodecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion).Encode(list, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// recordedEvents are Events as the recorder writes them, every field of an
// Event set somewhere, and a few that are not.
func recordedEvents() *corev1.EventList {
	created := metav1.NewTime(time.Unix(1_790_000_000, 0))
	remaining := int64(12)
	list := &corev1.EventList{ListMeta: metav1.ListMeta{ResourceVersion: "4711", Continue: "next", RemainingItemCount: &remaining}}
	for i := range 6 {
		ev := corev1.Event{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("delivery-%d", i), Namespace: "gitpulse", UID: types.UID(fmt.Sprintf("uid-%d", i)),
				ResourceVersion: fmt.Sprint(1000 + i), CreationTimestamp: created, Generation: 3,
				Labels:      map[string]string{"app": "gitpulse"},
				Annotations: map[string]string{stablev1.AnnotationRepository: "acme/api", "other": "x"},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "gitpulse-recorder", Operation: metav1.ManagedFieldsOperationUpdate,
					FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:action":{}}`)}, Time: &created}}},
			InvolvedObject: corev1.ObjectReference{Kind: "PullRequest", Namespace: "gitpulse", Name: "acme-api-pr-1", APIVersion: "stable.liatr.io/v1"},
			Reason:         "Opened", Message: "pull request opened", Type: corev1.EventTypeNormal, Action: "opened", Count: 1,
			EventTime:           metav1.NewMicroTime(time.Unix(1_790_000_000, 123_456_000)),
			ReportingController: stablev1.ReportingController, ReportingInstance: "gitpulse-recorder-1",
			Source:  corev1.EventSource{Component: "gitpulse"},
			Related: &corev1.ObjectReference{Kind: "Branch", Name: "b"},
			Series:  &corev1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(time.Unix(1_790_000_100, 0))},
		}
		switch i {
		case 1:
			ev.InvolvedObject.Kind, ev.Action = "GitHubDeployment", "success"
			ev.Annotations[stablev1.AnnotationEnvironment] = "production"
		case 2:
			ev.EventTime = metav1.MicroTime{} // an Event of core/v1's recorder has none
			ev.Annotations = nil
		case 3:
			ev.CreationTimestamp = metav1.Time{}
			ev.Annotations[stablev1.AnnotationRepository] = "" // present, empty
		case 4:
			ev.EventTime = metav1.NewMicroTime(time.Unix(-5, -7)) // before 1970
		}
		list.Items = append(list.Items, ev)
	}
	return list
}

// pagesAlike: where client-go decodes the page, readEventPage either
// declines it or gives the same list metadata and the records slimEvent
// makes of client-go's Events.
func pagesAlike(t *testing.T, body []byte) (decided bool) {
	t.Helper()
	page, ok := readEventPage(body)
	obj, err := runtime.Decode(coreCodecs.UniversalDeserializer(), body)
	list, isList := obj.(*corev1.EventList)
	if !ok || err != nil || !isList {
		return ok // declined, or lenient where client-go refuses
	}
	want := slimmedEvents(list)
	if page.ResourceVersion != want.ResourceVersion || page.Continue != want.Continue ||
		!reflect.DeepEqual(page.RemainingItemCount, want.RemainingItemCount) {
		t.Errorf("list metadata %+v, want %+v", page.ListMeta, want.ListMeta)
	}
	if len(page.Items) != len(want.Items) {
		t.Fatalf("%d Events, want %d", len(page.Items), len(want.Items))
	}
	for i := range want.Items {
		if !reflect.DeepEqual(page.Items[i], want.Items[i]) {
			t.Errorf("Event %d:\n got %+v\nwant %+v", i, page.Items[i], want.Items[i])
		}
	}
	return true
}

// TestReadEventPage_SlimsWhatClientGoDecodes: a page as the API server
// answers it is decided, and gives client-go's list metadata and its
// Events slimmed; so does an empty page.
func TestReadEventPage_SlimsWhatClientGoDecodes(t *testing.T) {
	for _, list := range []*corev1.EventList{recordedEvents(), {ListMeta: metav1.ListMeta{ResourceVersion: "1"}}} {
		if !pagesAlike(t, protobufPage(t, list)) {
			t.Errorf("declined a page of %d Events as the API server answers it", len(list.Items))
		}
	}
}

// TestReadEventPage_DeclinesWhatIsNotThePlainShape: what is not an
// EventList in plain protobuf goes to client-go.
func TestReadEventPage_DeclinesWhatIsNotThePlainShape(t *testing.T) {
	page := protobufPage(t, recordedEvents())
	status := protobufPage(t, &corev1.EventList{})
	status = bytes.Replace(status, []byte("EventList"), []byte("StatusXyz"), 1)
	for name, body := range map[string][]byte{
		"JSON":                  []byte(`{"kind":"EventList","apiVersion":"v1","items":[]}`),
		"another kind":          status,
		"cut short":             page[:len(page)-3],
		"a length past the end": append(bytes.Clone(page[:len(page)-1]), 0xff),
		"nothing":               nil,
	} {
		if _, ok := readEventPage(body); ok {
			t.Errorf("%s: decided", name)
		}
	}
}

// FuzzReadEventPage: for any body, what readEventPage decides of what
// client-go decodes is client-go's, slimmed.
func FuzzReadEventPage(f *testing.F) {
	f.Add(protobufPage(f, recordedEvents()))
	f.Add(protobufPage(f, &corev1.EventList{}))
	f.Fuzz(func(t *testing.T, body []byte) {
		pagesAlike(t, body)
	})
}
