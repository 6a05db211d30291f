package reconcile

import (
	"strings"
	"time"
)

// scan is a full pass's progress through one newest-first list (pull
// requests by updated_at, deployments by created_at) when one pass's
// request budget does not cover it: reading a pull request's reviews or a
// deployment's statuses costs a request each, so a busy repository's
// window can need more than MaxRequests. Without it, every pass of an
// unfinished full pass would start again from the newest and never get
// further. The cursor keeps the band [downTo, from] of times whose items a
// pass of this full pass has read; later passes skip items in the band
// (strictly after downTo: ties at the edge are read again, which costs
// little) and read what is above it (updated since) and below it. The
// bands are dropped when the full pass completes.
type scan struct {
	key          string
	from, downTo time.Time // the band loaded; zero: none
	// What this pass read.
	newest, lowest time.Time
	// below: this pass read an item at or below the band, so everything
	// above the band had been read first (the list is newest first).
	below bool
}

func loadScan(c cursor, key string) *scan {
	sc := &scan{key: key}
	from, downTo, ok := strings.Cut(c.get(key), "/")
	if !ok {
		return sc
	}
	f, err1 := time.Parse(time.RFC3339, from)
	d, err2 := time.Parse(time.RFC3339, downTo)
	if err1 == nil && err2 == nil && !d.After(f) {
		sc.from, sc.downTo = f, d
	}
	return sc
}

// skip reports whether an item at at was read by an earlier pass of this
// full pass. A nil scan (not a full pass) skips nothing.
func (sc *scan) skip(at time.Time) bool {
	return sc != nil && !sc.from.IsZero() && at.After(sc.downTo) && !at.After(sc.from)
}

// processed notes that this pass read the item at at.
func (sc *scan) processed(at time.Time) {
	if sc == nil {
		return
	}
	if at.After(sc.newest) {
		sc.newest = at
	}
	if sc.lowest.IsZero() || at.Before(sc.lowest) {
		sc.lowest = at
	}
	if !sc.from.IsZero() && !at.After(sc.downTo) {
		sc.below = true
	}
}

// next is the band after this pass: cut tells whether the list was read to
// its end (since, the list's lower bound).
func (sc *scan) next(cut bool, since time.Time) (from, downTo time.Time) {
	top := sc.from
	if sc.newest.After(top) {
		top = sc.newest
	}
	switch {
	case !cut && top.IsZero():
		return since, since // nothing listed: an empty band
	case !cut:
		return top, since
	case sc.from.IsZero() && sc.newest.IsZero():
		return time.Time{}, time.Time{} // cut before reading anything
	case sc.from.IsZero():
		return sc.newest, sc.lowest
	case sc.below:
		return top, sc.lowest
	}
	return sc.from, sc.downTo // cut above the band: it still stands
}
