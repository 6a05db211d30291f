package metrics

import (
	"cmp"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/prometheus/client_golang/prometheus"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/eventcount"
)

// Kinds of involvedObject the counters know.
const (
	kindPullRequest = stablev1.KindPullRequest
	kindBranch      = stablev1.KindBranch
)

// mergeDurationBuckets suit pull requests that live from minutes to weeks:
// 10m, 30m, 1h, 3h, 6h, 12h, 1d, 2d, 3d, 1w, 2w, 4w.
var mergeDurationBuckets = []float64{600, 1800, 3600, 10800, 21600, 43200, 86400, 172800, 259200, 604800, 1209600, 2419200}

// metricKind is how a family is exposed.
type metricKind int

const (
	kindCounter metricKind = iota
	kindGauge
	kindHistogram
)

// family is one row of the metric table: adding a metric is adding a row
// (the kube-state-metrics way). generate turns one scrape's view into
// samples; label values follow labels in order.
type family struct {
	name     string
	help     string
	kind     metricKind
	labels   []string
	generate func(v *view) []sample
}

type sample struct {
	labels []string
	value  float64
	hist   *histogram
}

type histogram struct {
	count   uint64
	sum     float64
	buckets map[float64]uint64 // cumulative
}

// familyTable is every metric the function serves. The names and labels of
// the first six rows are the public contract (pkg/metrics/README.md).
func familyTable() []family {
	// The DORA rows (dora.go) go in before the last row.
	return withDORA(slices.Concat([]family{
		{
			name:     "gitpulse_pull_request_events_total",
			help:     "Pull request deliveries recorded, one per distinct Event of the recorder.",
			kind:     kindCounter,
			labels:   []string{"namespace", "repository", "action"},
			generate: func(v *view) []sample { return v.eventCounts(kindPullRequest) },
		},
		{
			name:     "gitpulse_branch_events_total",
			help:     "Branch deliveries recorded (created, pushed, deleted), one per distinct Event of the recorder.",
			kind:     kindCounter,
			labels:   []string{"namespace", "repository", "action"},
			generate: func(v *view) []sample { return v.eventCounts(kindBranch) },
		},
		{
			name:   "pull_requests_total",
			help:   "Pull request deliveries recorded, all repositories (the original example's pull_requests counter).",
			kind:   kindCounter,
			labels: nil,
			generate: func(v *view) []sample {
				var n uint64
				for k, c := range v.counts {
					if k.Kind == kindPullRequest {
						n += c
					}
				}
				return []sample{{value: float64(n)}}
			},
		},
		{
			name:   "gitpulse_pull_requests",
			help:   "Pull requests by state (open, closed, merged).",
			kind:   kindGauge,
			labels: []string{"namespace", "repository", "state"},
			generate: func(v *view) []sample {
				return v.stateCounts(v.objects.pullRequestStates, []string{string(stablev1.PullRequestOpen), string(stablev1.PullRequestClosed), string(stablev1.PullRequestMerged)})
			},
		},
		{
			name:   "gitpulse_branches",
			help:   "Branches by state (created, deleted).",
			kind:   kindGauge,
			labels: []string{"namespace", "repository", "state"},
			generate: func(v *view) []sample {
				return v.stateCounts(v.objects.branchStates, []string{string(stablev1.BranchCreated), string(stablev1.BranchDeleted)})
			},
		},
		{
			name:     "gitpulse_pull_request_merge_duration_seconds",
			help:     "Time from opening to merging of the merged pull requests that exist, from their timestamps.",
			kind:     kindHistogram,
			labels:   []string{"namespace", "repository"},
			generate: func(v *view) []sample { return v.histograms(v.objects.mergeDurations, false) },
		},
		{
			name:     "gitpulse_pull_request_oldest_open_timestamp_seconds",
			help:     "Unix time the oldest open pull request was opened.",
			kind:     kindGauge,
			labels:   []string{"namespace", "repository"},
			generate: func(v *view) []sample { return v.oldestOpen() },
		},
		{
			name:   "gitpulse_metrics_watch_restarts_total",
			help:   "Watches the metrics function re-established after one ended (timeout, broken connection, API server restart, re-list after 410 Gone).",
			kind:   kindCounter,
			labels: []string{"resource"},
			generate: func(v *view) []sample {
				return mapSamples(v.watchRestarts)
			},
		},
		{
			name:   "gitpulse_metrics_watch_errors_total",
			help:   "List-and-watch cycles of the metrics function that failed and forced a re-list.",
			kind:   kindCounter,
			labels: []string{"resource"},
			generate: func(v *view) []sample {
				return mapSamples(v.watchErrors)
			},
		},
		{
			name:   "gitpulse_metrics_events_uncountable_total",
			help:   "Recorder Events seen but not counted because they are malformed, by reason.",
			kind:   kindCounter,
			labels: []string{"reason"},
			generate: func(v *view) []sample {
				return mapSamples(v.uncountable)
			},
		},
		{
			name:   "gitpulse_metrics_last_event_timestamp_seconds",
			help:   "Creation time of the newest recorder Event seen, as Unix time (0 before the first).",
			kind:   kindGauge,
			labels: nil,
			generate: func(v *view) []sample {
				return []sample{{value: v.lastEvent}}
			},
		},
		{
			name:   "gitpulse_metrics_checkpoint_writes_total",
			help:   "Writes of the exactness checkpoint ConfigMap, by result.",
			kind:   kindCounter,
			labels: []string{"result"},
			generate: func(v *view) []sample {
				return mapSamples(v.checkpointWrites)
			},
		},
		{
			name:   "gitpulse_metrics_checkpoint_pending_events",
			help:   "Events counted but not yet persisted in the checkpoint.",
			kind:   kindGauge,
			labels: nil,
			generate: func(v *view) []sample {
				return []sample{{value: float64(v.pending)}}
			},
		},
		// Reconcile passes (issue 13): reconcile.go.
	}, reconcileFamilies(), []family{
		{
			// Last, so that it includes what the rows above just admitted.
			name:   "gitpulse_metrics_series_dropped_total",
			help:   "Distinct repositories folded into repository=\"other\" by the cap on repository label values.",
			kind:   kindCounter,
			labels: nil,
			generate: func(v *view) []sample {
				return []sample{{value: float64(v.repos.droppedTotal())}}
			},
		},
	}))
}

