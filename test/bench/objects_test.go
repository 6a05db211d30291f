package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/freeport"
	"github.com/liatrio/gitpulse/internal/ghwebhook"
	"github.com/liatrio/gitpulse/internal/localrun"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
	stablev1client "github.com/liatrio/gitpulse/pkg/client/clientset/versioned/typed/stable/v1"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// The metrics function in a namespace the size of an organisation:
// 100,000 objects — 70,000 PullRequests, 25,000 Branches, 5,000
// GitHubDeployments across 1,000 repositories — each with its live Event
// (100,000), then the function started cold. GITPULSE_BENCH_OBJECTS
// changes the number of objects (same shares, same repositories).
//
// The group runs on a stack of its own, on a fresh etcd: the other groups
// have written some 150,000 objects and Events by then, and 200,000 more
// writes would take a shared etcd near its default 2 GiB quota. The objects
// are the recorder's own: it writes one of each shape (an open, a merged
// and reviewed, and a closed pull request; a pushed and a deleted branch; a
// succeeded deployment shipping the merged pull request and a failed one)
// from real deliveries, with its Events, and each is copied with the
// repository, the number or name and the times changed — labels,
// annotations, status and Event fields as the recorder wrote them. The
// copies are written through the API server (validation, admission, the
// watch cache, as the recorder's writes), at concurrency 64; a copy of an
// object the recorder updated is then cleared of its managed fields, as
// that update left the original (createAsRecorded).
func benchMetricsObjects(b *testing.B) {
	total := envInt("GITPULSE_BENCH_OBJECTS", 100_000)
	nPR, nBranch := total*70/100, total*25/100
	nDeploy := total - nPR - nBranch
	const repos = 1000

	ctx := context.Background()
	root, bin := stack.Root(), stack.BinDir()
	stopFirstStack()
	// GITPULSE_BENCH_OBJECTS_DIR keeps the stack's data there, and a later
	// run with the same folder (within the API server's event TTL, an hour)
	// measures the function again without writing the objects again.
	dir := os.Getenv("GITPULSE_BENCH_OBJECTS_DIR")
	marker := filepath.Join(dir, "objects-written")
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.Fatal(err)
		}
	}
	own, err := localrun.Start(ctx, localrun.Options{Root: root, BinDir: bin, Dir: dir, WithoutMetrics: true,
		Env: []string{"GITPULSE_LOG_LEVEL=warn", "GITPULSE_MAX_REPOSITORIES=5000"}})
	if err != nil {
		b.Fatal(err)
	}
	defer own.Stop()
	t := recorderTemplates(b, own)
	written, _ := os.ReadFile(marker)
	reuse := dir != "" && string(written) == strconv.Itoa(total)
	// The metrics function is started cold once everything is written
	// (WithoutMetrics): a running one would watch every write and take CPU
	// from them.

	cfg := own.ControlPlane.Config()
	gp := versioned.NewForConfigOrDie(cfg).StableV1()
	pcfg := *cfg
	pcfg.ContentType = runtime.ContentTypeProtobuf
	kube := kubernetes.NewForConfigOrDie(&pcfg)
	ns := own.Namespace()
	base := time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(time.Second)
	run := seq.Add(1)

	start := time.Now()
	n := total
	if reuse {
		n = 0
		b.Logf("reusing the %d objects and Events written in %s", total, dir)
	}
	l := drive(b, n, 64, func(i int) error {
		var (
			obj interface {
				metav1.Object
				runtime.Object
			}
			ev *corev1.Event
		)
		switch {
		case i < nPR:
			repo, n := benchRepo(i, repos), int64(i/repos+1)
			pr, e := t.pullRequest(repo, n, base)
			created, err := createAsRecorded(ctx, gp.PullRequests(ns), pr)
			if err != nil {
				return fmt.Errorf("pull request %d: %w", i, err)
			}
			obj, ev = created, e
		case i < nPR+nBranch:
			k := i - nPR
			br, e := t.branch(benchRepo(k, repos), k/repos+1, base)
			created, err := createAsRecorded(ctx, gp.Branches(ns), br)
			if err != nil {
				return fmt.Errorf("branch %d: %w", k, err)
			}
			obj, ev = created, e
		default:
			k := i - nPR - nBranch
			d, e := t.deployment(benchRepo(k, repos), int64(k/repos+1), base)
			created, err := createAsRecorded(ctx, gp.GitHubDeployments(ns), d)
			if err != nil {
				return fmt.Errorf("deployment %d: %w", k, err)
			}
			obj, ev = created, e
		}
		id := deliveryID(run, i)
		ev.Name = naming.EventName(id)
		ev.InvolvedObject.Name, ev.InvolvedObject.UID = obj.GetName(), obj.GetUID()
		if ev.InvolvedObject.ResourceVersion != "" {
			ev.InvolvedObject.ResourceVersion = obj.GetResourceVersion()
		}
		_, err := kube.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{})
		return err
	})
	created := time.Since(start)
	if dir != "" && !reuse {
		if err := os.WriteFile(marker, []byte(strconv.Itoa(total)), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("created %d objects and %d Events in %s (%.0f objects + Events/s, p99 %s)",
		total, total, created.Round(time.Second), l.rate(), l.pct(0.99).Round(time.Millisecond))

	// Cold: no checkpoint, so every Event is counted from the list.
	if err := own.Kube.CoreV1().ConfigMaps(ns).Delete(ctx, "gitpulse-metrics-checkpoint", metav1.DeleteOptions{}); err != nil {
		b.Logf("deleting the checkpoint: %v", err)
	}
	// Kept data means an API server just started: it serves no list of the
	// objects until its watch cache has read them all from etcd (it answers
	// 429 meanwhile, and a client retries). A cluster's API server has long
	// done that; the start-up measured is the function's in it.
	// Fresh data means an API server that has just taken 200,000 writes
	// and still holds them as its watch cache's recent history, beside the
	// objects: a heap its collector pays for in every list. The same lists
	// cost it 3.1 to 14.1 CPU-s in the eleventh round's fresh runs, against
	// 3.8-4.0 on kept data. A cluster's API server, whose objects came over
	// months, holds only its last minutes of changes; so the control plane
	// starts again on the data written, as a run on kept data does.
	if !reuse {
		own.ControlPlane.Kill()
		if err := own.ControlPlane.Restart(ctx); err != nil {
			b.Fatal(err)
		}
	}
	waitForWatchCache(b, gp, ns)
	waitForQuietMachine(b)
	cpuAPI0 := apiServerCPUOf(own.ControlPlane)
	// The function's process alone, without the stack's readiness wait
	// (a minute), so that a slow start is measured rather than refused.
	port, err := freeport.Pick()
	if err != nil {
		b.Fatal(err)
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	logw := io.Discard
	if dir != "" {
		f, err := os.Create(filepath.Join(dir, "gitpulse-metrics.log"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		logw = f
	}
	begin := time.Now()
	// Its log at info level: when its caches synced.
	proc, err := localrun.StartProcess(filepath.Join(bin, "gitpulse-metrics"), append(own.FunctionEnv(port), "GITPULSE_LOG_LEVEL=info"), logw)
	if err != nil {
		b.Fatal(err)
	}
	defer proc.Terminate(10 * time.Second)
	// The function is probed as Knative's queue-proxy probes a new pod
	// (knative.dev/serving cmd/queue, aggressivePollInterval: its readiness
	// every 25 ms until it answers), and /metrics is asked for once it is
	// ready: until then the queue-proxy routes no scrape to it. Each
	// /metrics before that cost the function a render of what it had
	// counted so far, every 20 ms, on the cores the API server was
	// listing with (~0.15 of its ~2.2 CPU-s to the first complete one, and
	// ~7 MiB of its peak). A first complete /metrics is when its body has
	// arrived, before this loop reads it.
	readyURL := strings.TrimSuffix(metricsURL, "/metrics") + "/health/readiness"
	var body string
	var first time.Duration
	for {
		if resp, err := http.Get(readyURL); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if resp, err := http.Get(metricsURL); err == nil {
					data, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					first, body = time.Since(begin), string(data)
				}
			}
		}
		if sumCounter(body, "gitpulse_pull_request_events_total") >= float64(nPR) &&
			sumCounter(body, "gitpulse_branch_events_total") >= float64(nBranch) &&
			sumCounter(body, "gitpulse_pull_requests") >= float64(nPR) &&
			sumCounter(body, "gitpulse_branches") >= float64(nBranch) &&
			sumCounter(body, "gitpulse_deployments_total") >= float64(nDeploy) {
			break
		}
		if proc.Exited() {
			b.Fatalf("the metrics function ended before a complete /metrics: %v", proc.State())
		}
		if time.Since(begin) > 5*time.Minute {
			b.Fatalf("/metrics incomplete after 5 minutes: %v pull request Events, %v pull requests",
				sumCounter(body, "gitpulse_pull_request_events_total"), sumCounter(body, "gitpulse_pull_requests"))
		}
		time.Sleep(25 * time.Millisecond)
	}
	pid := proc.Pid()
	rss, peak, cpu := rssMiB(pid), peakRSSMiB(pid), cpuSeconds(pid)
	// The go_memstats_* gauges of a scrape taken now, with /proc read
	// after it (the polled body's were gathered before its render).
	memoryAtFirst := memoryParts(pid, scrapeURL(b, metricsURL))
	apiCPU := apiServerCPUOf(own.ControlPlane) - cpuAPI0
	var scrapes []time.Duration
	for range 10 {
		scrapes = append(scrapes, timedScrape(b, metricsURL))
	}
	sort.Slice(scrapes, func(i, j int) bool { return scrapes[i] < scrapes[j] })
	firstScrapes := scrapes[5]
	// Then as Prometheus sees it from then on, every 15-30 s: once the
	// start-up's tail is done (its first checkpoint written, the object
	// aggregate computed, its CPU idle for a second), which the scrapes
	// right after the first complete one share the two cores with.
	settleBegin := time.Now()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		c0 := cpuSeconds(pid)
		time.Sleep(time.Second)
		if cpuSeconds(pid)-c0 < 0.05 && gauge(scrapeURL(b, metricsURL), "gitpulse_metrics_checkpoint_pending_events") == 0 {
			break
		}
	}
	settled := time.Since(settleBegin)
	scrapes = scrapes[:0]
	for range 10 {
		scrapes = append(scrapes, timedScrape(b, metricsURL))
	}
	body = scrapeURL(b, metricsURL)
	sort.Slice(scrapes, func(i, j int) bool { return scrapes[i] < scrapes[j] })
	scrapeMedian := scrapes[5]
	// A scrape after a change: one more Event, counted, then the first
	// scrape that shows it (it renders the per-repository families again).
	id := deliveryID(time.Now().Unix(), total) // unique across runs over kept data
	ev := copyFor(t.openEvent, benchRepo(0, repos), "")
	ev.Name = naming.EventName(id)
	if _, err := kube.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	want := sumCounter(body, "gitpulse_pull_request_events_total") + 1
	var afterChange time.Duration
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		t0 := time.Now()
		body = scrapeURL(b, metricsURL)
		afterChange = time.Since(t0)
		if sumCounter(body, "gitpulse_pull_request_events_total") >= want {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the new Event is not counted after a minute")
		}
	}
	record("metrics 100k objects", "first complete /metrics %.2fs\tRSS %.1f MiB\tscrape %.1fms",
		first.Seconds(), rss, float64(scrapeMedian.Microseconds())/1000)
	record("  same, in detail", "%d PullRequests, %d Branches, %d GitHubDeployments, %d Events in %d repositories (written in %s, %.0f objects + Events/s)\tpeak RSS %.1f MiB, live heap %.1f MiB, limit %.0f MiB\tCPU to first complete %.2f s (kube-apiserver %.2f s)\tscrapes right after the first complete one: median %s; settled %s later: %s-%s, after a change %s; %d series of gitpulse_pull_requests, %d bytes; RSS after %.1f MiB",
		nPR, nBranch, nDeploy, total, repos, created.Round(time.Second), l.rate(), peak,
		gauge(body, "go_gc_heap_live_bytes")/(1<<20), gauge(body, "go_gc_gomemlimit_bytes")/(1<<20), cpu, apiCPU,
		firstScrapes.Round(100*time.Microsecond), settled.Round(100*time.Millisecond),
		scrapes[0].Round(100*time.Microsecond), scrapes[9].Round(100*time.Microsecond), afterChange.Round(100*time.Microsecond),
		strings.Count(body, "\ngitpulse_pull_requests{"), len(body), rssMiB(pid))
	record("  same, its memory", "at the first complete /metrics %s\tsettled: %s", memoryAtFirst, memoryParts(pid, scrapeURL(b, metricsURL)))
	proc.Terminate(10 * time.Second)
	// Uncompressed, as the function asks for them (functions/metrics).
	lcfg := *cfg
	lcfg.DisableCompression = true
	pcfg.DisableCompression = true
	parts := firstLists(b, versioned.NewForConfigOrDie(&lcfg).StableV1(), kubernetes.NewForConfigOrDie(&pcfg), own.ControlPlane, ns)
	record("  same, the first lists alone", "%s\t(the function's four lists, one after another, from the bench's process with nothing else of the stack running: what its start-up waits for, part by part)", parts)
	b.ReportMetric(first.Seconds(), "s-to-complete")
	b.ReportMetric(rss, "RSS-MiB")
	b.ReportMetric(float64(scrapeMedian.Microseconds())/1000, "scrape-ms")
}

