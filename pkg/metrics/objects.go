package metrics

// The object-derived families (pull request and branch states, the merge,
// review, lead-time and recovery histograms, the oldest open pull request)
// are computed in two steps, so that a scrape does not walk every object
// gitpulse ever recorded:
//
//  1. aggregateObjects reduces the PullRequest, Branch and GitHubDeployment
//     objects to what those families need per (namespace, raw repository[,
//     environment]): state counts, pre-bucketed histograms, the oldest open
//     time. It runs only after an object changed, at most about once a
//     second (refreshObjects), and the scrape reads the newest result.
//  2. Building a scrape's view applies the repository cap to that aggregate
//     (admitObjects, objectfamilies.go), in the same sorted order as ever,
//     so admission does not depend on when the aggregate was computed; the
//     families then only read the capped series. Its cost grows with the
//     repositories, not the objects.

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"time"

	"k8s.io/client-go/tools/cache"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

const (
	// objectsRefreshInterval is the shortest time between two computations
	// of the aggregate: a change in the objects shows in /metrics within
	// about this long.
	objectsRefreshInterval = time.Second
	// objectsRefreshCost bounds the share of a core the computation may
	// take in a namespace so large that it needs more than a tenth of the
	// interval: the next one waits this many times as long as the last took.
	objectsRefreshCost = 10
)

// objectAggregate is what the object-derived families report, before the
// repository cap. It is immutable once built: scrapes share it.
type objectAggregate struct {
	pullRequestStates stateTable
	branchStates      stateTable
	oldestOpen        oldestTable
	mergeDurations    histTable
	firstReview       histTable
	approval          histTable
	leadTimes         histTable
	recoveries        histTable
}

// stateTable counts objects by state per (namespace, raw repository); keys
// are sorted in the cap's admission order.
type stateTable struct {
	keys   []nsRepo
	counts map[nsRepo]map[string]int
}

// oldestTable is the oldest open time per (namespace, raw repository).
type oldestTable struct {
	keys  []nsRepo
	times map[nsRepo]float64
}

// obsKey is a histogram's label set.
type obsKey struct{ namespace, repository, environment string }

// histTable holds one pre-bucketed histogram per label set before the cap.
type histTable struct {
	buckets []float64
	keys    []obsKey
	hists   map[obsKey]*rawHistogram
}

// rawHistogram is a histogram over buckets (by index, cumulative).
type rawHistogram struct {
	count   uint64
	sum     float64
	buckets []uint64
}

func newHistTable(raw map[obsKey][]float64, buckets []float64) histTable {
	t := histTable{buckets: buckets, keys: sortedObsKeys(raw), hists: make(map[obsKey]*rawHistogram, len(raw))}
	for k, obs := range raw {
		h := &rawHistogram{buckets: make([]uint64, len(buckets))}
		for _, d := range obs {
			h.count++
			h.sum += d
			for i, b := range buckets {
				if d <= b {
					h.buckets[i]++
				}
			}
		}
		t.hists[k] = h
	}
	return t
}

// aggregateObjects reduces the objects (the caches' records, slim.go) to an
// objectAggregate, each object under its repository id's newest name
// (renames.go). The order of the objects does not matter.
func aggregateObjects(prs []*cachedPullRequest, brs []*cachedBranch, deps []*cachedDeployment) *objectAggregate {
	prs, brs, deps = followRenames(prs, brs, deps) // renames.go
	prStates := pullRequestStates(prs)
	brStates := branchStates(brs)
	oldest := oldestOpen(prs)
	return &objectAggregate{
		pullRequestStates: stateTable{keys: sortedKeys(prStates), counts: prStates},
		branchStates:      stateTable{keys: sortedKeys(brStates), counts: brStates},
		oldestOpen:        oldestTable{keys: sortedKeys(oldest), times: oldest},
		mergeDurations:    newHistTable(mergeDurations(prs), mergeDurationBuckets),
		firstReview: newHistTable(pullRequestLatency(prs, func(pr *cachedPullRequest) (float64, bool) {
			return since(pr.OpenedAt, pr.FirstReviewAt)
		}), mergeDurationBuckets),
		approval: newHistTable(pullRequestLatency(prs, func(pr *cachedPullRequest) (float64, bool) {
			return since(pr.OpenedAt, pr.FirstApprovalAt)
		}), mergeDurationBuckets),
		leadTimes:  newHistTable(leadTimes(deps), mergeDurationBuckets),
		recoveries: newHistTable(recoveries(deps), recoveryBuckets),
	}
}

