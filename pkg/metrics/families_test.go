package metrics

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/eventcount"
)

// builtView is a small, fixed state: what the collector reports for it is
// spelled out below, family by family, as kube-state-metrics' store tests do.
func builtView() *view {
	opened := metav1.NewTime(time.Unix(1_700_000_000, 0))
	merged := metav1.NewTime(time.Unix(1_700_000_000+7200, 0))
	pr := func(name, repo, status string, isMerged bool, mergedAt *metav1.Time) *stablev1.PullRequest {
		return &stablev1.PullRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "gitpulse"},
			Spec: stablev1.PullRequestSpec{Repository: repo, Status: status, Merged: isMerged,
				OpenedAt: &opened, MergedAt: mergedAt},
		}
	}
	objects := aggregateObjects(compactObjects(
		[]*stablev1.PullRequest{
			pr("a", "acme/api", "open", false, nil),
			pr("b", "acme/api", "merged", true, &merged),
		},
		[]*stablev1.Branch{{
			ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "gitpulse"},
			Spec:       stablev1.BranchSpec{Repository: "acme/web", Name: "main", State: "created"},
		}},
		nil))
	v := &view{
		counts: map[eventcount.Key]uint64{
			{Kind: kindPullRequest, Namespace: "gitpulse", Repository: "acme/api", Action: "opened"}: 2,
			{Kind: kindPullRequest, Namespace: "gitpulse", Repository: "acme/api", Action: "merged"}: 1,
			{Kind: kindBranch, Namespace: "gitpulse", Repository: "acme/web", Action: "pushed"}:      3,
		},
		watchRestarts:    map[string]uint64{"events": 1},
		watchErrors:      map[string]uint64{},
		uncountable:      map[string]uint64{"missing_repository": 4},
		checkpointWrites: map[string]uint64{"success": 5},
		lastEvent:        1_700_000_500,
		pending:          2,
	}
	return v.admitObjects(newRepoCap(10), objects)
}

