// Package metrics is the metrics function: it watches the recorder's Events
// and the PullRequest, Branch and GitHubDeployment objects of one namespace
// with client-go informers and serves Prometheus metrics about them.
//
// Counters come from Events, counted exactly once through an
// eventcount.Counter (see that package for why a ConfigMap checkpoint); gauges
// and the histograms come from object state, aggregated after the objects
// change (objects.go) and capped by repository when a scrape's view is built
// (objectfamilies.go). Every family is a row of familyTable and only reads
// that view.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/eventcount"
)

// Options configures a Service.
type Options struct {
	Config Config
	// Clients reach the API server (NewClients builds the function's);
	// every one is required.
	Clients Clients
	Logger  *slog.Logger
	// OwnsProcess says the process is this Service alone (the metrics
	// function): after a large Events list it hands the memory the list
	// needed back to the system at once. Tests share their process and
	// leave it unset.
	OwnsProcess bool
}

// Service watches one namespace and serves its metrics.
type Service struct {
	cfg Config
	log *slog.Logger
	// ownsProcess: Options.OwnsProcess.
	ownsProcess bool
	clients     Clients

	counter *eventcount.Counter
	repos   *repoCap
	events  *eventWatcher
	lag     *lagHistogram
	watches *watchStats

	// repositoryRegistries hold the per-repository families, one each in
	// name order, rendered once per change into exp; scrapeRegistry the
	// families gathered on every scrape (exposition.go).
	repositoryRegistries []*prometheus.Registry
	// repositoryTexts are the same families, in the same order, written
	// as text directly (textwriter.go).
	repositoryTexts []textFamily
	scrapeRegistry  *prometheus.Registry
	exp             exposition
	// capGen moves when the repository cap gives slots back: the
	// per-repository families must be rendered again.
	capGen atomic.Uint64
	// renders counts renders of the per-repository families.
	renders atomic.Uint64
	// freeing says a render's garbage is being returned (exposition.go).
	freeing atomic.Bool

	mu sync.Mutex
	// objectCaches are the object informers' stores (objects.go), nil
	// until the informers are built.
	objectCaches *objectCaches
	// cursorStore holds the reconcile cursor ConfigMaps (reconcile.go).
	cursorStore cache.Store
	cancel      context.CancelFunc
	done        chan struct{}
	wg          sync.WaitGroup // informer goroutines

	// objects is the newest aggregate of the PullRequest, Branch and
	// GitHubDeployment caches (objects.go), recomputed by refreshObjects
	// when objectsDirty; objectsMu serializes the computations.
	objects      atomic.Pointer[objectAggregate]
	objectsMu    sync.Mutex
	objectsDirty atomic.Bool
	objectsWake  chan struct{}

	ready       atomic.Bool
	writesOK    atomic.Uint64
	writesError atomic.Uint64
}

// largeList is the size of an Events list after which the function's
// process returns its free memory to the system at once.
const largeList = 10_000