func pullRequestStates(prs []*cachedPullRequest) map[nsRepo]map[string]int {
	out := map[nsRepo]map[string]int{}
	for _, pr := range prs {
		state := pr.State.Value()
		if pr.Merged {
			state = string(stablev1.PullRequestMerged)
		}
		add(out, nsRepo{pr.Namespace.Value(), pr.Repository.Value()}, state)
	}
	return out
}

func branchStates(brs []*cachedBranch) map[nsRepo]map[string]int {
	out := map[nsRepo]map[string]int{}
	for _, b := range brs {
		add(out, nsRepo{b.Namespace.Value(), b.Repository.Value()}, b.State.Value())
	}
	return out
}

func add(m map[nsRepo]map[string]int, k nsRepo, state string) {
	if k.repository == "" {
		return
	}
	if m[k] == nil {
		m[k] = map[string]int{}
	}
	m[k][state]++
}

// mergeDurations observes mergedAt - openedAt of the merged pull requests.
func mergeDurations(prs []*cachedPullRequest) map[obsKey][]float64 {
	return pullRequestLatency(prs, func(pr *cachedPullRequest) (float64, bool) {
		if !pr.Merged && pr.State.Value() != string(stablev1.PullRequestMerged) {
			return 0, false
		}
		return since(pr.OpenedAt, pr.MergedAt)
	})
}

// oldestOpen is the Unix time the oldest open pull request of each
// repository was opened (its creation when it has no openedAt).
func oldestOpen(prs []*cachedPullRequest) map[nsRepo]float64 {
	raw := map[nsRepo]float64{}
	for _, pr := range prs {
		if pr.Merged || pr.State.Value() != string(stablev1.PullRequestOpen) {
			continue
		}
		k := nsRepo{pr.Namespace.Value(), pr.Repository.Value()}
		if k.repository == "" {
			continue
		}
		opened := pr.Created
		if pr.OpenedAt != noTime {
			opened = pr.OpenedAt
		}
		t := float64(opened)
		if old, ok := raw[k]; !ok || t < old {
			raw[k] = t
		}
	}
	return raw
}

// pullRequestLatency observes of(pr) for each pull request it reports one.
func pullRequestLatency(prs []*cachedPullRequest, of func(*cachedPullRequest) (float64, bool)) map[obsKey][]float64 {
	raw := map[obsKey][]float64{}
	for _, pr := range prs {
		d, ok := of(pr)
		if !ok {
			continue
		}
		k := obsKey{pr.Namespace.Value(), pr.Repository.Value(), ""}
		if k.repository == "" {
			continue
		}
		raw[k] = append(raw[k], d)
	}
	return raw
}

// leadTimes observes, per environment, each merged pull request once: from
// its opening to the first success of the earliest-succeeding deployment
// it is attributed to there (a pull request attributed to two deployments
// of one environment, by SHA and by window, counts for the first).
func leadTimes(deps []*cachedDeployment) map[obsKey][]float64 {
	type change struct {
		obsKey
		number int64
	}
	first := map[change]float64{}
	for _, d := range deps {
		if d.FirstSuccessAt == noTime || len(d.Changes) == 0 {
			continue
		}
		k := obsKey{d.Namespace.Value(), d.Repository.Value(), d.Environment.Value()}
		if k.repository == "" || k.environment == "" {
			continue
		}
		for _, c := range d.Changes {
			lt, ok := since(c.OpenedAt, d.FirstSuccessAt)
			if !ok {
				continue
			}
			ck := change{k, c.Number}
			if old, ok := first[ck]; !ok || lt < old {
				first[ck] = lt
			}
		}
	}
	raw := map[obsKey][]float64{}
	for ck, lt := range first {
		raw[ck.obsKey] = append(raw[ck.obsKey], lt)
	}
	return raw
}

