package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
	"github.com/liatrio/gitpulse/internal/localrun"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
	"github.com/liatrio/gitpulse/pkg/naming"
	"github.com/liatrio/gitpulse/test/workload"
)

// TestChaos_NothingLostNothingCountedTwice sends a generated workload through
// the real GitHubSource receive adapter (signed) and the real Broker — histories shuffled, a
// fifth of deliveries sent twice (some at the same moment) — while the API
// server and etcd are killed and restarted once, and the metrics function is
// killed and restarted once. The Broker retries what the recorder answers
// 5xx with config/'s delivery spec (the Knative processes lose the API
// server too); the sender retries only what the adapter itself could not
// hand over. At the end nothing may have reached the dead-letter sink, every
// object must hold the last state of its history, there must be exactly one
// Event per distinct delivery, and every counter must equal its number of
// distinct deliveries.
func TestChaos_NothingLostNothingCountedTwice(t *testing.T) {
	s := stack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	w := workload.Generate(workload.Options{Repos: 20, PRsPerRepo: 5, BranchesPerRepo: 6, Seed: 42,
		Start: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), ReviewsPerPR: 2, Deployments: 3})
	order, concurrent := w.Schedule(7, 0.2)
	distinct := len(w.Items())
	if distinct < 1000 {
		t.Fatalf("workload has %d distinct deliveries, want >= 1000", distinct)
	}

	sender := &ghwebhook.Sender{URL: s.WebhookURL(), Secret: []byte(s.Secret()), Retries: 40, Backoff: 100 * time.Millisecond,
		Client: &http.Client{Timeout: 30 * time.Second}}
	var sent, retried, failed atomic.Int64
	var firstErr atomic.Value
	send := func(it workload.Item) {
		res, err := sender.Send(ctx, it.Delivery)
		sent.Add(1)
		if res.Attempts > 1 {
			retried.Add(1)
		}
		if err == nil && res.Code != http.StatusAccepted {
			err = fmt.Errorf("delivery %s (%s) answered %d: %s", it.ID, it.Event, res.Code, res.Body)
		}
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}
	}

	// Eight senders; a delivery marked concurrent goes out together with the
	// previous one. Faults are injected at 35% (control plane) and 65%
	// (metrics function) of the schedule, while senders keep sending.
	work := make(chan []workload.Item)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range work {
				var bwg sync.WaitGroup
				for _, it := range batch {
					bwg.Add(1)
					go func() { defer bwg.Done(); send(it) }()
				}
				bwg.Wait()
			}
		}()
	}
	var faults sync.WaitGroup
	for i := 0; i < len(order); {
		batch := []workload.Item{order[i]}
		j := i + 1
		for j < len(order) && concurrent[j] {
			batch = append(batch, order[j])
			j++
		}
		switch {
		case i <= len(order)*35/100 && j > len(order)*35/100:
			faults.Add(1)
			go func() {
				defer faults.Done()
				t.Log("chaos: killing kube-apiserver and etcd")
				s.ControlPlane.Kill()
				time.Sleep(2 * time.Second)
				if err := s.ControlPlane.Restart(ctx); err != nil {
					t.Errorf("restarting control plane: %v", err)
				}
				t.Log("chaos: control plane back")
			}()
		case i <= len(order)*65/100 && j > len(order)*65/100:
			faults.Add(1)
			go func() {
				defer faults.Done()
				t.Log("chaos: killing the metrics function")
				s.KillMetrics()
				time.Sleep(time.Second)
				if err := s.StartMetrics(ctx); err != nil {
					t.Errorf("restarting metrics: %v", err)
				}
				t.Log("chaos: metrics function back")
			}()
		}
		work <- batch
		i = j
	}
	close(work)
	wg.Wait()
	faults.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		t.Fatalf("%d of %d sends failed; first: %v", failed.Load(), sent.Load(), err)
	}
	// The ingress answers 202 also for what it dead-lettered after the
	// last retry: that would be a lost delivery.
	ids := map[string]bool{}
	for _, it := range w.Items() {
		ids[it.ID] = true
	}
	deadLettered := 0
	for _, d := range s.DeadLetter().Events() {
		if ids[d.ID] {
			deadLettered++
			t.Errorf("delivery %s (%s) dead-lettered: knativeerrorcode %s", d.ID, d.Type, d.ErrorCode)
		}
	}

	verifyWorkload(t, ctx, s, w, fmt.Sprintf("%d sends (%d duplicates), %d needed retries, %d dead-lettered",
		len(order), len(order)-distinct, retried.Load(), deadLettered), "chaos")
}

