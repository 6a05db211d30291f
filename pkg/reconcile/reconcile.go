// Package reconcile runs reconcile passes: for every GitHubSource in a
// namespace it asks GitHub (through go-github) to redeliver the webhook
// deliveries none of whose attempts succeeded, and backfills and repairs
// PullRequest and Branch objects from the REST API. A pass is bounded (time
// and requests, well inside func-go's 30 s write timeout) and keeps its
// progress per repository in a ConfigMap (cursor.go), so passes from
// several replicas may overlap without redelivering or writing twice.
//
// The recorder function runs a pass for each CloudEvent of type EventType
// (a Knative PingSource sends one every 10 minutes in a cluster; `make run`
// sends one every GITPULSE_RECONCILE_INTERVAL).
package reconcile

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

// EventType is the CloudEvent type that triggers a pass (any source).
const EventType = "dev.liatr.gitpulse.reconcile"

// Recorder writes what a pass reconciles: pkg/recorder's Recorder.
type Recorder interface {
	RecordReconciled(ctx context.Context, ch githubevent.Change) (recorder.Outcome, error)
	// Ship brings a repository's lead time attribution up to date
	// (pkg/recorder leadtime.go), after its pull requests and
	// deployments were backfilled.
	Ship(ctx context.Context, repository string) error
	// RecordedBranches names repository's Branch objects in state
	// created, to find those GitHub no longer lists: by its GitHub id when
	// known (repositoryID > 0: objects not yet following a rename too),
	// else by its name.
	RecordedBranches(ctx context.Context, repository string, repositoryID int64) ([]string, error)
}

