package metrics

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// eventListPage is how many Events one list request asks for: a page of full
// Events (a few MiB) is the most the process holds at once while listing.
const eventListPage = 2000

// eventList is what the Events ListWatch returns to the reflector: the whole
// list, read page by page and slimmed as each page arrives (see listEvents).
type eventList struct {
	metav1.TypeMeta
	metav1.ListMeta
	Items []cachedEvent
}

var _ metav1.ListInterface = (*eventList)(nil)

// DeepCopyObject copies the list (every item is a value).
func (l *eventList) DeepCopyObject() runtime.Object {
	c := *l
	c.ListMeta = *l.ListMeta.DeepCopy()
	c.Items = append([]cachedEvent(nil), l.Items...)
	return &c
}

// eventsListWatch lists Events page by page, slimming each page before the
// next, and tells the reflector to list rather than use a watch-list. Either
// way the API server's rate bounds the time (measured alike on the local
// control plane), but a paged list costs this process less CPU than one watch
// event per Event, holds one page of full Events at a time, and does not
// depend on the API server supporting watch-lists: the reflector's fallback,
// an unpaginated list from the cache, would hold every full Event at once
// (hundreds of MiB at 100,000), as would its own paginated list.
type eventsListWatch struct {
	*cache.ListWatch
}

// IsWatchListSemanticsUnSupported makes the reflector list (client-go's
// watchlist.DoesClientNotSupportWatchListSemantics).
func (eventsListWatch) IsWatchListSemanticsUnSupported() bool { return true }

// listEvents is a ListWithContextFunc over list (one page per call) that
// returns the complete list as an eventList. A first list at
// resourceVersion "0" (any, from the cache, where a limit may be ignored) is
// made at "" (the most recent, paginated); the reflector watches from the
// list's resourceVersion either way.
func listEvents(list func(context.Context, metav1.ListOptions) (*corev1.EventList, error), transform cache.TransformFunc) cache.ListWithContextFunc {
	return func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		if o.ResourceVersion == "0" {
			o.ResourceVersion = ""
			o.ResourceVersionMatch = ""
		}
		o.Limit = eventListPage
		out := &eventList{}
		for {
			page, err := list(ctx, o)
			if err != nil {
				return nil, err
			}
			for i := range page.Items {
				if ev, err := transform(&page.Items[i]); err == nil {
					if c, ok := ev.(*cachedEvent); ok {
						out.Items = append(out.Items, *c)
					}
				}
			}
			if out.ResourceVersion == "" {
				out.ResourceVersion = page.ResourceVersion // the snapshot every page is from
			}
			if page.Continue == "" {
				return out, nil
			}
			o.Continue = page.Continue
			// A continued list carries its resourceVersion in the token.
			o.ResourceVersion, o.ResourceVersionMatch = "", ""
		}
	}
}