// verifyWorkload checks what both chaos tests promise once every delivery
// of w was sent: every object holds the last state of its history, there is
// exactly one Event per distinct delivery, and every counter equals its
// number of distinct deliveries (waiting for the metrics function to catch
// up). sends describes how they were sent, for the figures line.
func verifyWorkload(t *testing.T, ctx context.Context, s *localrun.Stack, w *workload.Workload, sends, name string) {
	t.Helper()
	distinct := len(w.Items())
	// Objects: the last state of each history.
	gp := versioned.NewForConfigOrDie(s.ControlPlane.Config())
	ns := s.Namespace()
	wrongObjects := 0
	for _, want := range w.PRs {
		got, err := gp.StableV1().PullRequests(ns).Get(ctx, naming.PullRequestName(want.Repo, ghwebhook.Repo(want.Repo).ID(), int64(want.Number)), metav1.GetOptions{})
		if err != nil {
			t.Errorf("PR %s#%d: %v", want.Repo, want.Number, err)
			wrongObjects++
			continue
		}
		if got.Spec.Status != want.Status || got.Spec.HeadSHA != want.HeadSHA || got.Spec.Title != want.Title {
			wrongObjects++
			t.Errorf("PR %s#%d = {%s %s %q}, want {%s %s %q}", want.Repo, want.Number,
				got.Spec.Status, got.Spec.HeadSHA, got.Spec.Title, want.Status, want.HeadSHA, want.Title)
		}
		firstReview := ""
		if got.Spec.FirstReviewAt != nil {
			firstReview = got.Spec.FirstReviewAt.UTC().Format(time.RFC3339)
		}
		wantFirst := ""
		if !want.FirstReviewAt.IsZero() {
			wantFirst = want.FirstReviewAt.UTC().Format(time.RFC3339)
		}
		if got.Spec.ReviewCount != int64(want.Reviews) || got.Spec.ApprovalCount != int64(want.Approvals) || firstReview != wantFirst {
			wrongObjects++
			t.Errorf("PR %s#%d reviews = {%d %d %s}, want {%d %d %s}", want.Repo, want.Number,
				got.Spec.ReviewCount, got.Spec.ApprovalCount, firstReview, want.Reviews, want.Approvals, wantFirst)
		}
	}
	for _, want := range w.Branches {
		got, err := gp.StableV1().Branches(ns).Get(ctx, naming.BranchName(want.Repo, ghwebhook.Repo(want.Repo).ID(), want.Name), metav1.GetOptions{})
		if err != nil {
			t.Errorf("branch %s:%s: %v", want.Repo, want.Name, err)
			wrongObjects++
			continue
		}
		if got.Spec.State != want.State || got.Spec.HeadSHA != want.HeadSHA || got.Spec.PushCount != int64(want.PushCount) {
			wrongObjects++
			t.Errorf("branch %s:%s = {%s %s %d}, want {%s %s %d}", want.Repo, want.Name,
				got.Spec.State, got.Spec.HeadSHA, got.Spec.PushCount, want.State, want.HeadSHA, want.PushCount)
		}
	}

	// Deployments: state, first success and the pull requests shipped
	// (lead time attribution), whatever order merges and statuses came in.
	wantLeadTimes := map[string]int{}
	for _, want := range w.Deployments {
		got, err := gp.StableV1().GitHubDeployments(ns).Get(ctx, naming.DeploymentName(want.Repo, ghwebhook.Repo(want.Repo).ID(), want.ID), metav1.GetOptions{})
		if err != nil {
			t.Errorf("deployment %s/%d: %v", want.Repo, want.ID, err)
			wrongObjects++
			continue
		}
		var changes []int
		for _, c := range got.Spec.Changes {
			changes = append(changes, int(c.Number))
		}
		firstSuccess := ""
		if got.Spec.FirstSuccessAt != nil {
			firstSuccess = got.Spec.FirstSuccessAt.UTC().Format(time.RFC3339)
		}
		wantSuccess := ""
		if !want.FirstSuccessAt.IsZero() {
			wantSuccess = want.FirstSuccessAt.UTC().Format(time.RFC3339)
		}
		if got.Spec.State != want.State || firstSuccess != wantSuccess || fmt.Sprint(changes) != fmt.Sprint(want.Changes) {
			wrongObjects++
			t.Errorf("deployment %s/%d = {%s %s %v}, want {%s %s %v}", want.Repo, want.ID,
				got.Spec.State, firstSuccess, changes, want.State, wantSuccess, want.Changes)
		}
		wantLeadTimes[want.Repo] += len(want.Changes)
	}

	// Events: exactly one per distinct delivery.
	events, err := s.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("reportingComponent", stablev1.ReportingController).String()})
	if err != nil {
		t.Fatal(err)
	}
	// Other tests share the stack; only this workload's repositories count.
	repos := map[string]bool{}
	for _, it := range w.Items() {
		repos[it.Repo] = true
	}
	perDelivery := map[string]int{}
	ours := 0
	for _, e := range events.Items {
		if repos[e.Annotations[stablev1.AnnotationRepository]] {
			perDelivery[stablev1.DeliveryID(&e)]++
			ours++
		}
	}
	lost, doubled := 0, 0
	for _, it := range w.Items() {
		switch n := perDelivery[it.ID]; {
		case n == 0:
			lost++
		case n > 1:
			doubled++
		}
	}

	// Counters: equal to the distinct deliveries of their kind, once the
	// restarted metrics function has caught up.
	want := w.Counts()
	var got map[[3]string]int
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err = scrapeCounts(ctx, s.MetricsURL())
		for k := range got {
			if !repos[k[0]] {
				delete(got, k)
			}
		}
		if err == nil && equalCounts(got, want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	counterDiffs := diffCounts(got, want)
	// Lead times: one observation per shipped pull request, once the
	// function's aggregate of the objects (refreshed at most once a second
	// after they change) has caught up.
	var leadTimes map[string]int
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		if leadTimes, err = scrapeHistogramCounts(ctx, s.MetricsURL(), "gitpulse_change_lead_time_seconds"); err != nil {
			t.Fatal(err)
		}
		if countsMatch(leadTimes, wantLeadTimes) || time.Now().After(deadline) {
			break
		}
	}
	for repo, n := range wantLeadTimes {
		if leadTimes[repo] != n {
			counterDiffs = append(counterDiffs, fmt.Sprintf("gitpulse_change_lead_time_seconds_count{repository=%q} = %d, want %d", repo, leadTimes[repo], n))
		}
	}

	shipped := 0
	for _, n := range wantLeadTimes {
		shipped += n
	}
	t.Logf("%s: %d distinct deliveries, %s; "+
		"%d PRs + %d branches + %d deployments checked, %d wrong; %d Events: %d lost, %d double; counter series wrong: %d",
		name, distinct, sends, len(w.PRs), len(w.Branches), len(w.Deployments), wrongObjects, ours, lost, doubled, len(counterDiffs))
	fmt.Printf("%s figures: distinct=%d lost=%d double_counted=%d wrong_objects=%d counter_mismatches=%d shipped_pull_requests=%d (%s)\n",
		name, distinct, lost, doubled, wrongObjects, len(counterDiffs), shipped, sends)
	if lost != 0 || doubled != 0 || ours != distinct {
		t.Errorf("Events: %d for %d distinct deliveries (%d lost, %d double)", ours, distinct, lost, doubled)
	}
	for _, d := range counterDiffs {
		t.Error(d)
	}
}