// waitForWatchCache waits until the API server serves each object kind's
// consistent list, which it does from its watch cache once that is filled.
func waitForWatchCache(b *testing.B, gp stablev1client.StableV1Interface, ns string) {
	ctx := context.Background()
	one := metav1.ListOptions{Limit: 1}
	lists := map[string]func() error{
		"pullrequests":      func() error { _, err := gp.PullRequests(ns).List(ctx, one); return err },
		"branches":          func() error { _, err := gp.Branches(ns).List(ctx, one); return err },
		"githubdeployments": func() error { _, err := gp.GitHubDeployments(ns).List(ctx, one); return err },
	}
	deadline := time.Now().Add(5 * time.Minute)
	for resource, list := range lists {
		for err := list(); err != nil; err = list() {
			if time.Now().After(deadline) {
				b.Fatalf("the API server serves no list of %s after 5 minutes: %v", resource, err)
			}
			time.Sleep(time.Second)
		}
	}
}

// waitForQuietMachine waits, at most two minutes, until the machine's cores
// were busy less than a tenth of a second in a second: until what the
// stack does after the bench's writes, or after a start, is done.
func waitForQuietMachine(b *testing.B) {
	start := time.Now()
	for time.Since(start) < 2*time.Minute {
		busy0, _ := machineBusySeconds()
		time.Sleep(time.Second)
		if busy1, _ := machineBusySeconds(); busy1-busy0 < 0.1 {
			break
		}
	}
	b.Logf("the machine was quiet after %s", time.Since(start).Round(time.Second))
}

