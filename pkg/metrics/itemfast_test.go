package metrics

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// slowDecode is the list item's decode by encoding/json alone, as
// decodeAs falls back on.
func slowDecode[T any, PT interface {
	*T
	object() any
}](item []byte) (runtime.Object, error) {
	var it T
	if err := json.Unmarshal(item, &it); err != nil {
		return nil, err
	}
	return recordOf(PT(&it).object())
}

// itemKinds are the three kinds' decoders: decodeAs's, encoding/json's
// alone, and the fast decode alone (whether it decides). Each decodeAs
// decoder is one for every test, as for a list's items: it decodes into
// one scratch item, so what an item before left in it would show.
var itemKinds = []struct {
	name   string
	decode decodeItem
	slow   decodeItem
	fast   func([]byte) bool
}{
	{"pull request", decodePullRequest(), slowDecode[listedPullRequest], func(b []byte) bool { return new(listedPullRequest).fast(b) }},
	{"branch", decodeBranch(), slowDecode[listedBranch], func(b []byte) bool { return new(listedBranch).fast(b) }},
	{"deployment", decodeDeployment(), slowDecode[listedDeployment], func(b []byte) bool { return new(listedDeployment).fast(b) }},
}

// decodesAsEncodingJSON: wherever encoding/json decodes the item, the
// item's decoder gives the same record; where encoding/json refuses it,
// the decoder may refuse it too, or give the record of what it reads (an
// unread member of the wrong type costs nothing).
func decodesAsEncodingJSON(t *testing.T, item []byte) {
	t.Helper()
	for _, k := range itemKinds {
		want, errWant := k.slow(item)
		got, err := k.decode(item)
		switch {
		case errWant != nil && err != nil:
		case errWant != nil:
			// Lenient where it does not read; it decided, so it validated.
			if !json.Valid(item) {
				t.Errorf("%s %.200q: a record of invalid JSON", k.name, item)
			}
		case err != nil:
			t.Errorf("%s %.200q: error %v where encoding/json decodes it", k.name, item, err)
		case !reflect.DeepEqual(got, want):
			t.Errorf("%s %.200q:\n got %+v\nwant %+v", k.name, item, got, want)
		}
	}
}

// recordedItems are the three kinds' objects as the API server lists
// them, managed fields included.
func recordedItems(t testing.TB) [][]byte {
	pr, br, dep := recordedPullRequest(1), recordedBranch(2), recordedDeployment(3)
	named := metav1.NewTime(time.Unix(1_790_100_000, 0).UTC())
	pr.Status.RepositoryNamedAt = &named
	withManagedFields(&pr.ObjectMeta)
	withManagedFields(&br.ObjectMeta)
	withManagedFields(&dep.ObjectMeta)
	var items [][]byte
	for _, obj := range []runtime.Object{pr, br, dep} {
		data, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, data)
	}
	return items
}

