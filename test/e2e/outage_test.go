package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/liatrio/gitpulse/internal/fakegithub"
	"github.com/liatrio/gitpulse/pkg/naming"
	"github.com/liatrio/gitpulse/pkg/reconcile"
	"github.com/liatrio/gitpulse/test/workload"
)

// TestChaos_OutageRecoveredByReconcile is the chaos test's outage (issue
// 13): GitHub (the fake, internal/fakegithub, with one organisation webhook
// per owner pointing at the stack's receive adapter) delivers a generated
// workload once, as GitHub does — it never retries. For two stretches the
// delivery path is down: first the adapter answers 400 because the Broker
// does not acknowledge, then the ingress answers 503 (a cluster upgrade).
// Those deliveries are recorded as failed at GitHub and nothing reaches the
// recorder. Then GitHubSources naming the webhooks are applied and
// reconcile is triggered as `make run` does: every failed delivery is
// redelivered once, and at the end nothing is lost and nothing counted
// twice (objects, Events, counters; verifyWorkload).
func TestChaos_OutageRecoveredByReconcile(t *testing.T) {
	s := stack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	w := workload.Generate(workload.Options{Repos: 14, PRsPerRepo: 4, BranchesPerRepo: 4, Seed: 1313, Owners: "outage",
		Start: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)})
	order, _ := w.Schedule(13, 0.1)

	const token = "ghp_outage"
	gh := fakegithub.New(fakegithub.Options{Token: token})
	t.Cleanup(gh.Close)
	target, err := url.Parse(s.WebhookURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	var mode atomic.Int32 // 0 up, 1 Broker not acknowledging, 2 ingress down
	gate := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case 1:
			http.Error(rw, "the Broker did not acknowledge the event: answered 503", http.StatusBadRequest)
		case 2:
			http.Error(rw, "upstream connect error", http.StatusServiceUnavailable)
		default:
			proxy.ServeHTTP(rw, r)
		}
	}))
	t.Cleanup(gate.Close)
	hooks := map[string]int64{}
	for _, it := range w.Items() {
		owner, _, _ := strings.Cut(it.Repo, "/")
		if hooks[owner] == 0 {
			hooks[owner] = gh.AddOrgHook(owner, gate.URL+target.Path, []byte(s.Secret()))
		}
	}

	// Deliver, four at a time; the outages cover 30–45% and 60–70% of the
	// schedule.
	var failedSends atomic.Int64
	work := make(chan workload.Item)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				if code := gh.Deliver(ctx, it.Repo, it.Delivery); code != http.StatusAccepted {
					failedSends.Add(1)
				}
			}
		}()
	}
	for i, it := range order {
		switch pct := i * 100 / len(order); {
		case pct >= 30 && pct < 45:
			mode.Store(1)
		case pct >= 60 && pct < 70:
			mode.Store(2)
		default:
			mode.Store(0)
		}
		work <- it
	}
	close(work)
	wg.Wait()
	mode.Store(0)
	failed := map[string]bool{}
	for _, it := range w.Items() {
		ok := false
		for _, a := range gh.Attempts(it.ID) {
			ok = ok || a.GetStatusCode() == http.StatusAccepted
		}
		if !ok {
			failed[it.ID] = true
		}
	}
	if len(failed) < 50 {
		t.Fatalf("only %d deliveries failed during the outages (%d failed sends); the test needs more", len(failed), failedSends.Load())
	}

	// The GitHubSources, as a user applies them (with the webhook ids
	// their controller would have set), and the Secret they name.
	ns := s.Namespace()
	_, err = s.Kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gitpulse-github-outage"},
		Data: map[string][]byte{"accessToken": []byte(token), "secretToken": []byte(s.Secret())}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(s.ControlPlane.Config())
	sources := dyn.Resource(reconcile.GitHubSources).Namespace(ns)
	for owner, id := range hooks {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "sources.knative.dev/v1alpha1", "kind": "GitHubSource",
			"metadata": map[string]any{"name": owner},
			"spec": map[string]any{
				"ownerAndRepository": owner, "githubAPIURL": gh.URL(),
				"eventTypes":  []any{"pull_request", "push", "create", "delete"},
				"accessToken": map[string]any{"secretKeyRef": map[string]any{"name": "gitpulse-github-outage", "key": "accessToken"}},
				"secretToken": map[string]any{"secretKeyRef": map[string]any{"name": "gitpulse-github-outage", "key": "secretToken"}},
			},
		}}
		got, err := sources.Create(ctx, u, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_ = unstructured.SetNestedField(got.Object, strconv.FormatInt(id, 10), "status", "webhookIDKey")
		if _, err := sources.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sources.Delete(context.Background(), owner, metav1.DeleteOptions{}) })
	}

	// What GitHub delivered before the sources existed is recorded first:
	// the Broker acknowledges before it dispatches, so on a loaded machine
	// the recorder may still be working through them (and a trigger would
	// wait in line behind them, as it would in queue-proxy's).
	recorded := func(want func(id string) bool) (n int) {
		list, err := s.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Logf("listing Events: %v", err)
			return 0
		}
		names := map[string]bool{}
		for _, e := range list.Items {
			names[e.Name] = true
		}
		for _, it := range w.Items() {
			if want(it.ID) && names[naming.EventName(it.ID)] {
				n++
			}
		}
		return n
	}
	delivered := func(id string) bool { return !failed[id] }
	for deadline := time.Now().Add(2 * time.Minute); recorded(delivered) < len(w.Items())-len(failed); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries GitHub made recorded after 2 minutes", recorded(delivered), len(w.Items())-len(failed))
		}
	}

	// Reconcile as `make run` triggers it, until every failed delivery has
	// its Event (the redeliveries travel through the Broker). A trigger
	// that fails is sent again, as the Broker retries the PingSource's.
	redelivered := func(id string) bool { return failed[id] }
	queue := func() string {
		q := s.RecorderQueue()
		inFlight, _ := q.InFlight()
		return fmt.Sprintf("recorder: %d in flight, %d queued and %d refused so far", inFlight, q.Queued(), q.Refused())
	}
	passes := 0
	for deadline := time.Now().Add(3 * time.Minute); recorded(redelivered) < len(failed); passes++ {
		if time.Now().After(deadline) {
			t.Fatalf("after %d passes %d of %d failed deliveries recorded (%s)", passes, recorded(redelivered), len(failed), queue())
		}
		start := time.Now()
		if code, err := s.TriggerReconcile(ctx); err != nil || code/100 != 2 {
			t.Logf("reconcile trigger answered %d after %v (%v); %s; sending it again",
				code, time.Since(start).Round(time.Millisecond), err, queue())
		}
		gh.Wait()
		time.Sleep(2 * time.Second)
	}
	for _, it := range w.Items() {
		n := gh.Redeliveries(it.ID)
		switch {
		case failed[it.ID] && n != 1:
			t.Errorf("failed delivery %s redelivered %d times, want 1", it.ID, n)
		case !failed[it.ID] && n != 0:
			t.Errorf("delivery %s succeeded yet was redelivered %d times", it.ID, n)
		}
	}
	verifyWorkload(t, ctx, s, w, fmt.Sprintf("%d sends, %d failed during the outages and were redelivered after %d reconcile passes",
		len(order), len(failed), passes), "outage")
}
