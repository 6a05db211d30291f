package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/metrics"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// Hostile input: Events and objects written by anyone with RBAC (or by an
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
		body, f := scrape(t, handlerOf(svc))
		return counterSum(f, "gitpulse_pull_request_events_total", nil) == 1 &&
			counterSum(f, "gitpulse_metrics_events_uncountable_total", map[string]string{"reason": "invalid_repository"}) == float64(len(hostile)) &&
			counterSum(f, "gitpulse_branches", nil) == 1, body
	})
	_, fams := scrape(t, handlerOf(svc))
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

// Item 6: strays could take every repository slot for good. A repository
// with no live Event and no object for the idle timeout gives its slot
// back; its series end (its counts are not folded into "other", nor
// brought back by a restart) and the next repository gets its own series.
func TestCap_IdleRepositoriesGiveBackTheirSlots(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	cfg := metrics.Config{Namespace: ns, MaxRepositories: 1, RepositoryIdleTimeout: time.Second, CheckpointInterval: 100 * time.Millisecond}
	mustCreateEvents(t, env.Kube, ns, eventSpec{delivery: "stray-1", kind: "PullRequest", repository: "stray/x", action: "opened"})
	svc := startService(t, env.Config(), cfg)
	byRepo := func(f map[string]*dto.MetricFamily, r string) float64 {
		return counterSum(f, "gitpulse_pull_request_events_total", map[string]string{"namespace": ns, "repository": r})
	}
	eventually(t, 30*time.Second, "stray/x counted", func() (bool, string) {
		body, f := scrape(t, handlerOf(svc))
		return byRepo(f, "stray/x") == 1, body
	})
	// The stray's Event expires (the API server's event TTL) and it has no
	// object: after the idle timeout its slot is free.
	if err := env.Kube.CoreV1().Events(ns).Delete(ctx, naming.EventName("stray-1"), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "stray/x series gone", func() (bool, string) {
		body, f := scrape(t, handlerOf(svc))
		return !strings.Contains(body, `repository="stray/x"`) && byRepo(f, "other") == 0, body
	})
	mustCreateEvents(t, env.Kube, ns, eventSpec{delivery: "real-1", kind: "PullRequest", repository: "acme/api", action: "opened"})
	eventually(t, 30*time.Second, "acme/api takes the freed slot", func() (bool, string) {
		body, f := scrape(t, handlerOf(svc))
		return byRepo(f, "acme/api") == 1 && byRepo(f, "other") == 0 && !strings.Contains(body, `repository="stray/x"`), body
	})
	stop(t, svc)
	again := startService(t, env.Config(), cfg)
	eventually(t, 30*time.Second, "a restart does not bring stray/x back", func() (bool, string) {
		body, f := scrape(t, handlerOf(again))
		return byRepo(f, "acme/api") == 1 && !strings.Contains(body, `repository="stray/x"`), body
	})
}