// memoryParts says what a Go process's resident set is made of: the pages of
// its binary (file-backed) and its anonymous memory, of it the heap in use
// (the live heap and garbage not yet collected), the heap's free pages not
// yet returned to the system, and the rest (stacks, the collector's
// metadata, the runtime's own), from /proc and the go_memstats_* gauges of
// its /metrics body.
func memoryParts(pid int, body string) string {
	heapInUse := gauge(body, "go_memstats_heap_inuse_bytes") / (1 << 20)
	free := (gauge(body, "go_memstats_heap_idle_bytes") - gauge(body, "go_memstats_heap_released_bytes")) / (1 << 20)
	anon := procStatusMiB(pid, "RssAnon:")
	return fmt.Sprintf("RSS %.1f MiB = binary %.1f + anonymous %.1f (heap in use %.1f, of it live %.1f; heap free, not returned %.1f; the rest %.1f)",
		rssMiB(pid), procStatusMiB(pid, "RssFile:"), anon, heapInUse, gauge(body, "go_gc_heap_live_bytes")/(1<<20), free, anon-heapInUse-free)
}

// firstLists times the metrics function's first lists one at a time, as
// its reflectors make them (consistent lists from the watch cache; the
// objects in pages of 5,000 and JSON, the Events in pages of 5,000 and
// protobuf), with the API server's CPU for each.
func firstLists(b *testing.B, gp stablev1client.StableV1Interface, kube kubernetes.Interface, cp *controlplane.ControlPlane, ns string) string {
	ctx := context.Background()
	type lister func(metav1.ListOptions) (metav1.ListInterface, int, error)
	lists := []struct {
		name string
		page int64
		list lister
	}{
		{"pullrequests", 5000, func(o metav1.ListOptions) (metav1.ListInterface, int, error) {
			l, err := gp.PullRequests(ns).List(ctx, o)
			if err != nil {
				return nil, 0, err
			}
			return l, len(l.Items), nil
		}},
		{"branches", 5000, func(o metav1.ListOptions) (metav1.ListInterface, int, error) {
			l, err := gp.Branches(ns).List(ctx, o)
			if err != nil {
				return nil, 0, err
			}
			return l, len(l.Items), nil
		}},
		{"githubdeployments", 5000, func(o metav1.ListOptions) (metav1.ListInterface, int, error) {
			l, err := gp.GitHubDeployments(ns).List(ctx, o)
			if err != nil {
				return nil, 0, err
			}
			return l, len(l.Items), nil
		}},
		{"events", 5000, func(o metav1.ListOptions) (metav1.ListInterface, int, error) {
			o.FieldSelector = "reportingComponent=" + stablev1.ReportingController
			l, err := kube.CoreV1().Events(ns).List(ctx, o)
			if err != nil {
				return nil, 0, err
			}
			return l, len(l.Items), nil
		}},
	}
	var out []string
	for _, l := range lists {
		api0, items := apiServerCPUOf(cp), 0
		t0 := time.Now()
		o := metav1.ListOptions{Limit: l.page} // as pkg/metrics paged lists them
		for {
			page, n, err := l.list(o)
			if err != nil {
				b.Fatal(err)
			}
			items += n
			if page.GetContinue() == "" {
				break
			}
			o = metav1.ListOptions{Limit: l.page, Continue: page.GetContinue()}
		}
		out = append(out, fmt.Sprintf("%s %d in %.2f s (kube-apiserver %.2f CPU-s)", l.name, items, time.Since(t0).Seconds(), apiServerCPUOf(cp)-api0))
	}
	return strings.Join(out, ", ")
}

