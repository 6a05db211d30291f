package metrics_test

import (
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/function"
	"github.com/liatrio/gitpulse/pkg/metrics"
	"github.com/liatrio/gitpulse/pkg/naming"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var update = flag.Bool("update", false, "rewrite testdata/*.prom golden files from the current output")

// fixture writes a namespace's worth of objects and Events whose exposition
// is testdata/exposition.prom: four repositories against a cap of two, so
// the last two fold into repository="other"; malformed Events; an Event of
// another controller that the field selector must keep out.
//
// Admission to the cap is first come, so the fixture comes in two phases:
// fixtureAcme, then (once those Events are counted) fixtureZeta.
func fixtureAcme(t *testing.T, env *testenv.Env, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	day := func(d, h int) *metav1.Time {
		tm := metav1.NewTime(time.Date(2026, 11, d, h, 0, 0, 0, time.UTC))
		return &tm
	}
	prs := []struct {
		repo     string
		number   int64
		status   string
		opened   *metav1.Time
		mergedAt *metav1.Time
	}{
		{"acme/api", 1, "open", day(1, 0), nil},
		{"acme/api", 2, "merged", day(1, 0), day(1, 2)}, // 2 h
		{"acme/api", 3, "merged", day(2, 0), day(9, 0)}, // 7 d
		{"acme/web", 4, "closed", day(3, 0), nil},       //
		{"acme/web", 5, "merged", day(1, 0), day(3, 0)}, // 2 d
		{"acme/web", 6, "open", day(20, 0), nil},        //
	}
	for _, p := range prs {
		pr := &stablev1.PullRequest{
			ObjectMeta: metav1.ObjectMeta{Name: naming.PullRequestName(p.repo, 0, p.number),
				Annotations: map[string]string{stablev1.AnnotationRepository: p.repo}},
			Spec: stablev1.PullRequestSpec{User: "octocat", Branch: "feature", Status: p.status, ID: "1",
				Repository: p.repo, Number: p.number, OpenedAt: p.opened, MergedAt: p.mergedAt, Merged: p.status == "merged"},
		}
		if p.repo == "acme/api" && p.number == 2 { // reviewed after 1 h, approved after 2 h
			pr.Spec.FirstReviewAt, pr.Spec.FirstApprovalAt, pr.Spec.ReviewCount, pr.Spec.ApprovalCount = day(1, 1), day(1, 2), 2, 1
		}
		if _, err := env.Gitpulse.StableV1().PullRequests(ns).Create(ctx, pr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	branches := []struct{ repo, name, state string }{
		{"acme/api", "main", "created"},
		{"acme/api", "feature/x", "deleted"},
		{"acme/web", "main", "created"},
	}
	for _, b := range branches {
		br := &stablev1.Branch{
			ObjectMeta: metav1.ObjectMeta{Name: naming.BranchName(b.repo, 0, b.name)},
			Spec:       stablev1.BranchSpec{Name: b.name, State: b.state, Repository: b.repo},
		}
		if _, err := env.Gitpulse.StableV1().Branches(ns).Create(ctx, br, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Production of acme/api: deployment 1 fails on day 2 at 00:00,
	// deployment 2 fails at 01:00 and succeeds at 03:00, shipping pull
	// request 2 (opened day 1 00:00): recovery 3 h, lead time 27 h.
	deployments := []stablev1.GitHubDeploymentSpec{
		{Repository: "acme/api", DeploymentID: 1, Environment: "production", State: "failure", CreatedAt: day(1, 23), FirstFailureAt: day(2, 0)},
		{Repository: "acme/api", DeploymentID: 2, Environment: "production", State: "success", CreatedAt: day(2, 0), FirstFailureAt: day(2, 1),
			FirstSuccessAt: day(2, 3), Changes: []stablev1.DeployedChange{{Number: 2, OpenedAt: day(1, 0), MergedAt: day(1, 2), By: "sha"}}, ChangeCount: 1},
	}
	for _, d := range deployments {
		obj := &stablev1.GitHubDeployment{ObjectMeta: metav1.ObjectMeta{Name: naming.DeploymentName(d.Repository, 0, d.DeploymentID)}, Spec: d}
		if _, err := env.Gitpulse.StableV1().GitHubDeployments(ns).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mustCreateEvents(t, env.Kube, ns,
		eventSpec{delivery: "r01", kind: "PullRequest", repository: "acme/api", action: "review_submitted"},
		eventSpec{delivery: "r02", kind: "PullRequest", repository: "acme/api", action: "review_submitted"},
		eventSpec{delivery: "e01", kind: "GitHubDeployment", repository: "acme/api", action: "created", environment: "production"},
		eventSpec{delivery: "e02", kind: "GitHubDeployment", repository: "acme/api", action: "failure", environment: "production"},
		eventSpec{delivery: "e03", kind: "GitHubDeployment", repository: "acme/api", action: "created", environment: "production"},
		eventSpec{delivery: "e04", kind: "GitHubDeployment", repository: "acme/api", action: "failure", environment: "production"},
		eventSpec{delivery: "e05", kind: "GitHubDeployment", repository: "acme/api", action: "success", environment: "production"},
	)
	mustCreateEvents(t, env.Kube, ns,
		eventSpec{delivery: "a01", kind: "PullRequest", repository: "acme/api", action: "opened"},
		eventSpec{delivery: "a02", kind: "PullRequest", repository: "acme/api", action: "opened"},
		eventSpec{delivery: "a03", kind: "PullRequest", repository: "acme/api", action: "merged"},
		eventSpec{delivery: "a04", kind: "PullRequest", repository: "acme/api", action: "labeled"},
		eventSpec{delivery: "a05", kind: "PullRequest", repository: "acme/web", action: "opened"},
		eventSpec{delivery: "a06", kind: "PullRequest", repository: "acme/web", action: "closed"},
		eventSpec{delivery: "a07", kind: "PullRequest", repository: "acme/web", action: "some_future_action"},
		eventSpec{delivery: "b01", kind: "Branch", repository: "acme/api", action: "created"},
		eventSpec{delivery: "b02", kind: "Branch", repository: "acme/api", action: "pushed"},
		eventSpec{delivery: "b03", kind: "Branch", repository: "acme/api", action: "pushed"},
		eventSpec{delivery: "b04", kind: "Branch", repository: "acme/api", action: "deleted"},
	)
}

// fixtureZeta adds two more repositories (over a cap of two), malformed
// Events and another controller's Event.
func fixtureZeta(t *testing.T, env *testenv.Env, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range []struct {
		number int64
		status string
		merged *metav1.Time
	}{{7, "open", nil}, {8, "merged", &metav1.Time{Time: time.Date(2026, 11, 5, 1, 0, 0, 0, time.UTC)}}} {
		opened := metav1.NewTime(time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC))
		pr := &stablev1.PullRequest{
			ObjectMeta: metav1.ObjectMeta{Name: naming.PullRequestName("zeta/other", 0, p.number)},
			Spec: stablev1.PullRequestSpec{User: "octocat", Branch: "feature", Status: p.status, ID: "1",
				Repository: "zeta/other", Number: p.number, OpenedAt: &opened, MergedAt: p.merged, Merged: p.merged != nil},
		}
		if _, err := env.Gitpulse.StableV1().PullRequests(ns).Create(ctx, pr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	br := &stablev1.Branch{
		ObjectMeta: metav1.ObjectMeta{Name: naming.BranchName("zeta/lib", 0, "main")},
		Spec:       stablev1.BranchSpec{Name: "main", State: "created", Repository: "zeta/lib"},
	}
	if _, err := env.Gitpulse.StableV1().Branches(ns).Create(ctx, br, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mustCreateEvents(t, env.Kube, ns,
		eventSpec{delivery: "c01", kind: "PullRequest", repository: "zeta/other", action: "opened"},
		eventSpec{delivery: "c02", kind: "Branch", repository: "zeta/lib", action: "pushed"},
		// Not countable: seen, reported by reason, never in a counter.
		eventSpec{delivery: "x01", kind: "PullRequest", repository: "", action: "opened"},
		eventSpec{delivery: "x02", kind: "Issue", repository: "acme/api", action: "opened"},
		eventSpec{delivery: "x03", kind: "Branch", repository: "acme/api", action: "renamed"},
		eventSpec{delivery: "x04", kind: "Branch", repository: "not a repository", action: "pushed"},
		// Another controller's Event: filtered out by the API server.
		eventSpec{delivery: "y01", kind: "PullRequest", repository: "acme/api", action: "opened", controller: "example.com/other"},
	)
}

// startFixture writes the fixture around starting a Service with a cap of
// two repositories and waits until everything is counted.
func startFixture(t *testing.T, env *testenv.Env, ns string) *metrics.Service {
	t.Helper()
	fixtureAcme(t, env, ns)
	svc := startService(t, env.Config(), metrics.Config{Namespace: ns, MaxRepositories: 2})
	waitCounted(t, svc, 11, 9)
	fixtureZeta(t, env, ns)
	waitCounted(t, svc, 13, 12)
	return svc
}

// waitCounted waits until the counters sum to events and the gauges to objects.
func waitCounted(t *testing.T, svc *metrics.Service, events, objects float64) {
	t.Helper()
	eventually(t, 30*time.Second, "Events counted and objects seen", func() (bool, string) {
		body, f := scrape(t, handlerOf(svc))
		got := counterSum(f, "gitpulse_pull_request_events_total", nil) + counterSum(f, "gitpulse_branch_events_total", nil)
		seen := counterSum(f, "gitpulse_pull_requests", nil) + counterSum(f, "gitpulse_branches", nil)
		uncountable := counterSum(f, "gitpulse_metrics_events_uncountable_total", nil)
		return got == events && seen == objects && (events < 13 || uncountable == 4), body
	})
}

func TestExposition_MatchesGoldenText(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	svc := startFixture(t, env, ns)

	body, _ := scrape(t, handlerOf(svc))
	got := strings.ReplaceAll(body, `namespace="`+ns+`"`, `namespace="NAMESPACE"`)

	goldenPath := filepath.Join("testdata", "exposition.prom")
	if *update {
		// Self metrics whose values depend on timing stay out of the golden
		// file; they are checked by TestExposition_SelfMetrics.
		var names []string
		for _, n := range goldenFamilies(got) {
			if strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_") {
				continue // the runtime's and the process's, not ours
			}
			switch n {
			case "gitpulse_metrics_last_event_timestamp_seconds", "gitpulse_metrics_checkpoint_writes_total",
				"gitpulse_metrics_checkpoint_pending_events", "gitpulse_metrics_event_lag_seconds":
				continue
			}
			names = append(names, n)
		}
		if err := os.WriteFile(goldenPath, []byte(familyText(got, names)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	want := string(golden)
	if have := familyText(got, goldenFamilies(want)); have != want {
		t.Errorf("exposition differs from %s (go test -run %s -update rewrites it)\n--- got\n%s\n--- want\n%s",
			goldenPath, t.Name(), have, want)
	}
}

func TestExposition_SelfMetrics(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	before := time.Now().Add(-time.Second).Unix()
	mustCreateEvents(t, env.Kube, ns, eventSpec{delivery: "s01", kind: "Branch", repository: "acme/api", action: "pushed"})
	svc := startService(t, env.Config(), metrics.Config{Namespace: ns, CheckpointInterval: 50 * time.Millisecond})
	eventually(t, 30*time.Second, "checkpoint written and newest Event time reported", func() (bool, string) {
		body, f := scrape(t, handlerOf(svc))
		last := counterSum(f, "gitpulse_metrics_last_event_timestamp_seconds", nil)
		writes := counterSum(f, "gitpulse_metrics_checkpoint_writes_total", map[string]string{"result": "success"})
		pending := counterSum(f, "gitpulse_metrics_checkpoint_pending_events", nil)
		return last >= float64(before) && last <= float64(time.Now().Unix()) && writes >= 1 && pending == 0, body
	})
}

func TestExposition_NegotiatesOpenMetrics(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	mustCreateEvents(t, env.Kube, ns, eventSpec{delivery: "o01", kind: "PullRequest", repository: "acme/api", action: "opened"})
	svc := startService(t, env.Config(), metrics.Config{Namespace: ns})

	cases := []struct {
		name, accept, wantType string
		wantEOF                bool
	}{
		{"no Accept header gets the text format", "", "text/plain; version=0.0.4", false},
		{"OpenMetrics on request", "application/openmetrics-text; version=1.0.0", "application/openmetrics-text; version=1.0.0", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eventually(t, 30*time.Second, "Event counted", func() (bool, string) {
				req := httptest.NewRequest(http.MethodGet, function.MetricsPath, nil)
				if tc.accept != "" {
					req.Header.Set("Accept", tc.accept)
				}
				rec := httptest.NewRecorder()
				handlerOf(svc).ServeHTTP(rec, req)
				ct := rec.Header().Get("Content-Type")
				body := rec.Body.String()
				sample := `gitpulse_pull_request_events_total{action="opened",namespace="` + ns + `",repository="acme/api"} 1`
				ok := strings.HasPrefix(ct, tc.wantType) && strings.HasSuffix(body, "# EOF\n") == tc.wantEOF &&
					strings.Contains(body, sample)
				return ok, ct + "\n" + body
			})
		})
	}
}

func TestExposition_PassesPromtoolCheckMetrics(t *testing.T) {
	env := testenv.Get(t)
	promtool := filepath.Join(prometheusBin(t, env.Root), "promtool")
	ns := env.Namespace(t)
	svc := startFixture(t, env, ns)
	body, _ := scrape(t, handlerOf(svc))
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s\n--- input\n%s", err, out, body)
	}
}

// The per-repository families are rendered once per change and kept: a
// scrape after a change (a new Event, a new object, a format not asked for
// before) renders and shows it; the next scrape, with nothing changed,
// serves the same text without rendering again.
func TestExposition_RenderedOncePerChange(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	mustCreateEvents(t, env.Kube, ns, eventSpec{delivery: "r01", kind: "PullRequest", repository: "acme/api", action: "opened"})
	svc := startService(t, env.Config(), metrics.Config{Namespace: ns})
	const openMetrics = "application/openmetrics-text; version=1.0.0"
	steps := []struct {
		name   string
		change func(t *testing.T)
		accept string
		want   string // a sample the scrape after the change shows
	}{
		{"the first scrape renders", nil, "",
			`gitpulse_pull_request_events_total{action="opened",namespace="NS",repository="acme/api"} 1`},
		{"a new Event is counted in the next scrape", func(t *testing.T) {
			mustCreateEvents(t, env.Kube, ns, eventSpec{delivery: "r02", kind: "PullRequest", repository: "acme/api", action: "opened"})
		}, "", `gitpulse_pull_request_events_total{action="opened",namespace="NS",repository="acme/api"} 2`},
		{"a new object is in the next scrape", func(t *testing.T) {
			pr := &stablev1.PullRequest{
				ObjectMeta: metav1.ObjectMeta{Name: naming.PullRequestName("acme/api", 0, 9)},
				Spec:       stablev1.PullRequestSpec{User: "u", Branch: "b", Status: "open", ID: "9", Repository: "acme/api", Number: 9},
			}
			if _, err := env.Gitpulse.StableV1().PullRequests(ns).Create(context.Background(), pr, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}, "", `gitpulse_pull_requests{namespace="NS",repository="acme/api",state="open"} 1`},
		{"OpenMetrics is rendered once too", nil, openMetrics,
			`gitpulse_pull_request_events_total{action="opened",namespace="NS",repository="acme/api"} 2`},
	}
	get := func(accept string) string {
		req := httptest.NewRequest(http.MethodGet, function.MetricsPath, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		rec := httptest.NewRecorder()
		handlerOf(svc).ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /metrics = %d: %s", rec.Code, rec.Body.String())
		}
		return rec.Body.String()
	}
	renders := func(body string) float64 {
		m := regexp.MustCompile(`(?m)^gitpulse_metrics_exposition_renders_total (\S+)$`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no gitpulse_metrics_exposition_renders_total in\n%s", body)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	perRepository := []string{"gitpulse_pull_request_events_total", "gitpulse_pull_requests", "gitpulse_branches"}
	before := 0.0
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if step.change != nil {
				step.change(t)
			}
			want := strings.ReplaceAll(step.want, "NS", ns)
			var first string
			eventually(t, 30*time.Second, "the change in a scrape", func() (bool, string) {
				first = get(step.accept)
				return strings.Contains(first, want), first
			})
			rendered := renders(first)
			if rendered <= before {
				t.Errorf("renders = %v after the change, want more than %v", rendered, before)
			}
			again := get(step.accept)
			if got := renders(again); got != rendered {
				t.Errorf("a scrape after no change rendered again: renders %v, then %v", rendered, got)
			}
			if a, b := familyText(first, perRepository), familyText(again, perRepository); a != b {
				t.Errorf("the kept text differs from the first:\n--- first\n%s\n--- again\n%s", a, b)
			}
			if step.accept == openMetrics && (!strings.HasSuffix(again, "# EOF\n") || strings.Count(again, "# EOF") != 1) {
				t.Errorf("OpenMetrics must end in exactly one # EOF:\n%s", again)
			}
			before = rendered
		})
	}
}
