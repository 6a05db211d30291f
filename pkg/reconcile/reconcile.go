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
	// created, to find those GitHub no longer lists.
	RecordedBranches(ctx context.Context, repository string) ([]string, error)
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
	Logger     *slog.Logger
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
// server's; GitHub's end the source's pass with ResultError.
func (r *Reconciler) source(ctx context.Context, src Source, rep *Report) (string, error) {
	log := r.log.With("githubSource", src.Name, "scope", src.Scope())
	start := r.opts.Now()
	cur, err := r.store.load(ctx, src)
	if err != nil {
		return "", err
	}
	p := &pass{r: r, src: src, log: log, start: start, cur: cur, budget: r.opts.MaxRequests}
	if nb := cur.time(KeyNotBefore); start.Before(nb) {
		log.Info("reconcile skipped: GitHub's rate limit", "until", nb)
		p.result = ResultRateLimited
	} else if p.gh, err = r.client(src); err != nil {
		p.fail(err)
	}
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
		p.result = ResultOK
	}
	rep.Redeliveries += p.redelivered
	rep.Reconciled += p.reconciled
	if p.ghErr != nil {
		rep.Errors = append(rep.Errors, fmt.Errorf("GitHubSource %s: %w", src.Name, p.ghErr))
	}
	_, err = r.store.update(ctx, src, func(c cursor) bool {
		c.add(KeyPassesPrefix+p.result, 1)
		c.add(KeyRedeliveries, int64(p.redelivered))
		c.add(KeyReconciled, int64(p.reconciled))
		c.setTime(KeyLastPassAt, start)
		c.set(KeyLastResult, p.result)
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
		"requests", r.opts.MaxRequests-p.budget, "rateRemaining", p.rate.Remaining, "err", p.ghErr)
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
}

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

// done reads a response's rate headers and classifies its error: nil
// when the call succeeded (202 Accepted included, go-github's
// AcceptedError), else the pass ends as rate limited or failed.
func (p *pass) done(resp *github.Response, err error) bool {
	if resp != nil && resp.Rate.Limit > 0 {
		p.rate = resp.Rate
	}
	var (
		accepted *github.AcceptedError
		primary  *github.RateLimitError
		abuse    *github.AbuseRateLimitError
	)
	switch {
	case err == nil, errors.As(err, &accepted):
		return true
	case errors.As(err, &primary):
		// github.go CheckResponse: 403 with X-RateLimit-Remaining: 0.
		p.result, p.notBefore, p.ghErr = ResultRateLimited, primary.Rate.Reset.Time, err
	case errors.As(err, &abuse):
		// A secondary limit: honour Retry-After (a minute when absent, as
		// GitHub's docs advise).
		wait := time.Minute
		if abuse.RetryAfter != nil {
			wait = *abuse.RetryAfter
		}
		p.result, p.notBefore, p.ghErr = ResultRateLimited, p.r.opts.Now().Add(wait), err
	default:
		p.fail(err)
	}
	return false
}

func (p *pass) fail(err error) {
	p.result, p.ghErr = ResultError, err
}