// New builds a Service; Start starts it.
func New(opts Options) (*Service, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Config.Namespace == "" {
		return nil, errors.New("metrics: no namespace configured")
	}
	if opts.Config.MaxRepositories <= 0 {
		opts.Config.MaxRepositories = DefaultMaxRepositories
	}
	if opts.Config.CheckpointInterval <= 0 {
		opts.Config.CheckpointInterval = DefaultCheckpointInterval
	}
	if c := opts.Clients; c.ConfigMaps == nil || c.Events == nil || c.Gitpulse == nil {
		return nil, errors.New("metrics: the ConfigMaps, Events and Gitpulse clients are required")
	}
	s := &Service{
		ownsProcess: opts.OwnsProcess,
		cfg:         opts.Config,
		log:         log.With("component", "metrics", "namespace", opts.Config.Namespace),
		clients:     opts.Clients,
		repos:       newRepoCap(opts.Config.MaxRepositories),
		// One pending wake-up is enough: the refresh reads every cache.
		objectsWake: make(chan struct{}, 1),
	}
	s.counter = eventcount.New(eventcount.Options{
		ConfigMaps: opts.Clients.ConfigMaps,
		Name:       CheckpointName,
		// Only an Event about to be counted may take one of the capped
		// repository slots; replays of counted ones must not use them up.
		Admit: func(k eventcount.Key) eventcount.Key {
			k.Repository = s.repos.admit(k.Repository)
			return k
		},
		Logger: s.log,
	})
	s.lag = newLagHistogram(time.Now)
	s.events = newEventWatcher(s.counter, s.lag, s.log)
	s.watches = newWatchStats(s.log, "events", "pullrequests", "branches", "githubdeployments")
	if opts.OwnsProcess {
		// The process is the function alone: once a large list is counted,
		// return what it needed to the system now rather than as the
		// background scavenger gets to it.
		s.events.afterList = func(items int) {
			if items >= largeList {
				debug.FreeOSMemory()
			}
		}
	}
	// One registry per family, in name order, so that a render holds one
	// family's gathered metrics at a time (exposition.go).
	repo := repositoryFamilies()
	slices.SortFunc(repo, func(a, b family) int { return strings.Compare(a.name, b.name) })
	for _, f := range repo {
		r := prometheus.NewRegistry()
		if err := r.Register(newCollectorOf([]family{f}, s.repositoryView)); err != nil {
			return nil, fmt.Errorf("registering collector: %w", err)
		}
		s.repositoryRegistries = append(s.repositoryRegistries, r)
		t, err := textFamilyOf(f)
		if err != nil {
			return nil, err
		}
		s.repositoryTexts = append(s.repositoryTexts, t)
	}
	s.scrapeRegistry = prometheus.NewRegistry()
	// The process and Go runtime collectors (go_gc_gomemlimit_bytes and
	// go_gc_heap_live_bytes among them) let operators see the function's
	// memory against its limit.
	for _, c := range []prometheus.Collector{
		newCollectorOf(scrapeFamilies(), s.scrapeView),
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := s.scrapeRegistry.Register(c); err != nil {
			return nil, fmt.Errorf("registering collector: %w", err)
		}
	}
	return s, nil
}

// Start loads the checkpoint and starts the informers in the background; it
// returns at once (Ready turns true when the caches are synced). ctx only
// bounds Start itself: the Service runs until Stop.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("metrics: already started")
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.done = make(chan struct{})
	go s.run(runCtx)
	return nil
}

func (s *Service) run(ctx context.Context) {
	defer close(s.done)
	// The checkpoint first: counting before it is loaded would report
	// counts twice until the first flush.
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		if err := s.counter.Load(ctx); err != nil {
			s.log.ErrorContext(ctx, "loading checkpoint, retrying", "error", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return
	}
	for k := range s.counter.Counts() {
		s.repos.seed(k.Repository)
	}

	last, took, ok := s.firstSync(ctx)
	if !ok {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.refreshObjects(ctx, last, took)
	}()
	s.ready.Store(true)
	s.log.InfoContext(ctx, "caches synced, serving", "counted_pending", s.counter.Pending())
	if s.ownsProcess {
		// The first lists' pages and their decoding are garbage now, and the heap will not grow that large again:
		// return it to the system now, as after a large Events list,
		// rather than as the background scavenger gets to it (it had
		// returned little of ~90 MiB a minute later at 100k objects).
		debug.FreeOSMemory()
	}

	tick := time.NewTicker(s.cfg.CheckpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.releaseIdleRepositories(ctx)
			s.flush(ctx)
		}
	}
}

