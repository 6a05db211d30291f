package reconcile

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/go-github/v60/github"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// guid is what the deliveries seen say about one event: every attempt of
// it (the first delivery and each redelivery) carries its GUID, the
// X-GitHub-Delivery header, which is also the recorder's delivery id.
type guid struct {
	id, event string
	// ok: one attempt succeeded (status "OK", a 2xx): GitHub's own record
	// that the event reached us, whatever became of Events since (they
	// expire after an hour), so it is never redelivered.
	ok bool
	// original is when the first attempt (redelivery false) was made;
	// sawOriginal says whether it was seen. Without it some attempt may
	// have succeeded unseen, so the GUID is not redelivered.
	original    time.Time
	sawOriginal bool
	// newest is the newest attempt's delivery id, the one redelivered.
	newest int64
}

func succeeded(d *github.HookDelivery) bool {
	return d.GetStatus() == "OK" || (d.GetStatusCode() >= 200 && d.GetStatusCode() <= 299)
}

func (p *pass) listDeliveries(ctx context.Context, opts *github.ListCursorOptions) ([]*github.HookDelivery, *github.Response, error) {
	if p.src.Repo == "" {
		return p.gh.Organizations.ListHookDeliveries(ctx, p.src.Owner, p.src.HookID, opts)
	}
	return p.gh.Repositories.ListHookDeliveries(ctx, p.src.Owner, p.src.Repo, p.src.HookID, opts)
}

func (p *pass) redeliverOne(ctx context.Context, id int64) (*github.Response, error) {
	var (
		resp *github.Response
		err  error
	)
	if p.src.Repo == "" {
		_, resp, err = p.gh.Organizations.RedeliverHookDelivery(ctx, p.src.Owner, p.src.HookID, id)
	} else {
		_, resp, err = p.gh.Repositories.RedeliverHookDelivery(ctx, p.src.Owner, p.src.Repo, p.src.HookID, id)
	}
	return resp, err
}

