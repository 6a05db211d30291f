package metrics

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/liatrio/gitpulse/pkg/eventcount"
)

// pagedEventsAPI answers Event lists as the API server pages them: Limit
// items a page, a continue token while more are left, every page at one
// resourceVersion. fail, when it returns an error for a request, answers
// that instead. It records every request's options.
type pagedEventsAPI struct {
	events []*corev1.Event
	fail   func(n int, o metav1.ListOptions) error

	mu       sync.Mutex
	requests []metav1.ListOptions
}

func (p *pagedEventsAPI) react(a clienttesting.Action) (bool, runtime.Object, error) {
	o := a.(clienttesting.ListActionImpl).ListOptions
	p.mu.Lock()
	p.requests = append(p.requests, o)
	n := len(p.requests)
	p.mu.Unlock()
	if p.fail != nil {
		if err := p.fail(n, o); err != nil {
			return true, nil, err
		}
	}
	start := 0
	if o.Continue != "" {
		start, _ = strconv.Atoi(o.Continue)
	}
	end := len(p.events)
	if o.Limit > 0 {
		end = min(start+int(o.Limit), end)
	}
	list := &corev1.EventList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.Itoa(len(p.events) + 1)}}
	for _, ev := range p.events[start:end] {
		list.Items = append(list.Items, *ev)
	}
	if end < len(p.events) {
		list.Continue = strconv.Itoa(end)
	}
	return true, list, nil
}

func (p *pagedEventsAPI) seen() []metav1.ListOptions {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]metav1.ListOptions(nil), p.requests...)
}

// TestService_EventListsInPagesCountEachEventOnce lists two and a half
// pages of Events (eventListPageSize a page), as the API server answers
// them, also when a page fails or a page's continue token has expired (the
// API server compacted past the list): each Event is counted exactly once,
// and the list is never taken from a part of its pages — client-go's pager,
// after an expired token, asks for the whole list without a limit, which
// paged answers 410 so that the reflector lists again from the start, in
// pages.
func TestService_EventListsInPagesCountEachEventOnce(t *testing.T) {
	const ns, n = "pages", 2*eventListPageSize + eventListPageSize/2
	tests := []struct {
		name string
		fail func(n int, o metav1.ListOptions) error
		// lists: how many lists from the first page on the API server saw.
		lists int
	}{
		{"every page answered", nil, 1},
		{"the second page fails once", func(n int, o metav1.ListOptions) error {
			if n == 2 {
				return apierrors.NewInternalError(context.DeadlineExceeded)
			}
			return nil
		}, 2},
		{"the second page's continue token has expired", func(n int, o metav1.ListOptions) error {
			if n == 2 {
				return apierrors.NewResourceExpired("The provided continue parameter is too old")
			}
			return nil
		}, 2},
		{"the last page's continue token has expired", func(n int, o metav1.ListOptions) error {
			if n == 3 {
				return apierrors.NewResourceExpired("The provided continue parameter is too old")
			}
			return nil
		}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := &pagedEventsAPI{fail: tc.fail}
			for i := range n {
				api.events = append(api.events, recorderEvent(ns, i))
			}
			kube := kubefake.NewSimpleClientset()
			kube.PrependReactor("list", "events", api.react)
			svc, ctx := startOnFakes(t, kube, ns, time.Hour)
			err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
				return svc.events.HasSynced(), nil
			})
			if err != nil {
				t.Fatal("the Events never synced")
			}
			if got := total(svc); got != n {
				t.Errorf("counted %d, want %d", got, n)
			}
			if lag := svc.scrapeView().eventLag; lag.count != n {
				t.Errorf("event lag: %d observations, want %d", lag.count, n)
			}
			lists := 0
			for _, o := range api.seen() {
				if o.Limit != eventListPageSize {
					t.Errorf("asked for a list with limit %d (continue %q), want pages of %d", o.Limit, o.Continue, eventListPageSize)
				}
				if o.Continue == "" {
					lists++
				}
			}
			if lists != tc.lists {
				t.Errorf("%d lists started, want %d (requests: %+v)", lists, tc.lists, api.seen())
			}
		})
	}
}

// TestListInPages_HandsThePagerNoEvents: the Events of a page are staged
// for counting, and the page the reflector's pager keeps until the list
// ends holds none of them, only where the list goes on.
func TestListInPages_HandsThePagerNoEvents(t *testing.T) {
	api := &pagedEventsAPI{}
	for i := range 3 {
		api.events = append(api.events, recorderEvent("ns", i))
	}
	counter := eventcount.New(eventcount.Options{ConfigMaps: kubefake.NewSimpleClientset().CoreV1().ConfigMaps("ns"), Name: "counts"})
	if err := counter.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := newEventWatcher(counter, newLagHistogram(time.Now), slog.New(slog.DiscardHandler))
	list := w.listInPages(func(_ context.Context, o metav1.ListOptions) (runtime.Object, error) {
		_, obj, err := api.react(clienttesting.ListActionImpl{ListOptions: o})
		if err != nil {
			return nil, err
		}
		return obj.(*corev1.EventList), nil
	})
	page, err := list(context.Background(), metav1.ListOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := page.(*slimList)
	if len(got.Items) != 0 || got.Continue != "2" || got.ResourceVersion != "4" {
		t.Errorf("page handed on: %d items, continue %q, resourceVersion %q; want none, %q, %q", len(got.Items), got.Continue, got.ResourceVersion, "2", "4")
	}
	if w.list.items != 2 || len(w.list.events) != 2 {
		t.Errorf("staged %d Events (%d countable), want 2", w.list.items, len(w.list.events))
	}
}