// firstSync starts the informers and waits until their first lists are
// done, at the first lists' GOGC, and makes the objects' first aggregate.
// The aggregate is made once the objects' caches are synced, while the
// Events' list may still run (at 100k Events, 5,000 a page, it ends last
// about as often as the pull requests' does), and before Ready, so that the
// first complete /metrics is complete for the objects too; a change after
// it marks the aggregate for refreshObjects. ok is false when ctx ended
// first or the informers could not start.
func (s *Service) firstSync(ctx context.Context) (last time.Time, took time.Duration, ok bool) {
	if s.ownsProcess {
		defer s.collectRarelyDuringFirstLists()()
	}
	informers, err := s.startInformers(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "starting informers", "error", err)
		return last, took, false
	}
	if !waitSynced(ctx, informers.objects...) {
		return last, took, false
	}
	last, took = s.computeObjects()
	return last, took, waitSynced(ctx, informers.events)
}

func (s *Service) startInformers(ctx context.Context) (startedInformers, error) {
	ns := s.cfg.Namespace
	// Only the recorder's Events: the API server filters, so other
	// components' Events never reach (or cost memory in) this process.
	selector := fields.OneTermEqualSelector("reportingComponent", stablev1.ReportingController).String()
	events, listEvents := s.clients.Events, s.clients.listEvents()
	prClient := s.clients.Gitpulse.PullRequests(ns)
	brClient := s.clients.Gitpulse.Branches(ns)
	deClient := s.clients.Gitpulse.GitHubDeployments(ns)
	lists := objectLists(s.clients.listGitpulse(), ns)

	// Reflectors over ListWatches of our own (rather than the generated
	// informer factories) so that every watch (re)start is counted: the
	// reflector retries a broken watch internally and calls the error
	// handler only when it has to re-list.
	// The Events have no informer and no cache: their reflector's store is
	// the eventWatcher, which counts what it is given and keeps nothing, so
	// memory does not grow with the Events alive (see eventcount).
	evLW := s.watches.instrument("events",
		// Each page of a list is staged for counting as it arrives
		// (listInPages).
		s.events.listInPages(paged(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			if sl, ok := listEvents.(slimEventLister); ok {
				return sl.listSlim(ctx, o)
			}
			return listEvents.List(ctx, o)
		}, eventListPageSize)),
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return events.Watch(ctx, o)
		})
	evRef := cache.NewReflectorWithOptions(evLW, &corev1.Event{}, s.events,
		cache.ReflectorOptions{Name: "gitpulse-metrics-events", TypeDescription: "recorder Events"})
	// client-go v0.33 lists rather than streams the first Events, 500 a
	// page by default: 1,000 make a start-up at 100k Events a hundred
	// requests, each page's full Events ~2 MB while they are staged. The
	// pager keeps what it is handed of every page until the list ends:
	// here nothing, the page's Events are staged instead (listInPages).
	// (Pages of 5,000 held 5 times as much at once, beside the objects'
	// lists, and made the start-up slower: docs/benchmarks.md.)
	evRef.WatchListPageSize = eventListPageSize

	// The objects' caches are bare reflectors too, each storing records
	// (recordstore.go) and reporting every change (the aggregate is then
	// stale, objects.go). Their first lists come in pages of 5,000 (paged),
	// each decoded into records as it streams in (streamedList): an
	// informer's transform alone would run only after the whole list was
	// gathered, on fully decoded objects.
	prs, brs, des := newRecordStore(s.objectsChanged), newRecordStore(s.objectsChanged), newRecordStore(s.objectsChanged)
	objectReflector := func(resource string, example runtime.Object, store cache.Store, list cache.ListWithContextFunc, watchFn cache.WatchFuncWithContext) *cache.Reflector {
		ref := cache.NewReflectorWithOptions(s.watches.instrument(resource, list, watchFn), example, store,
			cache.ReflectorOptions{Name: "gitpulse-metrics-" + resource, TypeDescription: resource})
		// Without it the reflector's pager asks for client-go's 500 a page,
		// and paged keeps a limit it is given.
		ref.WatchListPageSize = objectListPageSize
		return ref
	}
	prRef := objectReflector("pullrequests", &stablev1.PullRequest{}, prs, lists.prs,
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return prClient.Watch(ctx, o)
		})
	brRef := objectReflector("branches", &stablev1.Branch{}, brs, lists.brs,
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return brClient.Watch(ctx, o)
		})
	deRef := objectReflector("githubdeployments", &stablev1.GitHubDeployment{}, des, lists.des,
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return deClient.Watch(ctx, o)
		})

	s.mu.Lock()
	s.objectCaches = &objectCaches{prs: prs, brs: brs, deps: des}
	s.mu.Unlock()
	for resource, ref := range map[string]*cache.Reflector{"events": evRef, "pullrequests": prRef, "branches": brRef, "githubdeployments": deRef} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runReflector(ctx, resource, ref)
		}()
	}
	s.startReconcileInformer(ctx) // not part of readiness: see reconcile.go
	return startedInformers{events: s.events.HasSynced, objects: []cache.InformerSynced{prs.HasSynced, brs.HasSynced, des.HasSynced}}, nil
}

