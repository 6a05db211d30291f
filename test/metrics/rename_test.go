package metrics_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/metrics"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// A repository renamed on GitHub keeps its id; its objects follow the new
// name one by one as the recorder writes them. The first to follow moves
// every object-derived series of the repository to the new label in the
// same refresh (the former label's series end: nothing counted twice),
// while the delivery counters, from Events, stay under the name each
// delivery was recorded under.
func TestObjects_ARenameMovesEverySeriesOfTheRepositoryAtOnce(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	prs := env.Gitpulse.StableV1().PullRequests(ns)
	const (
		id       = int64(4242)
		from, to = "acme/old-name", "acme/new-name"
	)
	opened := metav1.NewTime(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	merged := metav1.NewTime(opened.Add(2 * time.Hour))
	namedAt := func(at time.Time) stablev1.Bookkeeping {
		t := metav1.NewTime(at.UTC())
		return stablev1.Bookkeeping{RepositoryNamedAt: &t}
	}
	for n := int64(1); n <= 3; n++ {
		pr := &stablev1.PullRequest{
			ObjectMeta: metav1.ObjectMeta{Name: naming.PullRequestName(from, id, n)},
			Spec: stablev1.PullRequestSpec{User: "octocat", Branch: "feature", Status: "open", ID: fmt.Sprint(n),
				Repository: from, RepositoryID: id, Number: n, OpenedAt: &opened},
			Status: stablev1.PullRequestStatus{Bookkeeping: namedAt(opened.Time)},
		}
		if n == 3 {
			pr.Spec.Status, pr.Spec.Merged, pr.Spec.MergedAt = "merged", true, &merged
		}
		if _, err := prs.Create(ctx, pr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	br := &stablev1.Branch{ObjectMeta: metav1.ObjectMeta{Name: naming.BranchName(from, id, "main")},
		Spec:   stablev1.BranchSpec{Name: "main", State: "created", Repository: from, RepositoryID: id},
		Status: stablev1.BranchStatus{Bookkeeping: namedAt(opened.Time)}}
	if _, err := env.Gitpulse.StableV1().Branches(ns).Create(ctx, br, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mustCreateEvents(t, env.Kube, ns, eventSpec{delivery: "before-rename", kind: "PullRequest", repository: from, action: "opened"})

	svc := startService(t, env.Config(), metrics.Config{Namespace: ns})
	type series struct{ family, repository, state string }
	observe := func(f map[string]*dto.MetricFamily) map[series]float64 {
		out := map[series]float64{}
		for _, name := range []string{"gitpulse_pull_requests", "gitpulse_branches", "gitpulse_pull_request_oldest_open_timestamp_seconds"} {
			for _, m := range f[name].GetMetric() {
				if l := labelMap(m); l["namespace"] == ns && m.GetGauge().GetValue() != 0 {
					out[series{name, l["repository"], l["state"]}] = m.GetGauge().GetValue()
				}
			}
		}
		for _, m := range f["gitpulse_pull_request_merge_duration_seconds"].GetMetric() {
			if l := labelMap(m); l["namespace"] == ns {
				out[series{"merge_duration_count", l["repository"], ""}] = float64(m.GetHistogram().GetSampleCount())
			}
		}
		for _, m := range f["gitpulse_pull_request_events_total"].GetMetric() {
			if l := labelMap(m); l["namespace"] == ns {
				out[series{"pull_request_events", l["repository"], l["action"]}] = m.GetCounter().GetValue()
			}
		}
		return out
	}
	oldest := float64(opened.Unix())
	under := func(repo, eventsRepo string) map[series]float64 {
		return map[series]float64{
			{"gitpulse_pull_requests", repo, "open"}:                          2,
			{"gitpulse_pull_requests", repo, "merged"}:                        1,
			{"gitpulse_branches", repo, "created"}:                            1,
			{"gitpulse_pull_request_oldest_open_timestamp_seconds", repo, ""}: oldest,
			{"merge_duration_count", repo, ""}:                                1,
			{"pull_request_events", eventsRepo, "opened"}:                     1,
		}
	}
	eventually(t, 15*time.Second, "before the rename", func() (bool, string) {
		body, f := scrape(t, handlerOf(svc))
		got, want := observe(f), under(from, from)
		return maps.Equal(got, want), fmt.Sprintf("%v, want %v\n%s", got, want, body)
	})

	// One pull request follows the rename (as the recorder writes it).
	pr, err := prs.Get(ctx, naming.PullRequestName(from, id, 1), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pr.Spec.Repository = to
	pr.Status.Bookkeeping = namedAt(opened.Add(time.Hour))
	if _, err := prs.Update(ctx, pr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "after one object followed the rename", func() (bool, string) {
		body, f := scrape(t, handlerOf(svc))
		got, want := observe(f), under(to, from)
		return maps.Equal(got, want), fmt.Sprintf("%v, want %v\n%s", got, want, body)
	})
}