// Options configure a Reconciler. Zero values take the defaults named.
type Options struct {
	Kube kubernetes.Interface
	// Dynamic reads GitHubSources.
	Dynamic  dynamic.Interface
	Recorder Recorder
	// Namespace is where the GitHubSources, their Secrets, the cursors,
	// the objects and Events are.
	Namespace string
	// HTTPClient talks to GitHub; default a client with a 10 s timeout.
	HTTPClient *http.Client
	// Budget bounds one pass's time; default 20 s (func-go's write timeout
	// is 30 s).
	Budget time.Duration
	// MaxRequests bounds one pass's GitHub API requests; default 300.
	MaxRequests int
	// MinRemaining stops a pass when GitHub's primary budget
	// (X-RateLimit-Remaining) falls below it, leaving the rest to other
	// users of the token (the GitHubSource controller among them);
	// default 100.
	MinRemaining int
	// Window bounds the pull request history a backfill reads (by
	// updated_at; the reviews of those pull requests) and the deployment
	// history (by created_at); default 90 days.
	Window time.Duration
	// Retention is how far back deliveries are looked at; default 72 h,
	// how long github.com keeps them (GitHub Enterprise Server: 7 days).
	Retention time.Duration
	// RedeliverAfter is the least time between two redelivery requests for
	// one GUID (a redelivery that failed again is asked for once more after
	// it); default 10 minutes.
	RedeliverAfter time.Duration
	// FullResync is how often the whole window (and every branch) is read
	// again, to repair objects that were deleted or changed by hand;
	// default 24 h.
	FullResync time.Duration
	// MaxFailures bounds the failed units of work a scope's cursor
	// remembers for retry (failures.go); beyond it the oldest first
	// failure is forgotten (read again when GitHub lists it again, or at
	// the next full resync); default 100 (about 300 bytes each).
	MaxFailures int
	// MaxRetryBackoff caps the backoff before a failed unit is tried
	// again (1 minute, doubling); default 6 h. Failures that may pass
	// unchanged (5xx, network) are capped at 10 minutes.
	MaxRetryBackoff time.Duration
	Logger          *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Reconciler runs passes. It is safe for concurrent use.
type Reconciler struct {
	opts  Options
	store store
	log   *slog.Logger

	mu   sync.Mutex
	apps map[string]*ghinstallation.Transport
	// etags remembers GitHub's answers for conditional requests (etag.go).
	etags *etagCache
}

// New checks opts and fills in defaults.
func New(opts Options) (*Reconciler, error) {
	if opts.Kube == nil || opts.Dynamic == nil || opts.Recorder == nil || opts.Namespace == "" {
		return nil, errors.New("reconcile: Kube, Dynamic, Recorder and Namespace are required")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Budget, 20*time.Second)
	def(&opts.Window, 90*24*time.Hour)
	def(&opts.Retention, 72*time.Hour)
	def(&opts.RedeliverAfter, 10*time.Minute)
	def(&opts.FullResync, 24*time.Hour)
	def(&opts.MaxRetryBackoff, 6*time.Hour)
	if opts.MaxFailures <= 0 {
		opts.MaxFailures = 100
	}
	if opts.MaxRequests <= 0 {
		opts.MaxRequests = 300
	}
	if opts.MinRemaining <= 0 {
		opts.MinRemaining = 100
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Reconciler{opts: opts, store: store{kube: opts.Kube, namespace: opts.Namespace}, log: opts.Logger,
		etags: newETagCache(etagCacheBytes)}, nil
}

// Report is what one pass did, summed over its sources.
type Report struct {
	Sources int
	// Results counts the sources by pass result (ResultOK, ...).
	Results map[string]int
	// Redeliveries is how many redeliveries this pass asked GitHub for.
	Redeliveries int
	// Reconciled is how many objects this pass changed.
	Reconciled int
	// FailedUnits is how many units of work failed in this pass (each
	// remembered in its cursor and retried with backoff).
	FailedUnits int
	// Errors are the sources' failures (GitHub's, a malformed source); a
	// pass reports them in logs and metrics, not as a failed pass.
	Errors []error
}

// Pass runs one bounded pass over every GitHubSource in the namespace. It
// fails only when the API server does (the trigger's sender may retry);
// GitHub's failures are per source, in the Report.
func (r *Reconciler) Pass(ctx context.Context) (Report, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Budget)
	defer cancel()
	rep := Report{Results: map[string]int{}}
	sources, errs, err := Discover(ctx, r.opts.Dynamic, r.opts.Kube, r.opts.Namespace)
	if err != nil {
		return rep, err
	}
	for _, e := range errs {
		r.log.Warn("GitHubSource not reconciled", "err", e)
	}
	rep.Errors = append(rep.Errors, errs...)
	rep.Sources = len(sources)
	for _, src := range sources {
		res, err := r.source(ctx, src, &rep)
		if err != nil {
			return rep, err
		}
		rep.Results[res]++
	}
	return rep, nil
}

// client is go-github for a source: its token, its API URL (GitHub
// Enterprise as eventing-github's webhook_client.go sets it: BaseURL). A
// source with a GitHub App authenticates as the App installation through
// ghinstallation's Transport (transport.go: it posts a JWT signed with the
// App's key to {BaseURL}/app/installations/{id}/access_tokens and sends
// "Authorization: token <installation token>", renewed before it expires);
// the Transport is kept per App installation so a token serves many passes.
func (r *Reconciler) client(src Source) (*github.Client, error) {
	u, err := url.Parse(src.APIURL)
	if err != nil {
		return nil, fmt.Errorf("spec.githubAPIURL %q: %w", src.APIURL, err)
	}
	var c *github.Client
	// Every GET conditional (etag.go), per source.
	conditional := func(base http.RoundTripper) http.RoundTripper {
		if base == nil {
			base = http.DefaultTransport
		}
		return &etagTransport{base: base, cache: r.etags, scope: string(src.UID) + " " + src.APIURL + " " + src.Scope()}
	}
	if src.AppID != 0 {
		tr, err := r.appTransport(src)
		if err != nil {
			return nil, err
		}
		c = github.NewClient(&http.Client{Transport: conditional(tr), Timeout: r.opts.HTTPClient.Timeout})
	} else {
		hc := *r.opts.HTTPClient
		hc.Transport = conditional(hc.Transport)
		c = github.NewClient(&hc).WithAuthToken(src.Token)
	}
	c.BaseURL = u
	return c, nil
}

func (r *Reconciler) appTransport(src Source) (*ghinstallation.Transport, error) {
	key := fmt.Sprintf("%s|%d|%d|%x", src.APIURL, src.AppID, src.InstallationID, sha256.Sum256(src.AppKey))
	r.mu.Lock()
	defer r.mu.Unlock()
	if tr, ok := r.apps[key]; ok {
		return tr, nil
	}
	base := r.opts.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	tr, err := ghinstallation.New(base, src.AppID, src.InstallationID, src.AppKey)
	if err != nil {
		return nil, fmt.Errorf("GitHub App %d: %w", src.AppID, err)
	}
	// ghinstallation's BaseURL is the API root without the trailing slash.
	tr.BaseURL = strings.TrimSuffix(src.APIURL, "/")
	if r.apps == nil {
		r.apps = map[string]*ghinstallation.Transport{}
	}
	r.apps[key] = tr
	return tr, nil
}

// source runs the pass for one GitHubSource. The error is the API
// server's. GitHub's cost the unit of work they answer (failures.go); the
// pass ends early only on a rate limit, its budget, bad credentials or
// GitHub failing every request in a row (ResultError).
func (r *Reconciler) source(ctx context.Context, src Source, rep *Report) (string, error) {
	log := r.log.With("githubSource", src.Name, "scope", src.Scope())
	start := r.opts.Now()
	cur, err := r.store.load(ctx, src)
	if err != nil {
		return "", err
	}
	p := &pass{r: r, src: src, log: log, start: start, cur: cur, budget: r.opts.MaxRequests,
		failures: cur.failures(), outcomes: map[unit]outcome{}, handled: map[unit]bool{}, fullRead: map[unit]bool{},
		errors: map[string]int64{}}
	if nb := cur.time(KeyNotBefore); start.Before(nb) {
		log.Info("reconcile skipped: GitHub's rate limit", "until", nb)
		p.result = ResultRateLimited
	} else if p.gh, err = r.client(src); err != nil {
		p.fail(err)
	}
	// Redelivery first: it never waits on backfill, and its failures
	// (the hook's deliveries unreadable) cost backfill nothing.
	if p.result == "" && src.HookID != 0 {
		if err := p.redeliver(ctx); err != nil {
			return "", err
		}
	}
	if p.result == "" {
		if err := p.backfill(ctx); err != nil {
			return "", err
		}
	}
	if p.result == "" {
		switch {
		case p.failed > 0 && p.succeeded == 0:
			// Nothing GitHub was asked succeeded.
			p.result, p.ghErr = ResultError, p.firstErr
		case p.failed > 0 || p.skipped > 0:
			p.result = ResultDegraded
		default:
			p.result = ResultOK
		}
	}
	rep.Redeliveries += p.redelivered
	rep.Reconciled += p.reconciled
	rep.FailedUnits += p.failed
	if p.ghErr != nil {
		rep.Errors = append(rep.Errors, fmt.Errorf("GitHubSource %s: %w", src.Name, p.ghErr))
	}
	_, err = r.store.update(ctx, src, func(c cursor) bool {
		c.add(KeyPassesPrefix+p.result, 1)
		c.add(KeyRedeliveries, int64(p.redelivered))
		c.add(KeyReconciled, int64(p.reconciled))
		c.setTime(KeyLastPassAt, start)
		c.set(KeyLastResult, p.result)
		for k, n := range p.errors {
			c.add(KeyErrorsPrefix+k, n)
		}
		c.applyOutcomes(p.outcomes, r.opts, start)
		if p.rate.Limit > 0 {
			c.set(KeyAPIRemaining, fmt.Sprint(p.rate.Remaining))
			c.set(KeyAPILimit, fmt.Sprint(p.rate.Limit))
		}
		if !p.notBefore.IsZero() && p.notBefore.After(c.time(KeyNotBefore)) {
			c.setTime(KeyNotBefore, p.notBefore)
		}
		return true
	})
	if err != nil {
		return "", err
	}
	log.Info("reconcile pass", "result", p.result, "redeliveries", p.redelivered, "reconciled", p.reconciled,
		"failedUnits", p.failed, "backingOff", p.skipped, "requests", r.opts.MaxRequests-p.budget,
		"rateRemaining", p.rate.Remaining, "err", p.ghErr)
	return p.result, nil
}

// pass is one source's pass in progress.
type pass struct {
	r     *Reconciler
	src   Source
	gh    *github.Client
	log   *slog.Logger
	start time.Time
	cur   cursor
	// budget is the requests left.
	budget int
	rate   github.Rate
	// gqlRate is GraphQL's own budget (graphql.go); gqlMissing that the
	// source's GraphQL endpoint answered 404 (REST reads instead).
	gqlRate    github.Rate
	gqlMissing bool
	// result, once set, ends the pass.
	result      string
	ghErr       error
	notBefore   time.Time
	redelivered int
	reconciled  int
	// repos are the repositories' ids and current names (identity.go).
	repos map[string]repositoryRef

	// Units of work (failures.go). failures is the cursor's at the start
	// of the pass; outcomes what this pass learnt, written at its end;
	// handled the item units this pass has tried (or skipped), so a retry
	// does not read them twice; fullRead the list units read whole.
	failures map[unit]failure
	outcomes map[unit]outcome
	handled  map[unit]bool
	fullRead map[unit]bool
	// errors counts this pass's failed requests by "resource.reason".
	errors map[string]int64
	// succeeded counts the requests GitHub answered with success, failed
	// the units that failed, skipped those still backing off; consecutive
	// the retriable failures since the last success.
	succeeded, failed, skipped, consecutive int
	firstErr                                error
}

// maxConsecutive failures other than 404/403 (5xx, no answer, an error of
// the client's own) with no success in between end the pass as
// ResultError: GitHub (or the way to it) is down, and every further
// request would fail too.
const maxConsecutive = 3

// take reserves one API request, or ends the pass as partial when the
// time, the request budget or GitHub's remaining budget is spent.
func (p *pass) take(ctx context.Context) bool {
	if p.result != "" {
		return false
	}
	dl, ok := ctx.Deadline()
	switch {
	case p.budget <= 0, ok && time.Until(dl) < 2*time.Second:
		p.result = ResultPartial
		return false
	case p.rate.Limit > 0 && p.rate.Remaining < p.r.opts.MinRemaining:
		// Stop before the budget runs out; resume after GitHub's reset.
		p.result, p.notBefore = ResultRateLimited, p.rate.Reset.Time
		return false
	}
	p.budget--
	return true
}

// done reads a response's rate headers and decides what its error costs:
// nothing (true: the call succeeded, 202 Accepted included, go-github's
// AcceptedError); the pass, which ends (false, p.result set: a rate
// limit, the pass's own deadline, bad credentials, GitHub failing request
// after request); or unit u only (false: counted, logged with the URL and
// status, remembered in the cursor and retried with backoff — the pass
// goes on). resource is what the request read (Resource*).
func (p *pass) done(u unit, resource string, resp *github.Response, err error) bool {
	if resp != nil && resp.Rate.Limit > 0 {
		p.rate = resp.Rate
	}
	var (
		accepted *github.AcceptedError
		primary  *github.RateLimitError
		abuse    *github.AbuseRateLimitError
	)
	if err == nil || errors.As(err, &accepted) {
		p.succeeded++
		p.consecutive = 0
		if !u.list() {
			p.succeededUnit(u)
		}
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// The pass's own time ran out mid-request: not GitHub's failure.
		p.result = ResultPartial
		return false
	}
	reason, retriable := classify(err)
	p.errors[resource+"."+reason]++
	switch {
	case errors.As(err, &primary):
		// github.go CheckResponse: 403 with X-RateLimit-Remaining: 0.
		p.result, p.notBefore, p.ghErr = ResultRateLimited, primary.Rate.Reset.Time, err
	case errors.As(err, &abuse), reason == ReasonRateLimited:
		// A secondary limit (or a bare 429): honour Retry-After (a minute
		// when absent, as GitHub's docs advise).
		wait := time.Minute
		if abuse != nil && abuse.RetryAfter != nil {
			wait = *abuse.RetryAfter
		}
		p.result, p.notBefore, p.ghErr = ResultRateLimited, p.r.opts.Now().Add(wait), err
	case reason == ReasonUnauthorized:
		// The credentials themselves: no unit can succeed.
		p.fail(err)
	default:
		p.unitFailed(u, resource, reason, retriable, err)
		// 404 and 403 are about one item; anything else, again and again,
		// is about GitHub, the way to it or the client (a GitHub App whose
		// token cannot be had fails every request alike).
		if !tokenScope(reason) {
			if p.consecutive++; p.consecutive >= maxConsecutive {
				p.fail(err)
			}
		}
	}
	return false
}

// succeededUnit forgets unit u's earlier failure, if any: an item once its
// request succeeded, a list once its last page was read.
func (p *pass) succeededUnit(u unit) {
	if _, ok := p.failures[u]; ok {
		p.outcomes[u] = outcome{}
	}
}

// unitFailed remembers that unit u failed, and says so in the log: with
// the request's URL and status, and whether the token is refused (404 and
// 403: what a token may not see; docs/deploy.md "Token permissions") or
// GitHub or the network failed (5xx, no answer).
func (p *pass) unitFailed(u unit, resource, reason string, retriable bool, err error) {
	status, url := errorDetail(err)
	p.failed++
	if p.firstErr == nil {
		p.firstErr = err
	}
	p.handled[u] = true
	p.outcomes[u] = outcome{failed: true, retriable: retriable, f: failure{Resource: resource, Reason: reason,
		Status: status, URL: url, Full: p.fullRead[u]}}
	prev := p.failures[u]
	attrs := []any{"unit", string(u), "resource", resource, "reason", reason, "status", status, "url", url,
		"attempts", prev.Attempts + 1, "retryIn", backoff(prev.Attempts+1, retriable, p.r.opts.MaxRetryBackoff), "err", err}
	switch {
	case tokenScope(reason):
		p.log.Warn("reconcile unit failed: GitHub refused the token (its permissions, or the item is gone); retried with backoff", attrs...)
	case retriable:
		p.log.Warn("reconcile unit failed: GitHub or the network failed; retried with backoff", attrs...)
	default:
		p.log.Warn("reconcile unit failed; retried with backoff", attrs...)
	}
}

// due reports whether unit u may be tried in this pass: it has not failed,
// or its backoff is over. A unit still backing off is skipped (and makes
// the pass degraded).
func (p *pass) due(u unit) bool {
	f, ok := p.failures[u]
	if !ok || !p.start.Before(f.RetryAt) {
		return true
	}
	p.skipped++
	p.handled[u] = true
	return false
}

func (p *pass) fail(err error) {
	p.result, p.ghErr = ResultError, err
}