// scrapeCounts reads the per-delivery counters from /metrics with the
// Prometheus text parser.
func scrapeCounts(ctx context.Context, url string) (map[[3]string]int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	counts := map[[3]string]int{}
	for name, kind := range map[string]string{
		"gitpulse_pull_request_events_total":        workload.KindPullRequest,
		"gitpulse_branch_events_total":              workload.KindBranch,
		"gitpulse_pull_request_review_events_total": workload.KindReview,
		"gitpulse_deployments_total":                workload.KindDeployment,
	} {
		mf := families[name]
		if mf == nil {
			continue
		}
		for _, m := range mf.GetMetric() {
			action := label(m, "action")
			if kind == workload.KindDeployment {
				action = label(m, "state")
			}
			counts[[3]string{label(m, "repository"), kind, action}] += int(m.GetCounter().GetValue())
		}
	}
	return counts, nil
}

// countsMatch reports whether got has want's count for each of want's
// repositories (a missing one counts 0).
func countsMatch(got, want map[string]int) bool {
	for repo, n := range want {
		if got[repo] != n {
			return false
		}
	}
	return true
}

// scrapeHistogramCounts reads a histogram's observation count per
// repository.
func scrapeHistogramCounts(ctx context.Context, url, name string) (map[string]int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	if mf := families[name]; mf != nil {
		for _, m := range mf.GetMetric() {
			out[label(m, "repository")] += int(m.GetHistogram().GetSampleCount())
		}
	}
	return out, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func equalCounts(a, b map[[3]string]int) bool { return len(diffCounts(a, b)) == 0 }

func diffCounts(got, want map[[3]string]int) []string {
	var d []string
	for k, w := range want {
		if got[k] != w {
			d = append(d, fmt.Sprintf("counter %s{repository=%q,action=%q} = %d, want %d", k[1], k[0], k[2], got[k], w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && g != 0 {
			d = append(d, fmt.Sprintf("unexpected counter %s{repository=%q,action=%q} = %d", k[1], k[0], k[2], g))
		}
	}
	sort.Strings(d)
	return d
}
