package metrics

// The object-derived families read the scrape's objectSeries: the newest
// aggregate of the objects (objects.go) with the repository cap applied
// once, when the view is built (admitObjects). Rendering admits nothing, so
// the families can be served in any order.

import (
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// objectSeries are the object-derived series of one scrape, their
// repositories capped. Like the aggregate they come from, they are not
// changed once built.
type objectSeries struct {
	pullRequestStates cappedStates
	branchStates      cappedStates
	mergeDurations    cappedHistograms
	oldestOpen        cappedOldest
	firstReview       cappedHistograms
	approval          cappedHistograms
	leadTimes         cappedHistograms
	recoveries        cappedHistograms
}

// admitObjects applies the repository cap to agg. The tables are admitted
// in the order the families used to admit them while rendering — pull
// request states, branch states, merge durations, oldest open, first
// review, approval, lead times, recoveries — each in its sorted key order,
// so the same repositories take the free slots as before.
func admitObjects(repos *repoCap, agg *objectAggregate) *objectSeries {
	return &objectSeries{
		pullRequestStates: agg.pullRequestStates.admit(repos),
		branchStates:      agg.branchStates.admit(repos),
		mergeDurations:    agg.mergeDurations.admit(repos),
		oldestOpen:        agg.oldestOpen.admit(repos),
		firstReview:       agg.firstReview.admit(repos),
		approval:          agg.approval.admit(repos),
		leadTimes:         agg.leadTimes.admit(repos),
		recoveries:        agg.recoveries.admit(repos),
	}
}

// objectFamilies are the state gauges, the merge duration histogram and the
// oldest open pull request. The review, lead-time and recovery histograms
// are in dora.go.
func objectFamilies() []family {
	return []family{
		{
			name:   "gitpulse_pull_requests",
			help:   "Pull requests by state (open, closed, merged).",
			kind:   kindGauge,
			labels: []string{"namespace", "repository", "state"},
			generate: func(v *view) []sample {
				return v.objects.pullRequestStates.samples([]string{string(stablev1.PullRequestOpen), string(stablev1.PullRequestClosed), string(stablev1.PullRequestMerged)})
			},
		},
		{
			name:   "gitpulse_branches",
			help:   "Branches by state (created, deleted).",
			kind:   kindGauge,
			labels: []string{"namespace", "repository", "state"},
			generate: func(v *view) []sample {
				return v.objects.branchStates.samples([]string{string(stablev1.BranchCreated), string(stablev1.BranchDeleted)})
			},
		},
		{
			name:     "gitpulse_pull_request_merge_duration_seconds",
			help:     "Time from opening to merging of the merged pull requests that exist, from their timestamps.",
			kind:     kindHistogram,
			labels:   []string{"namespace", "repository"},
			generate: func(v *view) []sample { return v.objects.mergeDurations.samples(false) },
		},
		{
			name:     "gitpulse_pull_request_oldest_open_timestamp_seconds",
			help:     "Unix time the oldest open pull request was opened.",
			kind:     kindGauge,
			labels:   []string{"namespace", "repository"},
			generate: func(v *view) []sample { return v.objects.oldestOpen.samples() },
		},
	}
}

// cappedStates counts objects by state per (namespace, capped repository).
type cappedStates map[nsRepo]map[string]int

// admit caps the table's repositories, admitted in sorted order so that
// the cap is deterministic, and adds up the counts of those folded
// together.
func (t stateTable) admit(repos *repoCap) cappedStates {
	capped := cappedStates{}
	for _, k := range t.keys {
		ck := nsRepo{k.namespace, repos.admit(k.repository)}
		if capped[ck] == nil {
			capped[ck] = map[string]int{}
		}
		for s, n := range t.counts[k] {
			capped[ck][s] += n
		}
	}
	return capped
}

// samples emits every known state for each (namespace, repository) that
// has objects, zeros included, so that a query for one state finds a series.
func (c cappedStates) samples(states []string) []sample {
	var out []sample
	for k, byState := range c {
		for _, s := range states {
			out = append(out, sample{labels: []string{k.namespace, k.repository, s}, value: float64(byState[s])})
		}
	}
	return out
}

// cappedHistograms are the merged histograms per capped label set.
type cappedHistograms map[obsKey]*histogram

// admit caps the table's repositories (admitted in sorted order, as the
// other tables are) and merges the pre-bucketed histograms of each label
// set.
func (t histTable) admit(repos *repoCap) cappedHistograms {
	hists := cappedHistograms{}
	for _, k := range t.keys {
		ck := obsKey{k.namespace, repos.admit(k.repository), k.environment}
		h := hists[ck]
		if h == nil {
			h = &histogram{buckets: make(map[float64]uint64, len(t.buckets))}
			for _, b := range t.buckets {
				h.buckets[b] = 0
			}
			hists[ck] = h
		}
		r := t.hists[k]
		h.count += r.count
		h.sum += r.sum
		for i, b := range t.buckets {
			h.buckets[b] += r.buckets[i]
		}
	}
	return hists
}

// samples is one histogram per label set; withEnv adds the environment
// label after namespace and repository.
func (c cappedHistograms) samples(withEnv bool) []sample {
	out := make([]sample, 0, len(c))
	for k, h := range c {
		labels := []string{k.namespace, k.repository}
		if withEnv {
			labels = append(labels, k.environment)
		}
		out = append(out, sample{labels: labels, hist: h})
	}
	return out
}

// cappedOldest is the oldest open time per (namespace, capped repository).
type cappedOldest map[nsRepo]float64

// admit caps the table's repositories in sorted order and keeps the oldest
// time of those folded together.
func (t oldestTable) admit(repos *repoCap) cappedOldest {
	capped := cappedOldest{}
	for _, k := range t.keys {
		ck := nsRepo{k.namespace, repos.admit(k.repository)}
		if old, ok := capped[ck]; !ok || t.times[k] < old {
			capped[ck] = t.times[k]
		}
	}
	return capped
}

func (c cappedOldest) samples() []sample {
	out := make([]sample, 0, len(c))
	for k, t := range c {
		out = append(out, sample{labels: []string{k.namespace, k.repository}, value: t})
	}
	return out
}