// startedInformers are the informers Ready waits for.
type startedInformers struct {
	events  cache.InformerSynced
	objects []cache.InformerSynced
}

// syncedPollInterval is how often waitSynced checks. client-go's
// WaitForCacheSync checks every 100 ms: 50 ms on average added to every
// start-up after its last list, a tenth of the 100k-object start-up's
// target; a check is a few loads.
const syncedPollInterval = 5 * time.Millisecond

// waitSynced waits until every one of synced has synced, and reports
// whether they did before ctx was done.
func waitSynced(ctx context.Context, synced ...cache.InformerSynced) bool {
	err := wait.PollUntilContextCancel(ctx, syncedPollInterval, true, func(context.Context) (bool, error) {
		for _, f := range synced {
			if !f() {
				return false, nil
			}
		}
		return true, nil
	})
	return err == nil
}

// runReflector runs ref until ctx is done: Reflector.RunWithContext with
// our error handler (a bare reflector has no setter for it), so that every
// re-list is counted under resource, and the same backoff as client-go's.
func (s *Service) runReflector(ctx context.Context, resource string, ref *cache.Reflector) {
	backoff := wait.NewExponentialBackoffManager(800*time.Millisecond, 30*time.Second, 2*time.Minute, 2.0, 1.0, clock.RealClock{})
	wait.BackoffUntil(func() {
		if err := ref.ListAndWatchWithContext(ctx); err != nil {
			s.watches.failed(ctx, resource, ref, err)
		}
	}, backoff, true, ctx.Done())
}

// The first lists' page sizes. The Events' (protobuf, ~1 KB each on the
// wire) come from etcd (the API server keeps no watch cache for Events), and
// each page is read into one buffer kept from page to page and from there
// straight into the staged records (eventpage.go): the page bounds that
// buffer, ~5 MB. They were 1,000 while each page was decoded whole; at 100k
// Events the list was the start-up's longest, 100 requests one after
// another, and pages of 5,000 took it from 5.3 to 4.7 s for the same API
// server CPU (10,000: no faster, a higher peak; docs/benchmarks.md, issue
// 23, thirteenth round). The objects' are decoded one item at a time as they
// stream in (streamedList), so their page costs the function nothing, but
// the API server serves them from its watch cache, where every page costs it
// the objects left to list, not the page: each page collects every key from
// the continue token to the end of the namespace before the limit cuts it
// (k8s.io/apiserver/pkg/storage/cacher, btreeStore.ListPrefix, in 1.35). At
// 70,000 pull requests, pages of 500 cost the API server 10.8 and 11.8
// CPU-s, pages of 5,000 6.6 and 8.4, one unpaged list 6.4 and 7.1
// (docs/benchmarks.md); 5,000 keeps the API server's own page (a deep copy
// of every item in it) to a few tens of MB.
const (
	eventListPageSize  = 5000
	objectListPageSize = 5000
)

