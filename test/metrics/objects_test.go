package metrics_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/metrics"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// The object-derived families come from an aggregate of the objects that is
// recomputed after they change (at most about once a second), not at every
// scrape, so a scrape stays cheap however many objects there are. The
// objects there when the Service becomes ready are in
// its first /metrics; later changes show after the refresh.
func TestObjects_FirstScrapeIsCompleteAndChangesShowAfterTheRefresh(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	prs := env.Gitpulse.StableV1().PullRequests(ns)
	branches := env.Gitpulse.StableV1().Branches(ns)
	opened := metav1.NewTime(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	merged := metav1.NewTime(opened.Add(2 * time.Hour))
	createPR := func(repo string, n int64, status string) {
		t.Helper()
		pr := &stablev1.PullRequest{
			ObjectMeta: metav1.ObjectMeta{Name: naming.PullRequestName(repo, 0, n)},
			Spec: stablev1.PullRequestSpec{User: "octocat", Branch: "feature", Status: status, ID: fmt.Sprint(n),
				Repository: repo, Number: n, OpenedAt: &opened},
		}
		if status == "merged" {
			pr.Spec.Merged, pr.Spec.MergedAt = true, &merged
		}
		if _, err := prs.Create(ctx, pr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	createBranch := func(repo, name string) {
		t.Helper()
		b := &stablev1.Branch{ObjectMeta: metav1.ObjectMeta{Name: naming.BranchName(repo, 0, name)},
			Spec: stablev1.BranchSpec{Name: name, State: "created", Repository: repo}}
		if _, err := branches.Create(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for n := int64(1); n <= 3; n++ {
		createPR("acme/api", n, "open")
	}
	createPR("acme/api", 4, "merged")
	createBranch("acme/api", "main")

	svc := startService(t, env.Config(), metrics.Config{Namespace: ns})

	// What the gauges and the merge histogram say, by repository and state.
	type state struct {
		repository, state string
	}
	observe := func(f map[string]*dto.MetricFamily) map[state]float64 {
		out := map[state]float64{}
		for _, name := range []string{"gitpulse_pull_requests", "gitpulse_branches"} {
			for _, m := range f[name].GetMetric() {
				l := labelMap(m)
				if l["namespace"] == ns && m.GetGauge().GetValue() != 0 {
					out[state{l["repository"], name + "/" + l["state"]}] = m.GetGauge().GetValue()
				}
			}
		}
		for _, m := range f["gitpulse_pull_request_merge_duration_seconds"].GetMetric() {
			if l := labelMap(m); l["namespace"] == ns {
				out[state{l["repository"], "merged_observed"}] = float64(m.GetHistogram().GetSampleCount())
			}
		}
		return out
	}

	// Ready means the caches are synced and the aggregate is of them: no
	// waiting for the first scrape.
	body, f := scrape(t, handlerOf(svc))
	want := map[state]float64{
		{"acme/api", "gitpulse_pull_requests/open"}:   3,
		{"acme/api", "gitpulse_pull_requests/merged"}: 1,
		{"acme/api", "merged_observed"}:               1,
		{"acme/api", "gitpulse_branches/created"}:     1,
	}
	if got := observe(f); !maps.Equal(got, want) {
		t.Fatalf("first scrape after ready: %v, want %v\n%s", got, want, body)
	}

	steps := []struct {
		name   string
		change func()
		want   map[state]float64
	}{{
		name: "a pull request is merged",
		change: func() {
			pr, err := prs.Get(ctx, naming.PullRequestName("acme/api", 0, 1), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pr.Spec.Status, pr.Spec.Merged, pr.Spec.MergedAt = "merged", true, &merged
			if _, err := prs.Update(ctx, pr, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		want: map[state]float64{
			{"acme/api", "gitpulse_pull_requests/open"}:   2,
			{"acme/api", "gitpulse_pull_requests/merged"}: 2,
			{"acme/api", "merged_observed"}:               2,
			{"acme/api", "gitpulse_branches/created"}:     1,
		},
	}, {
		name: "objects of a new repository appear",
		change: func() {
			createPR("acme/web", 1, "open")
			createBranch("acme/web", "main")
		},
		want: map[state]float64{
			{"acme/api", "gitpulse_pull_requests/open"}:   2,
			{"acme/api", "gitpulse_pull_requests/merged"}: 2,
			{"acme/api", "merged_observed"}:               2,
			{"acme/api", "gitpulse_branches/created"}:     1,
			{"acme/web", "gitpulse_pull_requests/open"}:   1,
			{"acme/web", "gitpulse_branches/created"}:     1,
		},
	}, {
		name: "deleted objects leave",
		change: func() {
			if err := prs.Delete(ctx, naming.PullRequestName("acme/api", 0, 2), metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := branches.Delete(ctx, naming.BranchName("acme/api", 0, "main"), metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		want: map[state]float64{
			{"acme/api", "gitpulse_pull_requests/open"}:   1,
			{"acme/api", "gitpulse_pull_requests/merged"}: 2,
			{"acme/api", "merged_observed"}:               2,
			{"acme/web", "gitpulse_pull_requests/open"}:   1,
			{"acme/web", "gitpulse_branches/created"}:     1,
		},
	}}
	for _, step := range steps {
		step.change()
		eventually(t, 15*time.Second, step.name, func() (bool, string) {
			body, f := scrape(t, handlerOf(svc))
			got := observe(f)
			return maps.Equal(got, step.want), fmt.Sprintf("%v, want %v\n%s", got, step.want, body)
		})
	}
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// The objects' first lists ask for pages of 5,000, not client-go's 500: the
// API server serves them from its watch cache, where each page costs it every
// object left in the namespace (docs/benchmarks.md, "Issue 23, sixth round").
func TestObjects_FirstListsAskForPagesOf5000(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	cfg := rest.CopyConfig(env.Config())
	var mu sync.Mutex
	limits := map[string][]string{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if q := r.URL.Query(); r.Method == http.MethodGet && q.Get("watch") == "" {
				mu.Lock()
				limits[path.Base(r.URL.Path)] = append(limits[path.Base(r.URL.Path)], q.Get("limit"))
				mu.Unlock()
			}
			return rt.RoundTrip(r)
		})
	})
	startService(t, cfg, metrics.Config{Namespace: ns})
	mu.Lock()
	defer mu.Unlock()
	for _, resource := range []string{"pullrequests", "branches", "githubdeployments"} {
		if got := limits[resource]; len(got) == 0 || got[0] != "5000" {
			t.Errorf("%s listed with limits %q, want the first 5000", resource, got)
		}
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
