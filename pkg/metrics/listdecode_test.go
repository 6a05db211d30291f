package metrics

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/pager"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// withManagedFields adds what the API server adds to every object it
// serves: the list decoder must skip it.
func withManagedFields(m *metav1.ObjectMeta) {
	m.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "gitpulse-recorder", Operation: metav1.ManagedFieldsOperationUpdate,
		APIVersion: "stable.liatr.io/v1", FieldsType: "FieldsV1",
		FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:repository":{},"f:status":{}}}`)}}}
}

// A list decoded as it streams in gives the same records as the typed
// list slimmed (compactObject), for every kind, with the list's
// resourceVersion and continue token, whatever the order of its keys.
func TestDecodeList_GivesTheRecordsOfTheTypedList(t *testing.T) {
	named := metav1.NewTime(time.Unix(1_790_100_000, 0).UTC())
	pr, renamed, legacy := recordedPullRequest(1), recordedPullRequest(2), recordedPullRequest(3)
	renamed.Status.RepositoryNamedAt = &named
	legacy.Spec.Repository = "" // named by the annotation alone
	legacy.Annotations = map[string]string{stablev1.AnnotationRepository: "acme/legacy"}
	br, dep := recordedBranch(4), recordedDeployment(5)
	for _, m := range []*metav1.ObjectMeta{&pr.ObjectMeta, &renamed.ObjectMeta, &legacy.ObjectMeta, &br.ObjectMeta, &dep.ObjectMeta} {
		withManagedFields(m)
	}
	tests := []struct {
		name   string
		list   runtime.Object
		decode itemDecoder
		want   []any
	}{
		{"pull requests", &stablev1.PullRequestList{TypeMeta: metav1.TypeMeta{Kind: "PullRequestList", APIVersion: "stable.liatr.io/v1"},
			ListMeta: metav1.ListMeta{ResourceVersion: "4711", Continue: "next"},
			Items:    []stablev1.PullRequest{*pr, *renamed, *legacy}}, decodePullRequest, []any{pr, renamed, legacy}},
		{"branches", &stablev1.BranchList{ListMeta: metav1.ListMeta{ResourceVersion: "4711", Continue: "next"},
			Items: []stablev1.Branch{*br}}, decodeBranch, []any{br}},
		{"deployments", &stablev1.GitHubDeploymentList{ListMeta: metav1.ListMeta{ResourceVersion: "4711", Continue: "next"},
			Items: []stablev1.GitHubDeployment{*dep}}, decodeDeployment, []any{dep}},
		{"an empty list", &stablev1.PullRequestList{ListMeta: metav1.ListMeta{ResourceVersion: "4711", Continue: "next"}}, decodePullRequest, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := json.Marshal(tc.list)
			if err != nil {
				t.Fatal(err)
			}
			// The same list with its keys in another order (items first).
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(data, &keys); err != nil {
				t.Fatal(err)
			}
			reordered := `{"items":` + string(orNull(keys["items"])) + `,"metadata":` + string(keys["metadata"]) +
				`,"kind":"PullRequestList","apiVersion":"stable.liatr.io/v1"}`
			for _, body := range []string{string(data), reordered} {
				page, err := decodeList(strings.NewReader(body), tc.decode)
				if err != nil {
					t.Fatalf("decodeList: %v", err)
				}
				if page.ResourceVersion != "4711" || page.Continue != "next" {
					t.Errorf("list metadata %+v, want resourceVersion 4711 and continue next", page.ListMeta)
				}
				if len(page.Items) != len(tc.want) {
					t.Fatalf("%d records, want %d", len(page.Items), len(tc.want))
				}
				for i, obj := range tc.want {
					want, _ := compactObject(obj)
					if !reflect.DeepEqual(page.Items[i], want) {
						t.Errorf("record %d:\n got %+v\nwant %+v", i, page.Items[i], want)
					}
				}
			}
		})
	}
}

func orNull(r json.RawMessage) json.RawMessage {
	if r == nil {
		return json.RawMessage("null")
	}
	return r
}