// paged makes a reflector's list a paginated one. A reflector lists first
// at resourceVersion "0" (whatever the watch cache holds), and the API
// server serves such a list whole, whatever its limit
// (k8s.io/apiserver/pkg/storage/cacher, computeListLimit: "the limit is
// ignored for requests that set RV == 0"): 70,000 pull requests came as one
// response of ~200 MB, decoded at once (a peak RSS of ~800 MiB) before
// slimPage could slim a page of them. A list at resourceVersion "" with a
// limit is a consistent list, paginated, and since Kubernetes 1.31
// (ConsistentListFromCache) and 1.33 (ListFromCacheSnapshot) served from the
// watch cache, continue tokens included; older API servers serve it from
// etcd, page by page. A re-list at a resourceVersion the reflector saw keeps
// it and gets the limit too (an exact-version list, from the cache's
// snapshots where it has them).
//
// When a later page's continue token has expired (etcd compacted past the
// list's revision: a list that outlived the API server's compaction
// interval, five minutes by default), client-go's pager asks once more for
// the whole list, with no limit, and returns that answer as the list
// (tools/pager ListPager.list, FullListIfExpired). With a
// limit added here, that answer would be a first page only: the reflector
// would take a part of the Events or objects for all of them (objects gone
// from the gauges, Events never counted, until a restart). So that request
// is answered 410 Expired instead: the reflector then lists again from the
// start, in pages (Reflector.list retries an expired list at once).
func paged[L runtime.Object](list func(context.Context, metav1.ListOptions) (L, error), pageSize int64) func(context.Context, metav1.ListOptions) (L, error) {
	// inList: the last page had a continue token, so a request without one
	// and without a limit is the pager's fallback, not a new list.
	var inList atomic.Bool
	return func(ctx context.Context, o metav1.ListOptions) (L, error) {
		if o.Continue == "" && o.Limit == 0 && inList.Swap(false) {
			var none L
			return none, apierrors.NewResourceExpired("a page's continue token expired: the list starts again, in pages")
		}
		if o.Continue == "" && o.ResourceVersion == "0" {
			o.ResourceVersion, o.ResourceVersionMatch = "", ""
		}
		if o.Limit == 0 {
			o.Limit = pageSize
		}
		page, err := list(ctx, o)
		if err == nil {
			if m, merr := meta.ListAccessor(page); merr == nil {
				inList.Store(m.GetContinue() != "")
			}
		}
		return page, err
	}
}

// firstListsGCPercent is the collector's GOGC while the first lists run.
const firstListsGCPercent = 400

// collectRarelyDuringFirstLists raises the collector's GOGC to
// firstListsGCPercent until the returned function is called, unless GOGC is
// set in the environment (the operator's choice stands) or is that high
// already (or off). While the first lists run, the function's heap grows
// from a few MB to its working set, and at the usual GOGC (50) the
// collector ran about every 50 ms from the start, marking on the core the
// API server was serving the lists with: ~90 collections and 1.1 of the
// function's 2.7 CPU-s to the first complete /metrics at 100k objects. The
// soft memory limit (pkg/memlimit) still bounds the heap, so the peak stays
// where it was; only the collections a small heap did not need go
// (docs/benchmarks.md, issue 23, thirteenth round). It holds the
// exposition's lock, as a render's own change of GOGC does, so that
// neither restores the other's value.
func (s *Service) collectRarelyDuringFirstLists() (restore func()) {
	if v, ok := os.LookupEnv("GOGC"); ok && v != "" {
		return func() {}
	}
	s.exp.mu.Lock()
	defer s.exp.mu.Unlock()
	prev := debug.SetGCPercent(firstListsGCPercent)
	if prev < 0 || prev >= firstListsGCPercent {
		debug.SetGCPercent(prev)
		return func() {}
	}
	return func() {
		s.exp.mu.Lock()
		defer s.exp.mu.Unlock()
		debug.SetGCPercent(prev)
	}
}