// recoveries walks each environment's deployment outcomes in time order
// (every deployment's first failure and first success): a failure while the
// environment is healthy starts an outage, the next success ends it and is
// observed. An outage without a success yet is not observed.
func recoveries(deps []*cachedDeployment) map[obsKey][]float64 {
	type point struct {
		at      unixTime
		success bool
	}
	points := map[obsKey][]point{}
	for _, d := range deps {
		k := obsKey{d.Namespace.Value(), d.Repository.Value(), d.Environment.Value()}
		if k.repository == "" || k.environment == "" {
			continue
		}
		if d.FirstFailureAt != noTime {
			points[k] = append(points[k], point{d.FirstFailureAt, false})
		}
		if d.FirstSuccessAt != noTime {
			points[k] = append(points[k], point{d.FirstSuccessAt, true})
		}
	}
	raw := map[obsKey][]float64{}
	for k, ps := range points {
		// Same second: the failure first, so a failure and a success
		// reported together count as an outage of zero seconds.
		slices.SortFunc(ps, func(a, b point) int {
			if a.at != b.at {
				return cmp.Compare(a.at, b.at)
			}
			if a.success == b.success {
				return 0
			}
			if a.success {
				return 1
			}
			return -1
		})
		down := unixTime(-1)
		for _, p := range ps {
			switch {
			case !p.success && down < 0:
				down = p.at
			case p.success && down >= 0:
				raw[k] = append(raw[k], float64(p.at-down))
				down = -1
			}
		}
		if _, ok := raw[k]; !ok {
			raw[k] = nil // the environment has deployments: an empty histogram
		}
	}
	return raw
}

// sortedObsKeys is the cap's admission order of histogram label sets.
func sortedObsKeys[V any](m map[obsKey]V) []obsKey {
	return slices.SortedFunc(maps.Keys(m), func(a, b obsKey) int {
		return cmp.Or(cmp.Compare(a.repository, b.repository), cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.environment, b.environment))
	})
}

// objectsChanged is what the object stores call on every change
// (recordstore.go): the aggregate is stale. refreshObjects recomputes it.
func (s *Service) objectsChanged() {
	s.objectsDirty.Store(true)
	select {
	case s.objectsWake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// computeObjects builds the aggregate from the caches and publishes it. It
// returns when it started and how long it took. Computations are serialized,
// so the published aggregate is always the newest one computed.
func (s *Service) computeObjects() (time.Time, time.Duration) {
	s.objectsMu.Lock()
	defer s.objectsMu.Unlock()
	start := time.Now()
	// Cleared before reading: a change from here on marks it again and
	// leads to another computation.
	s.objectsDirty.Store(false)
	s.mu.Lock()
	caches := s.objectCaches
	s.mu.Unlock()
	s.objects.Store(aggregateObjects(caches.list()))
	return start, time.Since(start)
}

// objectCaches are the PullRequest, Branch and GitHubDeployment informers'
// stores, which hold the records of slim.go.
type objectCaches struct{ prs, brs, deps cache.Store }

// list returns every record the caches hold (none before the informers
// are built).
func (c *objectCaches) list() ([]*cachedPullRequest, []*cachedBranch, []*cachedDeployment) {
	if c == nil {
		return nil, nil, nil
	}
	return records[*cachedPullRequest](c.prs), records[*cachedBranch](c.brs), records[*cachedDeployment](c.deps)
}

// records lists a store's records of type T. Every item is one: the
// informer's transform (compactObject) has made it so before it is stored.
func records[T any](store cache.Store) []T {
	items := store.List()
	out := make([]T, 0, len(items))
	for _, item := range items {
		if r, ok := item.(T); ok {
			out = append(out, r)
		}
	}
	return out
}

// currentObjects is the newest aggregate; before any (a scrape before the
// caches synced) it computes one from what the caches hold.
func (s *Service) currentObjects() *objectAggregate {
	if agg := s.objects.Load(); agg != nil {
		return agg
	}
	s.mu.Lock()
	started := s.objectCaches != nil
	s.mu.Unlock()
	if !started {
		return aggregateObjects(nil, nil, nil)
	}
	s.computeObjects()
	return s.objects.Load()
}

// refreshObjects recomputes the aggregate after objects changed, at most
// once per objectsRefreshInterval and never sooner than objectsRefreshCost
// times the last computation's duration after it, until ctx is done. last
// and took are those of the computation made when the caches synced.
func (s *Service) refreshObjects(ctx context.Context, last time.Time, took time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.objectsWake:
		}
		if wait := time.Until(last.Add(max(objectsRefreshInterval, objectsRefreshCost*took))); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if !s.objectsDirty.Load() {
			continue // a wake-up from before the last computation
		}
		last, took = s.computeObjects()
	}
}
