package metrics

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// A first list in pages reaches the store as compact records, with the
// list's resourceVersion, through client-go's own reflector and pager: each
// page is slimmed as it arrives, so no more than a page of full objects is
// ever held, however long the list.
func TestSlimPage_FirstListInPagesArrivesAsRecords(t *testing.T) {
	tests := []struct {
		name     string
		objects  int
		pageSize int64
		want     int // pages
	}{
		{"one page", 3, 10, 1},
		{"many pages", 7, 2, 4},
		{"an empty list", 0, 2, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var pages []metav1.ListOptions
			list := func(_ context.Context, o metav1.ListOptions) (*stablev1.PullRequestList, error) {
				mu.Lock()
				pages = append(pages, o)
				mu.Unlock()
				from, _ := strconv.Atoi(o.Continue)
				to := min(tc.objects, from+int(o.Limit))
				l := &stablev1.PullRequestList{ListMeta: metav1.ListMeta{ResourceVersion: "900"}}
				for i := from; i < to; i++ {
					l.Items = append(l.Items, *recordedPullRequest(i))
				}
				if to < tc.objects {
					l.Continue = strconv.Itoa(to)
				}
				return l, nil
			}
			lw := &cache.ListWatch{
				ListWithContextFunc: slimPage(list, compactObject),
				WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) {
					return watch.NewFake(), nil
				},
			}
			store := newRecordStore(func() {})
			r := cache.NewReflectorWithOptions(lw, &stablev1.PullRequest{}, store, cache.ReflectorOptions{})
			r.WatchListPageSize = tc.pageSize
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go r.RunWithContext(ctx)
			err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
				return r.LastSyncResourceVersion() == "900", nil
			})
			if err != nil {
				t.Fatalf("the list was not synced: %v", err)
			}
			items := store.List()
			if len(items) != tc.objects {
				t.Fatalf("store holds %d items, want %d", len(items), tc.objects)
			}
			for _, item := range items {
				pr, ok := item.(*cachedPullRequest)
				if !ok {
					t.Fatalf("store holds a %T, want a *cachedPullRequest", item)
				}
				if pr.Repository.Value() == "" || pr.OpenedAt == noTime {
					t.Errorf("record %s lost what the families read: %+v", pr.Name, pr)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(pages) != tc.want {
				t.Errorf("listed in %d pages, want %d", len(pages), tc.want)
			}
		})
	}
}

// slimmed keeps the list's metadata the pager and the reflector read, and
// leaves records as they are (the informer's transform runs on them again).
func TestSlimmed_KeepsTheListMetadata(t *testing.T) {
	remaining := int64(40)
	page := &stablev1.BranchList{
		ListMeta: metav1.ListMeta{ResourceVersion: "77", Continue: "next", RemainingItemCount: &remaining},
		Items:    []stablev1.Branch{*recordedBranch(1), *recordedBranch(2)},
	}
	got, err := slimmed(page, compactObject)
	if err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion != "77" || got.Continue != "next" || got.RemainingItemCount == nil || *got.RemainingItemCount != 40 {
		t.Errorf("list metadata = %+v, want resourceVersion 77, continue next, 40 remaining", got.ListMeta)
	}
	if len(got.Items) != 2 {
		t.Fatalf("%d items, want 2", len(got.Items))
	}
	again, err := slimmed(got, compactObject)
	if err != nil {
		t.Fatal(err)
	}
	for i, item := range again.Items {
		if _, ok := item.(*cachedBranch); !ok || item != got.Items[i] {
			t.Errorf("item %d: %T, want the same *cachedBranch", i, item)
		}
	}
	var _ runtime.Object = got
}