// informer builds one namespaced informer (no resync, no index) whose
// watches and watch errors are counted under resource.
func (s *Service) informer(resource string, example runtime.Object, list cache.ListWithContextFunc, watchFn cache.WatchFuncWithContext) cache.SharedIndexInformer {
	inf := cache.NewSharedIndexInformerWithOptions(s.watches.instrument(resource, list, watchFn), example, cache.SharedIndexInformerOptions{})
	// It cannot fail before the informer runs.
	_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		s.watches.failed(ctx, resource, r, err)
	})
	return inf
}

func (s *Service) flush(ctx context.Context) {
	if err := s.counter.Flush(ctx); err != nil {
		s.writesError.Add(1)
		s.log.ErrorContext(ctx, "writing checkpoint", "error", err, "pending", s.counter.Pending())
		return
	}
	s.writesOK.Add(1)
}

// releaseIdleRepositories gives back the label slots of repositories with
// no live Event and no object for RepositoryIdleTimeout, and drops their
// counts (so the next flush removes them from the checkpoint, and neither a
// restart nor another instance brings them back).
func (s *Service) releaseIdleRepositories(ctx context.Context) {
	if s.cfg.RepositoryIdleTimeout <= 0 {
		return
	}
	s.mu.Lock()
	caches := s.objectCaches
	s.mu.Unlock()
	if caches == nil {
		return
	}
	alive := map[string]bool{}
	for _, repo := range s.events.repositoriesWithLiveEvents() {
		alive[repo] = true
	}
	prs, brs, deps := followRenames(caches.list()) // a renamed repository's former name is idle
	for _, pr := range prs {
		alive[pr.Repository.Value()] = true
	}
	for _, b := range brs {
		alive[b.Repository.Value()] = true
	}
	for _, d := range deps {
		alive[d.Repository.Value()] = true
	}
	for _, repo := range s.repos.sweep(alive, time.Now(), s.cfg.RepositoryIdleTimeout) {
		s.capGen.Add(1)
		s.counter.DropRepository(repo)
		s.log.InfoContext(ctx, "repository idle: label slot given back, its series end", "repository", repo,
			"idle", s.cfg.RepositoryIdleTimeout.String())
	}
}

// Stop stops the informers, persists what was counted and frees the kept
// text. A Stop whose ctx is already done skips the final write, like a
// crash: those Events are counted again by the next process, from the list.
func (s *Service) Stop(ctx context.Context) error {
	defer s.exp.release()
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	s.wg.Wait() // informers and their handlers have returned
	s.ready.Store(false)
	if !s.counter.Loaded() {
		return nil
	}
	if err := s.counter.Flush(ctx); err != nil {
		return fmt.Errorf("final checkpoint: %w", err)
	}
	return nil
}

// Ready reports whether the checkpoint is loaded and the caches are synced.
func (s *Service) Ready(context.Context) (bool, error) { return s.ready.Load(), nil }

// Alive reports whether the process should keep running; informers recover
// from API server outages by themselves, so it always is.
func (s *Service) Alive(context.Context) (bool, error) { return true, nil }

// WaitReady blocks until Ready or ctx is done.
func (s *Service) WaitReady(ctx context.Context) error {
	return wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		return s.ready.Load(), nil
	})
}

// Counts returns the current event counters (checkpoint plus pending), for
// tests and diagnostics.
func (s *Service) Counts() map[eventcount.Key]uint64 { return s.counter.Counts() }

// scrapeView is what the families gathered on every scrape read (the
// per-repository ones read repositoryView, exposition.go).
func (s *Service) scrapeView() *view {
	v := &view{
		pending:          s.counter.Pending(),
		checkpointWrites: map[string]uint64{"success": s.writesOK.Load(), "error": s.writesError.Load()},
		dropped:          s.repos.droppedTotal(),
		renders:          s.renders.Load(),
	}
	s.events.snapshot(v)
	s.watches.snapshot(v)
	v.eventLag = s.lag.snapshot()
	v.cursors, v.now = s.cursors(), time.Now()
	return v
}