// itemCases are items at the edges of what the fast decode decides, for
// the tests and as fuzz seeds.
var itemCases = []string{
	`{}`, ` {"metadata":{},"spec":{}} `, `{"status":{"x":[1,{"y":null}]},"kind":7}`,
	// Names encoding/json matches to a member the record reads, other than exactly.
	`{"Spec":{"repository":"acme/a"}}`, `{"SPEC":{"repository":"acme/a"}}`, `{"spec":{"Repository":"acme/a"}}`,
	`{"metadata":{"NAME":"a"}}`, `{"metadata":{"creationtimestamp":"2026-01-01T00:00:00Z"}}`,
	`{"\u0073pec":{"repository":"acme/a"}}`, `{"ſpec":{"repository":"acme/a"}}`, `{"spec":{"repoſitory":"acme/a"}}`,
	`{"metadata":{"annotations":{"Stable.liatr.io/repository":"acme/a"}}}`,
	`{"metadata":{"annotations":{"stable.liatr.io\/repository":"acme/a"}}}`,
	// Repeated members, which encoding/json merges or overwrites.
	`{"spec":{"repository":"a"},"spec":{"status":"open"}}`, `{"spec":{"repository":"a","repository":"b"}}`,
	`{"spec":{"changes":[{"number":1}],"changes":[{"openedAt":"2026-01-01T00:00:00Z"}]}}`,
	// Nulls and values of another shape.
	`{"spec":null}`, `{"metadata":null}`, `{"metadata":{"annotations":null}}`, `{"spec":{"openedAt":null}}`,
	`{"metadata":{"creationTimestamp":null}}`, `{"spec":{"repositoryID":null}}`, `{"spec":{"merged":null}}`,
	`{"spec":{"changes":null}}`, `{"spec":{"changes":[null]}}`, `{"spec":{"changes":[]}}`, `{"spec":{"changes":[{"number":2,"by":"sha"},{}]}}`,
	`{"spec":{"repositoryID":1.5}}`, `{"spec":{"repositoryID":1e3}}`, `{"spec":{"repositoryID":-7}}`, `{"spec":{"repositoryID":"7"}}`,
	`{"spec":{"repositoryID":99999999999999999999}}`, `{"spec":{"merged":"true"}}`, `{"spec":{"merged":false}}`,
	`{"spec":{"openedAt":"yesterday"}}`, `{"spec":{"openedAt":1767261600}}`, `{"spec":{"openedAt":"2026-01-01T00:00:00+02:00"}}`,
	`{"spec":{"firstSuccessAt":"2026-01-01T00:00:00.5Z","environment":"prod\tlive"}}`,
	`{"spec":{"repository":"acme/\u00e9"}}`, `{"spec":{"repository":"acme/é"}}`, "{\"spec\":{\"repository\":\"acme/\xff\"}}",
	"{\"spec\":{\"status\":\"open\xff\",\"state\":\"created\xfe\",\"environment\":\"prod\xff\"}}",
	`{"spec":{"status":"op\u0065n","state":"cre\u0061ted","environment":"prod\u0020live"}}`,
	`{"spec":{"repository":7}}`, `{"spec":{"title":7}}`, `{"spec":{"number":"one"}}`, `{"apiVersion":{}}`,
	`{"metadata":{"annotations":{"stable.liatr.io/repository":7}}}`, `{"metadata":{"annotations":{"other":7}}}`,
	// The status's repositoryNamedAt, the one status member a record reads.
	`{"spec":{"repositoryID":7},"status":{"repositoryNamedAt":"2026-01-02T03:04:05Z","lastDeliveryID":"d"}}`,
	`{"status":null}`, `{"status":{"repositoryNamedAt":null}}`, `{"status":{"repositoryNamedAt":"yesterday"}}`,
	`{"status":{"repositoryNamedAt":7}}`, `{"status":{"RepositoryNamedAt":"2026-01-02T03:04:05Z"}}`,
	`{"status":{"repositoryNamedAt":"2026-01-02T03:04:05Z","repositoryNamedAt":"2026-01-02T03:04:06Z"}}`,
	`{"status":{"repositoryNamedAt":"2026-01-02T03:04:05Z"},"status":{"lastDeliveryID":"d"}}`,
	`{"status":{"repositoryNamedAt":"2026-01-02T03:04:05+02:00"}}`, `{"status":[]}`,
	// Not an item, or not JSON.
	`null`, `[]`, `"pr"`, `{"spec":{}} x`, `{"spec":{"repository":"a"}`, `{"spec":{"repository":"a",}}`,
}

// TestFastItem_DecodesTheRecordOfEncodingJSON: every kind's record, from
// the items the API server lists and from items at every edge, is
// encoding/json's.
func TestFastItem_DecodesTheRecordOfEncodingJSON(t *testing.T) {
	for _, item := range recordedItems(t) {
		decodesAsEncodingJSON(t, item)
	}
	for _, c := range itemCases {
		decodesAsEncodingJSON(t, []byte(c))
	}
}

// TestFastItem_DecidesTheItemsTheAPIServerLists: the items as the API
// server serves them take the fast decode (were it to decline them, the
// function would be as slow as before, and no other test would notice).
func TestFastItem_DecidesTheItemsTheAPIServerLists(t *testing.T) {
	for i, item := range recordedItems(t) {
		if !itemKinds[i].fast(item) {
			t.Errorf("%s: the fast decode declined %s", itemKinds[i].name, item)
		}
	}
}

// TestFastItem_ReadsWhatItDoesNotDecodeOnlyToValidate: an item whose
// unread member has the wrong type, which encoding/json refuses, gives
// the record of what is read.
func TestFastItem_ReadsWhatItDoesNotDecodeOnlyToValidate(t *testing.T) {
	item := []byte(`{"metadata":{"name":"a","namespace":"ns"},"spec":{"number":"one","repository":"acme/a","status":"open"}}`)
	if _, err := slowDecode[listedPullRequest](item); err == nil {
		t.Fatal("encoding/json decoded a number from a string")
	}
	got, err := decodePullRequest()(item)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := compactObject(&stablev1.PullRequest{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns"},
		Spec: stablev1.PullRequestSpec{Repository: "acme/a", Status: "open"}})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("record %+v, want %+v", got, want)
	}
}

// FuzzFastItem: the same for any item.
func FuzzFastItem(f *testing.F) {
	for _, item := range recordedItems(f) {
		f.Add(string(item))
	}
	for _, c := range itemCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, item string) {
		if strings.Count(item, "[")+strings.Count(item, "{") > 1000 {
			t.Skip() // nesting is jsonscan's to test (FuzzReader)
		}
		decodesAsEncodingJSON(t, []byte(item))
	})
}