// view is what one scrape reports, gathered once.
type view struct {
	repos  *repoCap
	counts map[eventcount.Key]uint64
	// objects is what the object-derived families report, before the
	// repository cap (objects.go).
	objects          *objectAggregate
	watchRestarts    map[string]uint64
	watchErrors      map[string]uint64
	uncountable      map[string]uint64
	checkpointWrites map[string]uint64
	lastEvent        float64
	pending          int

	// Reconcile passes (issue 13, reconcile.go).
	cursors []*corev1.ConfigMap
	now     time.Time
}

func (v *view) eventCounts(kind string) []sample {
	var out []sample
	for k, c := range v.counts {
		if k.Kind == kind {
			out = append(out, sample{labels: []string{k.Namespace, k.Repository, k.Action}, value: float64(c)})
		}
	}
	return out
}

// nsRepo is a (namespace, raw repository) pair.
type nsRepo struct{ namespace, repository string }

// stateCounts emits every known state for each (namespace, repository) that
// has objects, zeros included, so that a query for one state finds a series.
// Repositories are admitted in sorted order so that the cap is deterministic.
func (v *view) stateCounts(raw stateTable, states []string) []sample {
	capped := map[nsRepo]map[string]int{}
	for _, k := range raw.keys {
		ck := nsRepo{k.namespace, v.repos.admit(k.repository)}
		if capped[ck] == nil {
			capped[ck] = map[string]int{}
		}
		for s, n := range raw.counts[k] {
			capped[ck][s] += n
		}
	}
	var out []sample
	for k, byState := range capped {
		for _, s := range states {
			out = append(out, sample{labels: []string{k.namespace, k.repository, s}, value: float64(byState[s])})
		}
	}
	return out
}

func (v *view) oldestOpen() []sample {
	raw := v.objects.oldestOpen
	capped := map[nsRepo]float64{}
	for _, k := range raw.keys {
		ck := nsRepo{k.namespace, v.repos.admit(k.repository)}
		if old, ok := capped[ck]; !ok || raw.times[k] < old {
			capped[ck] = raw.times[k]
		}
	}
	var out []sample
	for k, t := range capped {
		out = append(out, sample{labels: []string{k.namespace, k.repository}, value: t})
	}
	return out
}

// repositoryOf is an object's repository label value, or "" (the object is
// left out) when it has none or one GitHub could never name: objects are
// written by anyone with RBAC, and no label value may carry a control
// character or whitespace.
func repositoryOf(spec string, annotations map[string]string) string {
	repo := spec
	if repo == "" {
		repo = annotations[stablev1.AnnotationRepository]
	}
	if !validRepository(repo) {
		return ""
	}
	return repo
}

// sortedKeys is the order of a family's label sets: by repository, then
// namespace.
func sortedKeys[V any](m map[nsRepo]V) []nsRepo {
	return slices.SortedFunc(maps.Keys(m), func(a, b nsRepo) int {
		return cmp.Or(cmp.Compare(a.repository, b.repository), cmp.Compare(a.namespace, b.namespace))
	})
}

func mapSamples(m map[string]uint64) []sample {
	out := make([]sample, 0, len(m))
	for k, n := range m {
		out = append(out, sample{labels: []string{k}, value: float64(n)})
	}
	return out
}

// collector serves the table from a fresh view on every scrape.
type collector struct {
	families []family
	descs    []*prometheus.Desc
	view     func() *view
}

func newCollector(view func() *view) *collector {
	c := &collector{families: familyTable(), view: view}
	for _, f := range c.families {
		c.descs = append(c.descs, prometheus.NewDesc(f.name, f.help, f.labels, nil))
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	v := c.view()
	for i, f := range c.families {
		for _, s := range f.generate(v) {
			switch f.kind {
			case kindHistogram:
				ch <- prometheus.MustNewConstHistogram(c.descs[i], s.hist.count, s.hist.sum, s.hist.buckets, s.labels...)
			case kindCounter:
				ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.CounterValue, s.value, s.labels...)
			default:
				ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.GaugeValue, s.value, s.labels...)
			}
		}
	}
}