// apiServerCPUOf is cp's kube-apiserver's CPU-seconds, read from /proc:
// unlike a scrape of its /metrics (~30 ms of its CPU), reading it costs the
// API server nothing.
func apiServerCPUOf(cp *controlplane.ControlPlane) float64 { return cpuSeconds(cp.APIServerPid()) }

// benchRepo is the i-th object's repository: 1,000 repositories in 10
// organisations, objects spread evenly.
func benchRepo(i, repos int) string {
	r := i % repos
	return fmt.Sprintf("org-%d/repo-%d", r/100, r)
}

// deliveryID is a GUID-shaped delivery id, as GitHub's X-GitHub-Delivery.
func deliveryID(run int64, i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", run, i)
}

// Placeholders in the template deliveries: lower-case letters only, so
// that every form the recorder writes them in (raw, label value, object
// name) is the word itself, and unlike anything else in an object.
const (
	tmplOwner  = "tmplowner"
	tmplName   = "tmplrepo"
	tmplBranch = "tmplbranch"
	tmplGone   = "tmplgone"
)

// templates are objects and Events the recorder wrote, without what the
// API server sets.
type templates struct {
	open, merged, closed                *stablev1.PullRequest
	openEvent, mergedEvent, closedEvent *corev1.Event
	pushed, deleted                     *stablev1.Branch
	pushedEvent, deletedEvent           *corev1.Event
	succeeded, failed                   *stablev1.GitHubDeployment
	succeededEvent, failedEvent         *corev1.Event
}