// A body that is not a list of objects fails with an error, never a
// partial page.
func TestDecodeList_RefusesWhatIsNotAList(t *testing.T) {
	tests := []struct{ name, body string }{
		{"empty", ``},
		{"cut off in an item", `{"items":[{"metadata":{"name":"a"`},
		{"cut off after the items", `{"items":[]`},
		{"items not an array", `{"items":{"metadata":{}}}`},
		{"an item not an object", `{"items":["pr"]}`},
		{"not an object", `["items"]`},
		{"a spec field the record reads of the wrong type", `{"items":[{"spec":{"repositoryID":"one"}}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := decodeList(strings.NewReader(tc.body), decodePullRequest)
			if err == nil {
				t.Errorf("decodeList(%q) = %+v, want an error", tc.body, page)
			}
		})
	}
}

// A reflector's first list (resourceVersion "0", which the API server
// serves whole whatever the limit) becomes a consistent list in pages; a
// re-list at a version it saw, and the pages after the first, keep theirs.
func TestPaged_MakesTheFirstListAConsistentOneInPages(t *testing.T) {
	tests := []struct {
		name string
		in   metav1.ListOptions
		want metav1.ListOptions
	}{
		{"the first list", metav1.ListOptions{ResourceVersion: "0"}, metav1.ListOptions{Limit: 500}},
		{"the first list, paged by the reflector", metav1.ListOptions{ResourceVersion: "0", Limit: 100}, metav1.ListOptions{Limit: 100}},
		{"a re-list at a version seen", metav1.ListOptions{ResourceVersion: "4711"}, metav1.ListOptions{ResourceVersion: "4711", Limit: 500}},
		{"a consistent list", metav1.ListOptions{}, metav1.ListOptions{Limit: 500}},
		{"a later page", metav1.ListOptions{Continue: "next", Limit: 500}, metav1.ListOptions{Continue: "next", Limit: 500}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got metav1.ListOptions
			list := paged(func(_ context.Context, o metav1.ListOptions) (*stablev1.PullRequestList, error) {
				got = o
				return &stablev1.PullRequestList{}, nil
			}, 500)
			if _, err := list(context.Background(), tc.in); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("listed with %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Whatever the body, decodeList returns records or an error, never panics,
// and an error comes with no page.
func FuzzDecodeList(f *testing.F) {
	list := &stablev1.PullRequestList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}, Items: []stablev1.PullRequest{*recordedPullRequest(1)}}
	data, _ := json.Marshal(list)
	for _, seed := range []string{string(data), `{"items":[]}`, `{"items":null,"metadata":{"continue":"x"}}`, `{"items":[{}]}`, `[`, `{"kind":1}`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, decode := range []itemDecoder{decodePullRequest, decodeBranch, decodeDeployment} {
			page, err := decodeList(strings.NewReader(body), decode)
			if err != nil && page != nil {
				t.Fatalf("an error (%v) with a page", err)
			}
			if err == nil && page == nil {
				t.Fatal("neither a page nor an error")
			}
		}
	})
}

// TestPaged_AnExpiredContinueTokenFailsTheListRatherThanShortensIt: when a
// later page's continue token has expired, client-go's pager asks once more
// for the whole list without a limit and returns that answer as the list. A
// limit added there would make a first page pass for every object; paged
// answers 410 instead, which the reflector answers by listing again from
// the start.
func TestPaged_AnExpiredContinueTokenFailsTheListRatherThanShortensIt(t *testing.T) {
	var asked []metav1.ListOptions
	list := paged(func(_ context.Context, o metav1.ListOptions) (*stablev1.PullRequestList, error) {
		asked = append(asked, o)
		switch {
		case o.Continue == "":
			return &stablev1.PullRequestList{ListMeta: metav1.ListMeta{ResourceVersion: "7", Continue: "page-2"},
				Items: []stablev1.PullRequest{*recordedPullRequest(1)}}, nil
		default:
			return nil, apierrors.NewResourceExpired("The provided continue parameter is too old")
		}
	}, 1)
	p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return list(ctx, o) })
	p.PageSize = 1
	got, _, err := p.List(context.Background(), metav1.ListOptions{ResourceVersion: "0"})
	if !apierrors.IsResourceExpired(err) {
		t.Fatalf("listed %v, %v; want a 410 Expired error", got, err)
	}
	if len(asked) != 2 {
		t.Errorf("the API server was asked %d times (%+v), want 2: the whole list is never asked for", len(asked), asked)
	}
}
