package reconcile

import (
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestBackoff_DoublesFromAMinuteUpToItsCap(t *testing.T) {
	for _, tt := range []struct {
		attempts  int
		retriable bool
		want      time.Duration
	}{
		{1, false, time.Minute}, {2, false, 2 * time.Minute}, {3, false, 4 * time.Minute}, {6, false, 32 * time.Minute},
		{9, false, 256 * time.Minute}, {10, false, 6 * time.Hour}, {100, false, 6 * time.Hour},
		// 5xx and no answer may pass unchanged: never more than 10 minutes.
		{1, true, time.Minute}, {4, true, 8 * time.Minute}, {5, true, 10 * time.Minute}, {50, true, 10 * time.Minute},
	} {
		if got := backoff(tt.attempts, tt.retriable, 6*time.Hour); got != tt.want {
			t.Errorf("backoff(%d, retriable %v) = %v, want %v", tt.attempts, tt.retriable, got, tt.want)
		}
	}
}

func TestUnit_ItemsNameTheirRepositoryAndNumber(t *testing.T) {
	for _, tt := range []struct {
		u          unit
		kind, repo string
		n          int64
		ok, list   bool
	}{
		{pullUnit("acme/api", 7), "pull", "acme/api", 7, true, false},
		{deploymentUnit("acme/api", 4200000001), "deployment", "acme/api", 4200000001, true, false},
		{listUnit(ResourcePulls, "acme/api"), "", "", 0, false, true},
		{listUnit(ResourceBranches, "acme/api"), "", "", 0, false, true},
		{listUnit(ResourceDeliveries, "acme"), "", "", 0, false, true},
		{redeliveryUnit("d1e2"), "", "", 0, false, false},
		{unit("pull/acme/api#x"), "", "", 0, false, false},
	} {
		kind, repo, n, ok := tt.u.item()
		if kind != tt.kind || repo != tt.repo || n != tt.n || ok != tt.ok {
			t.Errorf("%s.item() = %q %q %d %v; want %q %q %d %v", tt.u, kind, repo, n, ok, tt.kind, tt.repo, tt.n, tt.ok)
		}
		// A list succeeds only once read to its end; an item or a
		// redelivery with its one request.
		if tt.u.list() != tt.list {
			t.Errorf("%s.list() = %v, want %v", tt.u, tt.u.list(), tt.list)
		}
	}
}

func TestFailures_ARunOfPassesRemembersRetriesAndForgets(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	opts := Options{MaxFailures: 100, MaxRetryBackoff: 6 * time.Hour, Window: 90 * 24 * time.Hour}
	c := cursor{cm: &corev1.ConfigMap{}}
	pr := pullUnit("acme/api", 3)
	fail := outcome{failed: true, f: failure{Resource: ResourceReviews, Reason: ReasonNotFound, Status: 404, URL: "https://x/reviews"}}
	steps := []struct {
		at           time.Time
		out          map[unit]outcome
		wantAttempts int
		wantRetryAt  time.Time
	}{
		{t0, map[unit]outcome{pr: fail}, 1, t0.Add(time.Minute)},
		{t0.Add(10 * time.Minute), map[unit]outcome{pr: fail}, 2, t0.Add(12 * time.Minute)},
		{t0.Add(20 * time.Minute), map[unit]outcome{pr: fail}, 3, t0.Add(24 * time.Minute)},
		{t0.Add(30 * time.Minute), map[unit]outcome{pr: {}}, 0, time.Time{}}, // succeeded: forgotten
	}
	for i, s := range steps {
		c.applyOutcomes(s.out, opts, s.at)
		f, ok := c.failures()[pr]
		if s.wantAttempts == 0 {
			if ok || c.get(KeyFailures) != "" {
				t.Errorf("step %d: still remembered: %s", i, c.get(KeyFailures))
			}
			continue
		}
		if !ok || f.Attempts != s.wantAttempts || !f.RetryAt.Equal(s.wantRetryAt) || !f.First.Equal(t0) || !f.Last.Equal(s.at) ||
			f.Reason != ReasonNotFound || f.Status != 404 || f.Resource != ResourceReviews {
			t.Errorf("step %d: %+v; want %d attempts, retry at %v, first %v", i, f, s.wantAttempts, s.wantRetryAt, t0)
		}
	}
}

func TestFailures_BoundedOldestFirstFailureDropped(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name   string
		max    int
		passes [][]int // the pull requests failing in each pass, 10 minutes apart
		want   []int
	}{
		{name: "under the cap: all kept", max: 5, passes: [][]int{{1, 2}, {3}}, want: []int{1, 2, 3}},
		{name: "over the cap: the oldest first failures go", max: 3, passes: [][]int{{1, 2}, {3, 4}, {5}}, want: []int{3, 4, 5}},
		{name: "failing again does not make a failure younger", max: 2, passes: [][]int{{1}, {2}, {1, 3}}, want: []int{2, 3}},
		{name: "ties at the same first failure: by key", max: 2, passes: [][]int{{1, 2, 3}}, want: []int{2, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{MaxFailures: tt.max, MaxRetryBackoff: 6 * time.Hour}
			c := cursor{cm: &corev1.ConfigMap{}}
			for i, prs := range tt.passes {
				outs := map[unit]outcome{}
				for _, n := range prs {
					outs[pullUnit("acme/api", n)] = outcome{failed: true, f: failure{Resource: ResourceReviews, Reason: ReasonNotFound}}
				}
				c.applyOutcomes(outs, opts, t0.Add(time.Duration(i)*10*time.Minute))
			}
			var got []int
			for u := range c.failures() {
				_, _, n, _ := u.item()
				got = append(got, int(n))
			}
			slices.Sort(got)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("remembered %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFailures_ForgottenWhenNothingCouldReadThemAgain(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	opts := Options{MaxFailures: 10, MaxRetryBackoff: 6 * time.Hour, Window: 48 * time.Hour, Retention: 12 * time.Hour}
	fail := outcome{failed: true, f: failure{Resource: ResourceReviews, Reason: ReasonForbidden}}
	for _, tt := range []struct {
		name string
		u    unit
		age  time.Duration
		kept bool
	}{
		{"a pull request within the window", pullUnit("acme/api", 1), 47 * time.Hour, true},
		{"a pull request older than the window", pullUnit("acme/api", 1), 49 * time.Hour, false},
		{"a list older than the window", listUnit(ResourceBranches, "acme/api"), 49 * time.Hour, false},
		{"a redelivery GitHub still keeps", redeliveryUnit("g1"), 11 * time.Hour, true},
		{"a redelivery GitHub no longer keeps", redeliveryUnit("g1"), 13 * time.Hour, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cursor{cm: &corev1.ConfigMap{}}
			c.applyOutcomes(map[unit]outcome{tt.u: fail}, opts, t0)
			// Another unit's failure rewrites the failures later.
			c.applyOutcomes(map[unit]outcome{pullUnit("acme/api", 99): fail}, opts, t0.Add(tt.age))
			if _, ok := c.failures()[tt.u]; ok != tt.kept {
				t.Errorf("kept %v, want %v", ok, tt.kept)
			}
		})
	}
}