// redeliver scans the hook's deliveries newest first, back to the
// cursor's low-water mark (everything older was settled by an earlier
// pass) or GitHub's retention, groups the attempts by GUID, and asks GitHub
// once to redeliver each recorded event none of whose attempts succeeded
// and whose Event does not exist. Which GUIDs this pass asks for is claimed
// in the cursor first (optimistic concurrency), so an overlapping pass on
// another replica never asks for the same one.
func (p *pass) redeliver(ctx context.Context) error {
	now := p.r.opts.Now()
	cutoff := now.Add(-p.r.opts.Retention)
	low := p.cur.time(KeyLowWater)
	if low.Before(cutoff) {
		low = cutoff
	}
	seen := map[string]*guid{}
	// waiting counts the failed GUIDs whose first attempt was not seen yet:
	// the scan goes past the low-water mark until it finds them.
	waiting := func() int {
		n := 0
		for _, g := range seen {
			if githubevent.Records(g.event) && !g.ok && !g.sawOriginal {
				n++
			}
		}
		return n
	}
	complete := false
	opts := &github.ListCursorOptions{PerPage: 100}
	// The hook's delivery list is one unit of work: when GitHub refuses it
	// (the token may not read the hook) backfill still runs.
	list := listUnit(ResourceDeliveries, p.src.Scope())
	if !p.due(list) {
		return nil
	}
scan:
	for p.take(ctx) {
		page, resp, err := p.listDeliveries(ctx, opts)
		if !p.done(list, ResourceDeliveries, resp, err) {
			break
		}
		for _, d := range page {
			at := d.GetDeliveredAt().Time
			if at.Before(cutoff) || (at.Before(low) && waiting() == 0) {
				complete = true
				break scan
			}
			g := seen[d.GetGUID()]
			if g == nil {
				g = &guid{id: d.GetGUID(), event: d.GetEvent()}
				seen[g.id] = g
			}
			g.ok = g.ok || succeeded(d)
			if !d.GetRedelivery() {
				g.original, g.sawOriginal = at, true
			}
			g.newest = max(g.newest, d.GetID())
		}
		if resp.Cursor == "" {
			complete = true
			break
		}
		opts.Cursor = resp.Cursor
	}
	if complete {
		p.succeededUnit(list)
	}

	var unrecovered []*guid
	for _, g := range seen {
		if !githubevent.Records(g.event) || g.ok || !g.sawOriginal || g.id == "" {
			continue
		}
		// Recorded although GitHub saw a failure (the answer timed out
		// after the write): nothing to recover.
		_, err := p.r.opts.Kube.CoreV1().Events(p.r.opts.Namespace).Get(ctx, naming.EventName(g.id), metav1.GetOptions{})
		switch {
		case err == nil:
			continue
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("looking up the Event of delivery %s: %w", g.id, err)
		}
		unrecovered = append(unrecovered, g)
	}
	// A redelivery GitHub refused (other than by a rate limit) backs off
	// as a unit of its own; it still counts as unrecovered.
	var askable []*guid
	for _, g := range unrecovered {
		if p.due(redeliveryUnit(g.id)) {
			askable = append(askable, g)
		}
	}

	var claimed []*guid
	cur, err := p.r.store.update(ctx, p.src, func(c cursor) bool {
		claimed = claimed[:0]
		req := c.requested()
		for id, t := range req {
			if t.Before(cutoff) {
				delete(req, id)
			}
		}
		oldest := time.Time{}
		for _, g := range unrecovered {
			if oldest.IsZero() || g.original.Before(oldest) {
				oldest = g.original
			}
		}
		for _, g := range askable {
			if t, ok := req[g.id]; ok && now.Sub(t) < p.r.opts.RedeliverAfter {
				continue // asked for recently, by this replica or another
			}
			req[g.id] = now
			claimed = append(claimed, g)
		}
		c.setRequested(req)
		if complete {
			// Everything before the oldest unrecovered event (or, with
			// none, a minute ago: a delivery still being made is listed
			// only once it ends) is settled.
			lw := now.Add(-time.Minute)
			if !oldest.IsZero() && oldest.Before(lw) {
				lw = oldest
			}
			c.setTime(KeyLowWater, lw)
			c.set(KeyUnrecovered, strconv.Itoa(len(unrecovered)))
			c.setTime(KeyOldestUnrecovered, oldest)
		} else if prev := c.time(KeyOldestUnrecovered); !oldest.IsZero() && (prev.IsZero() || oldest.Before(prev)) {
			c.setTime(KeyOldestUnrecovered, oldest)
		}
		return true
	})
	if err != nil {
		return err
	}
	p.cur = cur
	// Each redelivery is a unit: one GitHub refuses is given back (and
	// backs off), the others are still asked for.
	var refused []*guid
	for i, g := range claimed {
		if !p.take(ctx) {
			refused = append(refused, claimed[i:]...)
			break
		}
		resp, err := p.redeliverOne(ctx, g.newest)
		if !p.done(redeliveryUnit(g.id), ResourceDeliveries, resp, err) {
			refused = append(refused, g)
			if p.result != "" {
				refused = append(refused, claimed[i+1:]...)
				break
			}
			continue
		}
		p.redelivered++
		p.log.Info("redelivery requested", "delivery", g.id, "event", g.event, "attempt", g.newest,
			"firstAttemptAt", g.original)
	}
	p.release(ctx, refused, now)
	return nil
}

// release gives back the claims of GUIDs this pass claimed at claimedAt but
// did not get GitHub to accept (the budget ran out, a rate limit or an error
// refused the request): the next pass that may call GitHub asks for them
// again — after a rate limit's reset, not RedeliverAfter later. A claim
// another pass has renewed since is not this pass's to give back.
func (p *pass) release(ctx context.Context, gs []*guid, claimedAt time.Time) {
	if len(gs) == 0 {
		return
	}
	cur, err := p.r.store.update(ctx, p.src, func(c cursor) bool {
		req := c.requested()
		released := false
		for _, g := range gs {
			if t, ok := req[g.id]; ok && t.Equal(claimedAt) {
				delete(req, g.id)
				released = true
			}
		}
		if released {
			c.setRequested(req)
		}
		return released
	})
	if err != nil {
		// The claims stay: asked for again after RedeliverAfter.
		p.log.Warn("releasing redelivery claims", "error", err, "deliveries", len(gs))
		return
	}
	p.cur = cur
}
