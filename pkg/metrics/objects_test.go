package metrics

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// objectFamilyNames are the families computed from the objects.
var objectFamilyNames = []string{
	"gitpulse_pull_requests", "gitpulse_branches", "gitpulse_pull_request_merge_duration_seconds",
	"gitpulse_pull_request_oldest_open_timestamp_seconds", "gitpulse_pull_request_time_to_first_review_seconds",
	"gitpulse_pull_request_time_to_approval_seconds", "gitpulse_change_lead_time_seconds",
	"gitpulse_failed_deployment_recovery_seconds", "gitpulse_metrics_series_dropped_total",
}

// objectFixture: three repositories in two namespaces, with objects of
// every kind the object families read, one object of an invalid
// repository (left out) and one named by annotation only.
func objectFixture() ([]*stablev1.PullRequest, []*stablev1.Branch, []*stablev1.GitHubDeployment) {
	pr := func(name, ns, repo, status string, merged bool, opened, mergedAt, review, approval *metav1.Time) *stablev1.PullRequest {
		return &stablev1.PullRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, CreationTimestamp: metav1.NewTime(time.Unix(1_600_000_000, 0))},
			Spec: stablev1.PullRequestSpec{Repository: repo, Status: status, Merged: merged, OpenedAt: opened,
				MergedAt: mergedAt, FirstReviewAt: review, FirstApprovalAt: approval},
		}
	}
	br := func(name, ns, repo, state string) *stablev1.Branch {
		return &stablev1.Branch{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: stablev1.BranchSpec{Repository: repo, Name: name, State: state}}
	}
	dep := func(name, ns, repo, env string, failure, success *metav1.Time, changes ...stablev1.DeployedChange) *stablev1.GitHubDeployment {
		return &stablev1.GitHubDeployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: stablev1.GitHubDeploymentSpec{Repository: repo, Environment: env, FirstFailureAt: failure,
				FirstSuccessAt: success, Changes: changes},
		}
	}
	change := func(n int64, opened *metav1.Time) stablev1.DeployedChange {
		return stablev1.DeployedChange{Number: n, OpenedAt: opened, By: "sha"}
	}
	annotated := pr("p09", "gitpulse", "", "open", false, minutes(-100), nil, nil, nil)
	annotated.Annotations = map[string]string{stablev1.AnnotationRepository: "zeta/lib"}
	prs := []*stablev1.PullRequest{
		pr("p01", "gitpulse", "acme/api", "open", false, minutes(10), nil, minutes(20), nil),
		pr("p02", "gitpulse", "acme/api", "open", false, nil, nil, nil, nil),
		pr("p03", "gitpulse", "acme/api", "closed", true, minutes(0), minutes(45), minutes(5), minutes(40)),
		pr("p04", "gitpulse", "acme/api", "closed", false, minutes(0), nil, nil, nil),
		pr("p05", "gitpulse", "acme/web", "merged", false, minutes(0), minutes(2000), nil, minutes(1900)),
		pr("p06", "gitpulse", "acme/web", "merged", false, minutes(0), minutes(-5), nil, nil), // merged before opened: left out
		pr("p07", "team", "acme/api", "open", false, minutes(3), nil, nil, nil),
		pr("p08", "gitpulse", "zeta/lib", "merged", true, minutes(0), minutes(90000), minutes(1), minutes(2)),
		annotated,
		pr("p10", "gitpulse", "not a repository", "open", false, minutes(0), nil, nil, nil),
	}
	brs := []*stablev1.Branch{
		br("b1", "gitpulse", "acme/api", "created"),
		br("b2", "gitpulse", "acme/api", "deleted"),
		br("b3", "team", "zeta/lib", "created"),
		br("b4", "team", "zeta/lib", "created"),
	}
	deps := []*stablev1.GitHubDeployment{
		dep("d1", "gitpulse", "acme/api", "production", minutes(200), nil),
		dep("d2", "gitpulse", "acme/api", "production", nil, minutes(300), change(3, minutes(0)), change(1, minutes(10))),
		dep("d3", "gitpulse", "acme/api", "eu west", nil, minutes(400), change(3, minutes(0))),
		dep("d4", "gitpulse", "zeta/lib", "production", minutes(100), minutes(101), change(8, minutes(0))),
		dep("d5", "team", "acme/api", "production", nil, nil),
	}
	return prs, brs, deps
}

