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
// its first six rows (the three event counters, the two state gauges and
// the merge duration histogram) are the public contract
// (pkg/metrics/README.md). Families only read the
// view: the repository cap is applied when the view is built (admitObjects),
// so the order of the rows does not matter.
func familyTable() []family {
	return slices.Concat(eventFamilies(), objectFamilies(), selfFamilies(), reconcileFamilies(), doraFamilies())
}

// view is what one scrape reports, gathered once. Building it is where the
// repository cap admits the repositories of the object-derived series
// (admitObjects); after that nothing changes it, and every family reads it.
type view struct {
	counts map[eventcount.Key]uint64
	// objects are the object-derived series, repositories capped
	// (objectfamilies.go).
	objects *objectSeries
	// dropped is how many distinct repositories the cap has refused,
	// read after the objects' repositories were admitted.
	dropped          uint64
	watchRestarts    map[string]uint64
	watchErrors      map[string]uint64
	uncountable      map[string]uint64
	checkpointWrites map[string]uint64
	lastEvent        float64
	pending          int
	// eventLag is gitpulse_metrics_event_lag_seconds (lag.go).
	eventLag *histogram
	// renders is how often the per-repository families were rendered.
	renders uint64

	// The reconcile cursors (reconcile.go).
	cursors []*corev1.ConfigMap
	now     time.Time
}

// admitObjects completes the view with the object-derived series of agg,
// capped by repos, and then reads the cap's dropped total, so that
// series_dropped includes what these series just folded into "other".
func (v *view) admitObjects(repos *repoCap, agg *objectAggregate) *view {
	v.objects = admitObjects(repos, agg)
	v.dropped = repos.droppedTotal()
	return v
}

// eventFamilies are the counters of pull request and branch deliveries,
// from the recorder's Events (the counters admitted their repositories
// when the Events were counted).
func eventFamilies() []family {
	return []family{
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
	}
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

// selfFamilies report on the metrics function itself: its watches, the
// Events it could not count, its checkpoint and the repository cap.
func selfFamilies() []family {
	return []family{
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
			name: "gitpulse_metrics_event_lag_seconds",
			help: "Time from a recorder Event's creation (its eventTime) to its being counted by this process: how far behind the counters are. " +
				"One observation per Event counted; Events replayed by a re-list or counted by an earlier process are not observed again.",
			kind:   kindHistogram,
			labels: nil,
			generate: func(v *view) []sample {
				if v.eventLag == nil { // a view built without a Service (tests)
					return []sample{{hist: newLagHistogram(time.Now).snapshot()}}
				}
				return []sample{{hist: v.eventLag}}
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
		{
			name:   "gitpulse_metrics_exposition_renders_total",
			help:   "Renders of the per-repository families' text for /metrics: one per change of the counts, the objects or the repository cap that a scrape saw, per format; a scrape after no change serves the kept text.",
			kind:   kindCounter,
			labels: nil,
			generate: func(v *view) []sample {
				return []sample{{value: float64(v.renders)}}
			},
		},
		{
			name:   "gitpulse_metrics_series_dropped_total",
			help:   "Distinct repositories folded into repository=\"other\" by the cap on repository label values.",
			kind:   kindCounter,
			labels: nil,
			generate: func(v *view) []sample {
				return []sample{{value: float64(v.dropped)}}
			},
		},
	}
}

func mapSamples(m map[string]uint64) []sample {
	out := make([]sample, 0, len(m))
	for k, n := range m {
		out = append(out, sample{labels: []string{k}, value: float64(n)})
	}
	return out
}

// nsRepo is a (namespace, repository) pair.
type nsRepo struct{ namespace, repository string }

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

// collector serves the table from a fresh view on every scrape.
type collector struct {
	families []family
	descs    []*prometheus.Desc
	view     func() *view
}

func newCollector(view func() *view) *collector {
	return newCollectorOf(familyTable(), view)
}

// newCollectorOf serves families, in any order: each reads the view only.
func newCollectorOf(families []family, view func() *view) *collector {
	c := &collector{families: families, view: view}
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
