package metrics

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	gpfake "github.com/liatrio/gitpulse/pkg/client/clientset/versioned/fake"
)

// The store keeps one record per namespace and name, whatever it is handed
// (the full object of a watch, the record of a list page, a tombstone), and
// reports every change.
func TestRecordStore_KeepsOneRecordPerObject(t *testing.T) {
	inNamespace := func(ns string, pr *stablev1.PullRequest) *stablev1.PullRequest { pr.Namespace = ns; return pr }
	merged := recordedPullRequest(1)
	listed, _ := compactObject(recordedPullRequest(2))
	tests := []struct {
		name      string
		do        func(s *recordStore) error
		wantNames []string // namespace/name
		wantMerge bool     // pull request 1 merged
	}{
		{name: "an added object", do: func(s *recordStore) error { return s.Add(openPullRequest(1)) },
			wantNames: []string{"gitpulse/acme-service-01-pr-1"}},
		{name: "an update replaces the record", do: func(s *recordStore) error {
			return cmpErr(s.Add(openPullRequest(1)), s.Update(merged))
		}, wantNames: []string{"gitpulse/acme-service-01-pr-1"}, wantMerge: true},
		{name: "a record is kept as it is", do: func(s *recordStore) error { return s.Add(listed) },
			wantNames: []string{"gitpulse/acme-service-02-pr-2"}},
		{name: "the same name in two namespaces is two objects", do: func(s *recordStore) error {
			return cmpErr(s.Add(openPullRequest(1)), s.Add(inNamespace("other", openPullRequest(1))))
		}, wantNames: []string{"gitpulse/acme-service-01-pr-1", "other/acme-service-01-pr-1"}},
		{name: "a delete removes it", do: func(s *recordStore) error {
			return cmpErr(s.Add(openPullRequest(1)), s.Add(recordedPullRequest(2)), s.Delete(openPullRequest(1)))
		}, wantNames: []string{"gitpulse/acme-service-02-pr-2"}},
		{name: "a tombstone removes it", do: func(s *recordStore) error {
			return cmpErr(s.Add(openPullRequest(1)),
				s.Delete(cache.DeletedFinalStateUnknown{Key: "gitpulse/acme-service-01-pr-1", Obj: openPullRequest(1)}))
		}, wantNames: []string{}},
		{name: "a re-list keeps exactly its items", do: func(s *recordStore) error {
			return cmpErr(s.Add(openPullRequest(1)), s.Replace([]any{listed, recordedPullRequest(3)}, "9"))
		}, wantNames: []string{"gitpulse/acme-service-02-pr-2", "gitpulse/acme-service-03-pr-3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var changes atomic.Int32
			s := newRecordStore(func() { changes.Add(1) })
			if err := tc.do(s); err != nil {
				t.Fatal(err)
			}
			keys := s.ListKeys()
			slices.Sort(keys)
			var want []string
			for _, k := range tc.wantNames {
				ns, name, _ := strings.Cut(k, "/")
				want = append(want, ns+"/"+hashName(name).String())
			}
			slices.Sort(want)
			if !slices.Equal(keys, want) {
				t.Fatalf("keys = %q, want %q (the hashes of %q)", keys, want, tc.wantNames)
			}
			if n := len(s.List()); n != len(tc.wantNames) {
				t.Fatalf("List holds %d records, want %d", n, len(tc.wantNames))
			}
			for _, item := range s.List() {
				if _, ok := item.(*cachedPullRequest); !ok {
					t.Fatalf("the store holds a %T, want records", item)
				}
			}
			if changes.Load() == 0 {
				t.Fatal("no change was reported")
			}
			if got, ok, _ := s.GetByKey("gitpulse/acme-service-01-pr-1"); ok && got.(*cachedPullRequest).Merged != tc.wantMerge {
				t.Fatalf("pull request 1 merged = %v, want %v", got.(*cachedPullRequest).Merged, tc.wantMerge)
			}
		})
	}
}

// openPullRequest is recordedPullRequest(i) before it was merged.
func openPullRequest(i int) *stablev1.PullRequest {
	pr := recordedPullRequest(i)
	pr.Spec.Status, pr.Spec.Merged, pr.Spec.MergedAt, pr.Spec.ClosedAt = "open", false, nil, nil
	return pr
}

func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func TestRecordStore_SyncedOnlyAfterTheFirstList(t *testing.T) {
	s := newRecordStore(func() {})
	if err := s.Add(recordedPullRequest(1)); err != nil {
		t.Fatal(err)
	}
	if s.HasSynced() {
		t.Fatal("synced before any list")
	}
	if err := s.Replace(nil, "1"); err != nil {
		t.Fatal(err)
	}
	if !s.HasSynced() || len(s.List()) != 0 {
		t.Fatalf("after an empty list: synced %v, %d records; want synced and none", s.HasSynced(), len(s.List()))
	}
}

func TestRecordStore_RefusesWhatIsNotAnObject(t *testing.T) {
	s := newRecordStore(func() { t.Fatal("a refused item was reported as a change") })
	for _, item := range []any{"acme", 42, &metav1.Status{}} {
		if err := s.Add(item); err == nil {
			t.Errorf("Add(%T) = nil, want an error", item)
		}
	}
}

// Through a reflector, as the Service runs it: the first list and then a
// watched update reach the store as records, and each is reported.
func TestRecordStore_UnderAReflectorFollowsTheWatch(t *testing.T) {
	pr := openPullRequest(1)
	gp := gpfake.NewSimpleClientset(pr)
	prs := gp.StableV1().PullRequests("gitpulse")
	var changes atomic.Int32
	store := newRecordStore(func() { changes.Add(1) })
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return prs.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return prs.Watch(ctx, o)
		},
	}
	r := cache.NewReflectorWithOptions(lw, &stablev1.PullRequest{}, store, cache.ReflectorOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go r.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), store.HasSynced) {
		t.Fatal("never synced")
	}
	merged := pr.DeepCopy()
	merged.ResourceVersion = "2"
	merged.Spec.Status, merged.Spec.Merged, merged.Spec.MergedAt = "closed", true, &metav1.Time{Time: time.Unix(1_800_000_000, 0)}
	if _, err := prs.Update(ctx, merged, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		got, ok, _ := store.GetByKey("gitpulse/" + pr.Name)
		return ok && got.(*cachedPullRequest).Merged, nil
	})
	if err != nil {
		t.Fatalf("the update never reached the store: %v", store.List())
	}
	got, _, _ := store.GetByKey("gitpulse/" + pr.Name)
	if rec := got.(*cachedPullRequest); rec.State != intern("closed") || rec.MergedAt != 1_800_000_000 || len(store.List()) != 1 {
		t.Fatalf("the store holds %+v, want the one merged record", store.List())
	}
	if changes.Load() < 2 {
		t.Fatalf("%d changes reported, want the list's and the update's", changes.Load())
	}
}
