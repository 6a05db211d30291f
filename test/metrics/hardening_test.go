package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/metrics"
)

// Issue 10 item 2: Events and objects written by anyone with RBAC (or by an
// older recorder) may carry repository names with control characters or
// whitespace; no label value ever does. Such Events are counted as
// uncountable (invalid_repository), such objects are left out of the gauges.
func TestLabels_NeverCarryControlCharactersOrWhitespace(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	hostile := []string{"acme/a\nb", "acme/a\x00", "acme/a\rb", "acme/a\tb", "acme/a\x7f", "acme/a b", "acme/a\u2028b", "acme/a\u0085b"}
	events := []eventSpec{{delivery: "good-1", kind: "PullRequest", repository: "acme/api", action: "opened"}}
	for i, repo := range hostile {
		events = append(events, eventSpec{delivery: "hostile-" + string(rune('a'+i)), kind: "PullRequest", repository: repo, action: "opened"})
	}
	mustCreateEvents(t, env.Kube, ns, events...)
	ctx := context.Background()
	objects := 0
	for i, repo := range append([]string{"acme/api"}, hostile...) {
		b := &stablev1.Branch{
			ObjectMeta: metav1.ObjectMeta{Name: "branch-" + string(rune('a'+i))},
			Spec:       stablev1.BranchSpec{Name: "main", State: "created", Repository: repo},
		}
		if _, err := env.Gitpulse.StableV1().Branches(ns).Create(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Logf("the API server refuses a Branch of %q: %v", repo, err)
			continue
		}
		objects++
	}
	if objects < 2 {
		t.Fatalf("only %d Branch objects could be created; the test needs hostile ones", objects)
	}
	svc := startService(t, env.Config(), metrics.Config{Namespace: ns, MaxRepositories: 100})
	eventually(t, 30*time.Second, "good Event counted, hostile ones uncountable", func() (bool, string) {
		body, f := scrape(t, svc.Handler())
		return counterSum(f, "gitpulse_pull_request_events_total", nil) == 1 &&
			counterSum(f, "gitpulse_metrics_events_uncountable_total", map[string]string{"reason": "invalid_repository"}) == float64(len(hostile)) &&
			counterSum(f, "gitpulse_branches", nil) == 1, body
	})
	_, fams := scrape(t, svc.Handler())
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.ContainsFunc(l.GetValue(), func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
					t.Errorf("%s{%s=%q}", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}