// recorderTemplates delivers one story per shape to s's recorder and keeps
// what it wrote.
func recorderTemplates(b *testing.B, s *localrun.Stack) *templates {
	ctx := context.Background()
	client := &http.Client{}
	repo := ghwebhook.Repo(tmplOwner + "/" + tmplName)
	now := time.Now().UTC().Truncate(time.Second)
	opened := now.Add(-48 * time.Hour)
	deliver := func(eventType, id string, payload []byte) {
		// Retried on 5xx, as the Broker would.
		code, err := postCloudEvent(client, s.RecorderURL(), eventType, id, payload)
		for try := 0; try < 5 && err == nil && code/100 == 5; try++ {
			time.Sleep(time.Second)
			code, err = postCloudEvent(client, s.RecorderURL(), eventType, id, payload)
		}
		if err != nil || code/100 != 2 {
			b.Fatalf("template delivery %s %s: %d %v", eventType, id, code, err)
		}
	}
	pr := func(n int, action string, merged bool, at time.Time) []byte {
		return ghwebhook.PullRequest{Repo: repo, Number: n, Action: action, User: "octocat", Title: "Add the thing to the other thing",
			Head: fmt.Sprintf("feature-%d", n), HeadSHA: fmt.Sprintf("%040x", n), Merged: merged,
			MergeCommitSHA: map[bool]string{true: fmt.Sprintf("%040x", 1000+n)}[merged], CreatedAt: opened, UpdatedAt: at}.Payload()
	}
	deliver("pull_request", "tmpl-pr-1", pr(1, "opened", false, opened))
	deliver("pull_request", "tmpl-pr-2-opened", pr(2, "opened", false, opened))
	deliver("pull_request_review", "tmpl-pr-2-review", ghwebhook.Review{
		PullRequest: ghwebhook.PullRequest{Repo: repo, Number: 2, Action: "opened", User: "octocat", Title: "Add the thing to the other thing",
			Head: "feature-2", HeadSHA: fmt.Sprintf("%040x", 2), CreatedAt: opened, UpdatedAt: opened.Add(time.Hour)},
		Action: "submitted", ID: 77, Reviewer: "hubot", State: "approved", SubmittedAt: opened.Add(time.Hour)}.Payload())
	deliver("pull_request", "tmpl-pr-2-merged", pr(2, "closed", true, opened.Add(3*time.Hour)))
	deliver("pull_request", "tmpl-pr-3-opened", pr(3, "opened", false, opened))
	deliver("pull_request", "tmpl-pr-3-closed", pr(3, "closed", false, opened.Add(5*time.Hour)))
	ref := func(name string) ghwebhook.Ref {
		return ghwebhook.Ref{Repo: repo, Ref: name, Sender: "octocat", At: opened}
	}
	deliver("create", "tmpl-branch-1-created", ref(tmplBranch).CreatePayload())
	deliver("push", "tmpl-branch-1-pushed", ghwebhook.Push{Repo: repo, Branch: tmplBranch, Before: fmt.Sprintf("%040x", 5),
		After: fmt.Sprintf("%040x", 6), Pusher: "octocat", At: opened.Add(time.Hour)}.Payload())
	deliver("create", "tmpl-branch-2-created", ref(tmplGone).CreatePayload())
	deliver("delete", "tmpl-branch-2-deleted", ref(tmplGone).DeletePayload())
	dep := func(id int64, sha string) ghwebhook.Deployment {
		return ghwebhook.Deployment{Repo: repo, ID: id, Environment: "production", Ref: "main", SHA: sha, Creator: "octocat",
			CreatedAt: opened.Add(4 * time.Hour)}
	}
	ok, bad := dep(1, fmt.Sprintf("%040x", 1002)), dep(2, fmt.Sprintf("%040x", 7))
	deliver("deployment", "tmpl-deploy-1", ok.Payload())
	deliver("deployment_status", "tmpl-deploy-1-success", ok.Status(11, "success", opened.Add(5*time.Hour)))
	deliver("deployment", "tmpl-deploy-2", bad.Payload())
	deliver("deployment_status", "tmpl-deploy-2-failure", bad.Status(21, "failure", opened.Add(6*time.Hour)))

	gp := versioned.NewForConfigOrDie(s.ControlPlane.Config()).StableV1()
	ns := s.Namespace()
	r := string(repo)
	getPR := func(n int64) *stablev1.PullRequest {
		o, err := gp.PullRequests(ns).Get(ctx, naming.PullRequestName(r, repo.ID(), n), metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		o.ObjectMeta = templateMeta(o.ObjectMeta)
		return o
	}
	getBranch := func(name string) *stablev1.Branch {
		o, err := gp.Branches(ns).Get(ctx, naming.BranchName(r, repo.ID(), name), metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		o.ObjectMeta = templateMeta(o.ObjectMeta)
		return o
	}
	getDeploy := func(id int64) *stablev1.GitHubDeployment {
		o, err := gp.GitHubDeployments(ns).Get(ctx, naming.DeploymentName(r, repo.ID(), id), metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		o.ObjectMeta = templateMeta(o.ObjectMeta)
		return o
	}
	getEvent := func(id string) *corev1.Event {
		ev, err := s.Kube.CoreV1().Events(ns).Get(ctx, naming.EventName(id), metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ev.ObjectMeta = templateMeta(ev.ObjectMeta)
		return ev
	}
	t := &templates{
		open: getPR(1), merged: getPR(2), closed: getPR(3),
		openEvent: getEvent("tmpl-pr-1"), mergedEvent: getEvent("tmpl-pr-2-merged"), closedEvent: getEvent("tmpl-pr-3-closed"),
		pushed: getBranch(tmplBranch), deleted: getBranch(tmplGone),
		pushedEvent: getEvent("tmpl-branch-1-pushed"), deletedEvent: getEvent("tmpl-branch-2-deleted"),
		succeeded: getDeploy(1), failed: getDeploy(2),
		succeededEvent: getEvent("tmpl-deploy-1-success"), failedEvent: getEvent("tmpl-deploy-2-failure"),
	}
	if len(t.succeeded.Spec.Changes) == 0 || t.merged.Spec.FirstApprovalAt == nil || !t.merged.Spec.Merged {
		b.Fatalf("the templates lack what the families read: changes %v, approval %v, merged %v",
			t.succeeded.Spec.Changes, t.merged.Spec.FirstApprovalAt, t.merged.Spec.Merged)
	}
	if os.Getenv("GITPULSE_BENCH_SHOW_TEMPLATES") == "1" {
		for _, o := range []any{t.merged, t.mergedEvent, t.pushed, t.succeeded} {
			j, _ := json.MarshalIndent(o, "", "  ")
			b.Logf("template:\n%s", j)
		}
	}
	return t
}

// templateMeta keeps of an object's metadata what its writer set. An
// object without managed fields is one the recorder updated, clearing them
// (pkg/recorder, dropManagedFields): its copies carry the one empty entry
// that asks for that, for createAsRecorded.
func templateMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Labels: m.Labels, Annotations: m.Annotations}
	if len(m.ManagedFields) == 0 {
		out.ManagedFields = []metav1.ManagedFieldsEntry{{}}
	}
	return out
}

// createPatcher is the part of a generated typed client createAsRecorded uses.
type createPatcher[T metav1.Object] interface {
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
}

// clearManagedFields is a merge patch that clears an object's managed fields.
var clearManagedFields = []byte(`{"metadata":{"managedFields":[{}]}}`)

// createAsRecorded writes obj as the recorder leaves it. The API server
// tracks managed fields on every create, so a copy of an object the recorder
// updated (templateMeta) is created, then cleared as that update did.
func createAsRecorded[T metav1.Object](ctx context.Context, c createPatcher[T], obj T) (T, error) {
	m := obj.GetManagedFields()
	cleared := len(m) == 1 && reflect.DeepEqual(m[0], metav1.ManagedFieldsEntry{})
	created, err := c.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil || !cleared {
		return created, err
	}
	return c.Patch(ctx, created.GetName(), types.MergePatchType, clearManagedFields, metav1.PatchOptions{})
}

// copyFor is a deep copy of tmpl with the template repository (and
// branch) replaced by repo (and branch) wherever the recorder wrote them.
func copyFor[T any](tmpl *T, repo, branch string) *T {
	owner, name, _ := strings.Cut(repo, "/")
	j, err := json.Marshal(tmpl)
	if err != nil {
		panic(err) // an API type
	}
	r := strings.NewReplacer(tmplOwner, owner, tmplName, name, tmplBranch, branch, tmplGone, branch)
	var out T
	if err := json.Unmarshal([]byte(r.Replace(string(j))), &out); err != nil {
		panic(err)
	}
	return &out
}

func timeAt(t time.Time) *metav1.Time { m := metav1.NewTime(t); return &m }

// shift moves a time the template has to at (and leaves an absent one
// absent, so the copy has the template's fields and no others).
func shift(t **metav1.Time, at time.Time) {
	if *t != nil {
		*t = timeAt(at)
	}
}

// pullRequest is pull request n of repo: one in seven open, one in seven
// closed unmerged, the rest merged after review, with spread times.
func (t *templates) pullRequest(repo string, n int64, base time.Time) (*stablev1.PullRequest, *corev1.Event) {
	tmpl, ev := t.merged, t.mergedEvent
	switch n % 7 {
	case 0:
		tmpl, ev = t.open, t.openEvent
	case 1:
		tmpl, ev = t.closed, t.closedEvent
	}
	pr, e := copyFor(tmpl, repo, ""), copyFor(ev, repo, "")
	id := ghwebhook.Repo(repo).ID()
	pr.Name = naming.PullRequestName(repo, id, n)
	pr.Spec.RepositoryID, pr.Spec.Number, pr.Spec.ID = id, n, strconv.FormatInt(n, 10)
	pr.Spec.URL = fmt.Sprintf("https://github.com/%s/pull/%d", repo, n)
	opened := base.Add(time.Duration(n*37%(28*24)) * time.Hour)
	review := opened.Add(time.Duration(n%12+1) * 10 * time.Minute)
	done := opened.Add(time.Duration(n*13%96+1) * time.Hour)
	s := &pr.Spec
	shift(&s.OpenedAt, opened)
	shift(&s.FirstReviewAt, review)
	shift(&s.FirstApprovalAt, review.Add(30*time.Minute))
	shift(&s.ClosedAt, done)
	shift(&s.MergedAt, done)
	shift(&s.UpdatedAt, done)
	return pr, e
}

// branch is the k-th branch of repo: one in five deleted.
func (t *templates) branch(repo string, k int, base time.Time) (*stablev1.Branch, *corev1.Event) {
	name := fmt.Sprintf("feature-%d", k)
	tmpl, ev := t.pushed, t.pushedEvent
	if k%5 == 0 {
		tmpl, ev = t.deleted, t.deletedEvent
		name = fmt.Sprintf("fix-%d", k)
	}
	br, e := copyFor(tmpl, repo, name), copyFor(ev, repo, name)
	br.Spec.RepositoryID = ghwebhook.Repo(repo).ID()
	br.Name = naming.BranchName(repo, br.Spec.RepositoryID, br.Spec.Name)
	at := base.Add(time.Duration(k*53%(28*24)) * time.Hour)
	s := &br.Spec
	shift(&s.CreatedAt, at)
	shift(&s.LastPushAt, at.Add(time.Hour))
	shift(&s.DeletedAt, at.Add(2*time.Hour))
	shift(&s.UpdatedAt, at.Add(2*time.Hour))
	return br, e
}

// deployment is deployment id of repo: four in five succeeded, shipping
// three merged pull requests of the repository, the others failed; ids 1-3
// to production, 4 and 5 to staging.
func (t *templates) deployment(repo string, id int64, base time.Time) (*stablev1.GitHubDeployment, *corev1.Event) {
	tmpl, ev := t.succeeded, t.succeededEvent
	if id%5 == 2 {
		tmpl, ev = t.failed, t.failedEvent
	}
	d, e := copyFor(tmpl, repo, ""), copyFor(ev, repo, "")
	d.Spec.RepositoryID = ghwebhook.Repo(repo).ID()
	d.Name = naming.DeploymentName(repo, d.Spec.RepositoryID, id)
	d.Spec.DeploymentID = id
	if id > 3 {
		d.Spec.Environment = "staging"
	}
	at := base.Add(time.Duration(id*24*5) * time.Hour)
	s := &d.Spec
	shift(&s.CreatedAt, at)
	shift(&s.UpdatedAt, at.Add(time.Hour))
	shift(&s.StateAt, at.Add(time.Hour))
	shift(&s.FirstSuccessAt, at.Add(time.Hour))
	shift(&s.FirstFailureAt, at.Add(time.Hour))
	if len(s.Changes) > 0 {
		c0 := s.Changes[0]
		s.Changes = nil
		for j := int64(0); j < 3; j++ {
			n := ((id-1)*3+j)%10*7 + 2 // merged: n % 7 == 2
			c := c0
			c.Number = n
			c.OpenedAt, c.MergedAt = timeAt(at.Add(-72*time.Hour)), timeAt(at.Add(-time.Duration(j+1)*time.Hour))
			s.Changes = append(s.Changes, c)
		}
		s.ChangeCount = int64(len(s.Changes))
	}
	return d, e
}

// scrapeURL is scrape for another stack.
func scrapeURL(b *testing.B, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return string(body)
}

// timedScrape is how long /metrics takes to answer in full: the body is
// read into one reused buffer and dropped, as a scraper that parses as it
// reads would, so that the bench process's own allocation of 14 MB copies
// (and the collections they bring on in a process holding the stack) is
// not counted as the function's.
func timedScrape(b *testing.B, url string) time.Duration {
	t0 := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.CopyBuffer(io.Discard, resp.Body, scrapeBuf); err != nil {
		b.Fatal(err)
	}
	return time.Since(t0)
}

var scrapeBuf = make([]byte, 256<<10)

// peakRSSMiB is a process's peak resident set (VmHWM).
func peakRSSMiB(pid int) float64 { return procStatusMiB(pid, "VmHWM:") }