// compactObjects turns typed objects into the records the caches keep,
// through the informers' transform.
func compactObjects(prs []*stablev1.PullRequest, brs []*stablev1.Branch, deps []*stablev1.GitHubDeployment) (
	[]*cachedPullRequest, []*cachedBranch, []*cachedDeployment) {
	return compactAll[*cachedPullRequest](prs), compactAll[*cachedBranch](brs), compactAll[*cachedDeployment](deps)
}

func compactAll[R, T any](objs []T) []R {
	out := make([]R, 0, len(objs))
	for _, o := range objs {
		r, err := compactObject(o)
		if err != nil {
			panic(err)
		}
		out = append(out, r.(R))
	}
	return out
}

// fixtureView is the fixture's view with a cap of maxRepos repositories.
func fixtureView(maxRepos int) func() *view {
	agg := aggregateObjects(compactObjects(objectFixture()))
	repos := newRepoCap(maxRepos)
	return func() *view { return (&view{}).admitObjects(repos, agg) }
}

// The samples are those the families computed object by object before the
// aggregate existed: the texts in testdata were produced by that code for
// this fixture. The cap admits repositories in sorted order, so with a cap
// of two zeta/lib folds into "other" and with one acme/web does too.
func TestObjectFamilies_AggregateReportsTheObjects(t *testing.T) {
	tests := []struct {
		name     string
		maxRepos int
		want     string
	}{
		{name: "every repository has its own series", maxRepos: 10, want: "objects-uncapped.prom"},
		{name: "past the cap repositories fold into other", maxRepos: 1, want: "objects-capped.prom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCollector(fixtureView(tt.maxRepos))
			if err := testutil.CollectAndCompare(c, golden(t, tt.want), objectFamilyNames...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestObjectFamilies_ObjectOrderDoesNotMatter(t *testing.T) {
	prs, brs, deps := objectFixture()
	reverse := func() {
		for i, j := 0, len(prs)-1; i < j; i, j = i+1, j-1 {
			prs[i], prs[j] = prs[j], prs[i]
		}
		for i, j := 0, len(deps)-1; i < j; i, j = i+1, j-1 {
			deps[i], deps[j] = deps[j], deps[i]
		}
	}
	reverse()
	agg := aggregateObjects(compactObjects(prs, brs, deps))
	repos := newRepoCap(1)
	c := newCollector(func() *view { return (&view{}).admitObjects(repos, agg) })
	if err := testutil.CollectAndCompare(c, golden(t, "objects-capped.prom"), objectFamilyNames...); err != nil {
		t.Fatal(err)
	}
}

func golden(t *testing.T, name string) io.Reader {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// The families only read the view (the cap admitted the objects'
// repositories when it was built), so serving them in any order gives the
// same exposition. Each order gets a fresh cap: were admission still done
// while rendering, series_dropped served before the object families would
// miss what they fold into "other", and with two slots an order starting
// with the branch states would give the second to zeta/lib rather than
// acme/web.
func TestFamilies_OrderDoesNotMatter(t *testing.T) {
	agg := aggregateObjects(compactObjects(objectFixture()))
	table := familyTable()
	var names []string
	for _, f := range table {
		names = append(names, f.name)
	}
	render := func(families []family, maxRepos int) string {
		t.Helper()
		repos := newRepoCap(maxRepos)
		c := newCollectorOf(families, func() *view { return (&view{}).admitObjects(repos, agg) })
		text, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain, names...)
		if err != nil {
			t.Fatal(err)
		}
		return string(text)
	}

	reversed := slices.Clone(table)
	slices.Reverse(reversed)
	orders := map[string][]family{"reversed": reversed}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 10 {
		shuffled := slices.Clone(table)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		orders[fmt.Sprintf("shuffled %d", i)] = shuffled
	}
	for _, maxRepos := range []int{1, 2, 10} {
		want := render(table, maxRepos)
		if !strings.Contains(want, "gitpulse_pull_requests{") || !strings.Contains(want, "gitpulse_metrics_series_dropped_total ") {
			t.Fatalf("cap %d: the exposition misses families:\n%s", maxRepos, want)
		}
		for name, families := range orders {
			if got := render(families, maxRepos); got != want {
				t.Errorf("cap %d, %s: the exposition differs from the table order's:\n%s\nwant:\n%s", maxRepos, name, got, want)
			}
		}
	}

	// And in reverse it is still the golden one.
	repos := newRepoCap(1)
	c := newCollectorOf(reversed, func() *view { return (&view{}).admitObjects(repos, agg) })
	if err := testutil.CollectAndCompare(c, golden(t, "objects-capped.prom"), objectFamilyNames...); err != nil {
		t.Fatal(err)
	}
}