func TestFamilies_ReportTheBuiltView(t *testing.T) {
	tests := []struct {
		family string
		want   string
	}{{
		family: "gitpulse_pull_request_events_total",
		want: `# HELP gitpulse_pull_request_events_total Pull request deliveries recorded, one per distinct Event of the recorder.
# TYPE gitpulse_pull_request_events_total counter
gitpulse_pull_request_events_total{action="merged",namespace="gitpulse",repository="acme/api"} 1
gitpulse_pull_request_events_total{action="opened",namespace="gitpulse",repository="acme/api"} 2
`,
	}, {
		family: "gitpulse_branch_events_total",
		want: `# HELP gitpulse_branch_events_total Branch deliveries recorded (created, pushed, deleted), one per distinct Event of the recorder.
# TYPE gitpulse_branch_events_total counter
gitpulse_branch_events_total{action="pushed",namespace="gitpulse",repository="acme/web"} 3
`,
	}, {
		family: "pull_requests_total",
		want: `# HELP pull_requests_total Pull request deliveries recorded, all repositories (the original example's pull_requests counter).
# TYPE pull_requests_total counter
pull_requests_total 3
`,
	}}
	for _, tt := range tests {
		t.Run(tt.family, func(t *testing.T) {
			c := newCollector(builtView)
			if err := testutil.CollectAndCompare(c, strings.NewReader(tt.want), tt.family); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFamilies_StateGaugesAndHistogram(t *testing.T) {
	c := newCollector(builtView)
	got := map[string]float64{}
	families, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain,
		"gitpulse_pull_requests", "gitpulse_branches", "gitpulse_pull_request_merge_duration_seconds",
		"gitpulse_pull_request_oldest_open_timestamp_seconds", "gitpulse_metrics_last_event_timestamp_seconds",
		"gitpulse_metrics_checkpoint_pending_events")
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(strings.NewReader(string(families)))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, families)
	}
	for name, mf := range parsed {
		for _, m := range mf.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" {
					key += "/" + l.GetValue()
				}
			}
			switch {
			case m.GetGauge() != nil:
				got[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				got[key+"/count"] = float64(m.GetHistogram().GetSampleCount())
				got[key+"/sum"] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	want := map[string]float64{
		"gitpulse_pull_requests/open": 1, "gitpulse_pull_requests/closed": 0, "gitpulse_pull_requests/merged": 1,
		"gitpulse_branches/created": 1, "gitpulse_branches/deleted": 0,
		"gitpulse_pull_request_merge_duration_seconds/count": 1, "gitpulse_pull_request_merge_duration_seconds/sum": 7200,
		"gitpulse_pull_request_oldest_open_timestamp_seconds": 1_700_000_000,
		"gitpulse_metrics_last_event_timestamp_seconds":       1_700_000_500,
		"gitpulse_metrics_checkpoint_pending_events":          2,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// The reconcile families read the cursor ConfigMaps: a pass result of its
// own for passes whose units failed, and the errors by resource and reason,
// keys outside the known resources and reasons left out (bounded labels).
func TestFamilies_ReconcileErrorsAndResultsFromTheCursor(t *testing.T) {
	cursorView := func() *view {
		v := &view{cursors: []*corev1.ConfigMap{{
			ObjectMeta: metav1.ObjectMeta{Name: "gitpulse-reconcile-1", Namespace: "gitpulse"},
			Data: map[string]string{
				stablev1.CursorScope:                                  "acme/api",
				stablev1.CursorPassesPrefix + "ok":                    "3",
				stablev1.CursorPassesPrefix + "degraded":              "2",
				stablev1.CursorErrorsPrefix + "reviews.not_found":     "2",
				stablev1.CursorErrorsPrefix + "branches.server_error": "1",
				stablev1.CursorErrorsPrefix + "deliveries.forbidden":  "1",
				stablev1.CursorErrorsPrefix + "wikis.not_found":       "9", // not a resource gitpulse reads
				stablev1.CursorErrorsPrefix + "reviews.teapot":        "9", // not a reason
				stablev1.CursorErrorsPrefix + "pulls.network":         "x", // not a number
				"failures": `{"pull/acme/api#3":{"resource":"reviews","reason":"not_found"}}`,
			},
		}}}
		return v.admitObjects(newRepoCap(10), aggregateObjects(compactObjects(nil, nil, nil)))
	}
	for _, tt := range []struct{ family, want string }{{
		family: "gitpulse_reconcile_errors_total",
		want: `# HELP gitpulse_reconcile_errors_total GitHub requests of reconcile passes that failed, by what they read (resource) and why (reason: not_found and forbidden are GitHub refusing the token or the item gone; server_error and network are GitHub's or the network's failures). Each cost one unit of work, retried with backoff.
# TYPE gitpulse_reconcile_errors_total counter
gitpulse_reconcile_errors_total{namespace="gitpulse",reason="server_error",resource="branches",scope="acme/api"} 1
gitpulse_reconcile_errors_total{namespace="gitpulse",reason="forbidden",resource="deliveries",scope="acme/api"} 1
gitpulse_reconcile_errors_total{namespace="gitpulse",reason="not_found",resource="reviews",scope="acme/api"} 2
`,
	}, {
		family: "gitpulse_reconcile_passes_total",
		want: `# HELP gitpulse_reconcile_passes_total Reconcile passes over a GitHubSource's repository or organisation (scope), by result (ok, partial, rate_limited, error, degraded).
# TYPE gitpulse_reconcile_passes_total counter
gitpulse_reconcile_passes_total{namespace="gitpulse",result="degraded",scope="acme/api"} 2
gitpulse_reconcile_passes_total{namespace="gitpulse",result="error",scope="acme/api"} 0
gitpulse_reconcile_passes_total{namespace="gitpulse",result="ok",scope="acme/api"} 3
gitpulse_reconcile_passes_total{namespace="gitpulse",result="partial",scope="acme/api"} 0
gitpulse_reconcile_passes_total{namespace="gitpulse",result="rate_limited",scope="acme/api"} 0
`,
	}} {
		t.Run(tt.family, func(t *testing.T) {
			if err := testutil.CollectAndCompare(newCollector(cursorView), strings.NewReader(tt.want), tt.family); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDocumentation: the metric table in README.md lists exactly the
// families the collector serves, and each sample line there parses and
// belongs to its family with its labels (as kube-state-metrics checks its
// docs).
func TestDocumentation(t *testing.T) {
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([a-z_:]+)` \\| (counter|gauge|histogram) \\|.*\\| `([^`]+)` \\|$")
	documented := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := row.FindStringSubmatch(sc.Text()); m != nil {
			documented[m[1]] = m[3]
		}
	}
	served := map[string]family{}
	for _, fam := range familyTable() {
		served[fam.name] = fam
	}
	for name := range served {
		if _, ok := documented[name]; !ok {
			t.Errorf("%s is served but not in README.md's metric table", name)
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	for name, sampleLine := range documented {
		fam, ok := served[name]
		if !ok {
			t.Errorf("README.md documents %s, which is not served", name)
			continue
		}
		parsed, err := parser.TextToMetricFamilies(strings.NewReader(sampleLine + "\n"))
		if err != nil || len(parsed) != 1 {
			t.Errorf("%s: sample line %q does not parse: %v", name, sampleLine, err)
			continue
		}
		for sampleName, mf := range parsed {
			if sampleName != name && strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(sampleName, "_bucket"), "_sum"), "_count") != name {
				t.Errorf("%s: sample line is of %s", name, sampleName)
			}
			var labels []string
			for _, l := range mf.GetMetric()[0].GetLabel() {
				if l.GetName() != "le" {
					labels = append(labels, l.GetName())
				}
			}
			want := slices.Clone(fam.labels)
			slices.Sort(want)
			slices.Sort(labels)
			if !slices.Equal(labels, want) {
				t.Errorf("%s: sample labels %v, family labels %v", name, labels, want)
			}
		}
	}
}
