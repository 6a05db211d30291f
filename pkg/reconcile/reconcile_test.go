package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

// noRecorder is a Recorder New accepts; these tests record nothing.
type noRecorder struct{}

func (noRecorder) RecordReconciled(context.Context, githubevent.Change) (recorder.Outcome, error) {
	return recorder.Outcome(""), nil
}
func (noRecorder) Ship(context.Context, string) error                                { return nil }
func (noRecorder) RecordedBranches(context.Context, string, int64) ([]string, error) { return nil, nil }

func TestNew_RequiresTheClientsAndFillsInTheDefaults(t *testing.T) {
	kube, dyn := kubefake.NewSimpleClientset(), dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	full := Options{Kube: kube, Dynamic: dyn, Recorder: noRecorder{}, Namespace: "ns"}
	for name, change := range map[string]func(*Options){
		"no Kube": func(o *Options) { o.Kube = nil }, "no Dynamic": func(o *Options) { o.Dynamic = nil },
		"no Recorder": func(o *Options) { o.Recorder = nil }, "no Namespace": func(o *Options) { o.Namespace = "" },
	} {
		o := full
		change(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	r, err := New(full)
	if err != nil {
		t.Fatal(err)
	}
	o := r.opts
	for _, d := range []struct {
		name      string
		got, want time.Duration
	}{
		{"Budget, inside func-go's 30 s write timeout", o.Budget, 20 * time.Second},
		{"Window", o.Window, 90 * 24 * time.Hour},
		{"Retention, github.com's", o.Retention, 72 * time.Hour},
		{"RedeliverAfter", o.RedeliverAfter, 10 * time.Minute},
		{"FullResync", o.FullResync, 24 * time.Hour},
		{"the HTTP client's timeout", o.HTTPClient.Timeout, 10 * time.Second},
	} {
		if d.got != d.want {
			t.Errorf("%s = %v, want %v", d.name, d.got, d.want)
		}
	}
	if o.MaxRequests != 300 || o.MinRemaining != 100 || o.Logger == nil || o.Now == nil {
		t.Errorf("MaxRequests %d, MinRemaining %d, Logger set %v, Now set %v; want 300, 100, true, true",
			o.MaxRequests, o.MinRemaining, o.Logger != nil, o.Now != nil)
	}
	// What is given is kept.
	given := full
	given.Budget, given.MaxRequests, given.MinRemaining = 5*time.Second, 7, 1
	if r, err := New(given); err != nil || r.opts.Budget != 5*time.Second || r.opts.MaxRequests != 7 || r.opts.MinRemaining != 1 {
		t.Errorf("given options not kept: %+v, %v", r.opts, err)
	}
}

// passAt is a pass in progress with budget requests left, GitHub's last
// rate headers rate, and a clock stopped at now.
func passAt(now time.Time, budget int, rate github.Rate) *pass {
	r := &Reconciler{opts: Options{MaxRequests: 300, MinRemaining: 100, MaxFailures: 100, MaxRetryBackoff: 6 * time.Hour,
		Now: func() time.Time { return now }}}
	return &pass{r: r, budget: budget, rate: rate, start: now, log: slog.New(slog.DiscardHandler),
		failures: map[unit]failure{}, outcomes: map[unit]outcome{}, handled: map[unit]bool{}, fullRead: map[unit]bool{},
		errors: map[string]int64{}}
}

func TestPass_TakeSpendsTheBudgetAndStopsBeforeGitHubsRunsOut(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	reset := now.Add(17 * time.Minute)
	rate := func(remaining int) github.Rate {
		return github.Rate{Limit: 5000, Remaining: remaining, Reset: github.Timestamp{Time: reset}}
	}
	for _, tt := range []struct {
		name          string
		budget        int
		rate          github.Rate
		deadline      time.Duration // from now; 0: none
		ended         string        // a result set before take
		want          bool
		wantResult    string
		wantNotBefore time.Time
		wantBudget    int
	}{
		{name: "budget left, no rate headers yet", budget: 3, want: true, wantBudget: 2},
		{name: "last request of the budget", budget: 1, rate: rate(4000), want: true, wantBudget: 0},
		{name: "budget spent: partial", budget: 0, rate: rate(4000), wantResult: ResultPartial},
		{name: "less than 2 s left: partial", budget: 3, deadline: time.Second, wantResult: ResultPartial, wantBudget: 3},
		{name: "time enough left", budget: 3, deadline: time.Minute, want: true, wantBudget: 2},
		{name: "GitHub's remaining at the floor is enough", budget: 3, rate: rate(100), want: true, wantBudget: 2},
		{name: "GitHub's remaining below the floor: rate limited until the reset", budget: 3, rate: rate(99),
			wantResult: ResultRateLimited, wantNotBefore: reset, wantBudget: 3},
		{name: "an ended pass takes nothing", budget: 3, ended: ResultError, wantResult: ResultError, wantBudget: 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			p := passAt(now, tt.budget, tt.rate)
			p.result = tt.ended
			if got := p.take(ctx); got != tt.want {
				t.Errorf("take() = %v, want %v", got, tt.want)
			}
			if p.result != tt.wantResult || !p.notBefore.Equal(tt.wantNotBefore) || p.budget != tt.wantBudget {
				t.Errorf("result %q, notBefore %v, budget %d; want %q, %v, %d",
					p.result, p.notBefore, p.budget, tt.wantResult, tt.wantNotBefore, tt.wantBudget)
			}
		})
	}
}

// forbidden is the response go-github's rate limit errors carry (their
// Error methods read its request).
func forbidden() *http.Response {
	return &http.Response{StatusCode: http.StatusForbidden,
		Request: &http.Request{Method: http.MethodPost, URL: &url.URL{Scheme: "https", Host: "api.github.com", Path: "/x"}}}
}

func TestPass_DoneDecidesWhatAnErrorCosts(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	reset := now.Add(42 * time.Minute)
	retryAfter := 90 * time.Second
	primary := &github.RateLimitError{Response: forbidden(), Message: "API rate limit exceeded",
		Rate: github.Rate{Limit: 5000, Remaining: 0, Reset: github.Timestamp{Time: reset}}}
	status := func(code int) error {
		return &github.ErrorResponse{Response: &http.Response{StatusCode: code, Request: forbidden().Request}}
	}
	for _, tt := range []struct {
		name          string
		err           error
		want          bool
		wantResult    string // the pass ends so; "": it goes on
		wantNotBefore time.Time
		wantGHErr     bool
		wantUnit      string // the unit's remembered reason; "": not remembered
		wantCounted   string // the errors counter's "resource.reason"
	}{
		{name: "success", want: true},
		{name: "202 Accepted (go-github's AcceptedError) is success", err: &github.AcceptedError{}, want: true},
		{name: "primary limit: the pass is rate limited until its reset", err: primary,
			wantResult: ResultRateLimited, wantNotBefore: reset, wantGHErr: true, wantCounted: "reviews.rate_limited"},
		{name: "primary limit, wrapped", err: fmt.Errorf("listing: %w", primary),
			wantResult: ResultRateLimited, wantNotBefore: reset, wantGHErr: true, wantCounted: "reviews.rate_limited"},
		{name: "secondary limit: rate limited for its Retry-After",
			err:        &github.AbuseRateLimitError{Response: forbidden(), RetryAfter: &retryAfter},
			wantResult: ResultRateLimited, wantNotBefore: now.Add(retryAfter), wantGHErr: true, wantCounted: "reviews.rate_limited"},
		{name: "secondary limit without Retry-After: a minute",
			err:        &github.AbuseRateLimitError{Response: forbidden()},
			wantResult: ResultRateLimited, wantNotBefore: now.Add(time.Minute), wantGHErr: true, wantCounted: "reviews.rate_limited"},
		{name: "a bare 429: rate limited for a minute", err: status(http.StatusTooManyRequests),
			wantResult: ResultRateLimited, wantNotBefore: now.Add(time.Minute), wantGHErr: true, wantCounted: "reviews.rate_limited"},
		{name: "404: the unit only", err: status(http.StatusNotFound), wantUnit: ReasonNotFound, wantCounted: "reviews.not_found"},
		{name: "403 without a rate limit: the unit only", err: status(http.StatusForbidden), wantUnit: ReasonForbidden, wantCounted: "reviews.forbidden"},
		{name: "502: the unit only", err: status(http.StatusBadGateway), wantUnit: ReasonServerError, wantCounted: "reviews.server_error"},
		{name: "no answer: the unit only", err: errors.New("connection reset"), wantUnit: ReasonOther, wantCounted: "reviews.other"},
		{name: "401: the credentials, the pass failed", err: status(http.StatusUnauthorized),
			wantResult: ResultError, wantGHErr: true, wantCounted: "reviews.unauthorized"},
		{name: "the pass's own deadline mid-request: partial, not GitHub's failure", err: fmt.Errorf("get: %w", context.DeadlineExceeded),
			wantResult: ResultPartial},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := passAt(now, 10, github.Rate{})
			u := pullUnit("acme/api", 7)
			if got := p.done(u, ResourceReviews, nil, tt.err); got != tt.want {
				t.Errorf("done() = %v, want %v", got, tt.want)
			}
			if p.result != tt.wantResult || !p.notBefore.Equal(tt.wantNotBefore) {
				t.Errorf("result %q, notBefore %v; want %q, %v", p.result, p.notBefore, tt.wantResult, tt.wantNotBefore)
			}
			if (p.ghErr != nil) != tt.wantGHErr || (tt.wantGHErr && p.ghErr != tt.err) {
				t.Errorf("GitHub error kept: %v, want %v (the error itself)", p.ghErr != nil, tt.wantGHErr)
			}
			o, remembered := p.outcomes[u]
			if got := o.f.Reason; remembered != (tt.wantUnit != "") || got != tt.wantUnit || o.failed != remembered {
				t.Errorf("unit remembered %v with reason %q, want %q", remembered, got, tt.wantUnit)
			}
			if tt.wantCounted != "" && (len(p.errors) != 1 || p.errors[tt.wantCounted] != 1) {
				t.Errorf("errors counted %v, want %s once", p.errors, tt.wantCounted)
			} else if tt.wantCounted == "" && len(p.errors) != 0 {
				t.Errorf("errors counted %v, want none", p.errors)
			}
		})
	}
}

func TestPass_GitHubFailingRequestAfterRequestEndsThePass(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	bad := &github.ErrorResponse{Response: &http.Response{StatusCode: http.StatusServiceUnavailable, Request: forbidden().Request}}
	gone := &github.ErrorResponse{Response: &http.Response{StatusCode: http.StatusNotFound, Request: forbidden().Request}}
	p := passAt(now, 10, github.Rate{})
	// 404s are the units' own: any number of them leaves the pass going.
	for i := range 5 {
		p.done(pullUnit("acme/api", i), ResourceReviews, nil, gone)
	}
	p.done(listUnit(ResourceBranches, "acme/api"), ResourceBranches, nil, bad)
	p.done(listUnit(ResourcePulls, "acme/api"), ResourcePulls, nil, nil) // a success in between
	for i := range maxConsecutive - 1 {
		p.done(pullUnit("acme/api", 10+i), ResourceReviews, nil, bad)
	}
	if p.result != "" {
		t.Fatalf("result %q before %d failures of GitHub in a row", p.result, maxConsecutive)
	}
	p.done(listUnit(ResourceDeployments, "acme/api"), ResourceDeployments, nil, bad)
	if p.result != ResultError || p.ghErr != bad {
		t.Errorf("after %d 503s in a row: result %q (%v), want error", maxConsecutive, p.result, p.ghErr)
	}

	// An error of the client's own (a GitHub App whose installation token
	// cannot be had) fails every request alike: it ends the pass too.
	p = passAt(now, 10, github.Rate{})
	for i := range maxConsecutive {
		p.done(pullUnit("acme/api", i), ResourceReviews, nil, errors.New("could not refresh installation id 7's token"))
	}
	if p.result != ResultError {
		t.Errorf("after %d client errors in a row: result %q, want error", maxConsecutive, p.result)
	}
}

func TestPass_DoneKeepsTheNewestRateHeaders(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	first := github.Rate{Limit: 5000, Remaining: 4200, Reset: github.Timestamp{Time: now.Add(time.Hour)}}
	p := passAt(now, 10, github.Rate{})
	p.done("u", ResourcePulls, &github.Response{Rate: first}, nil)
	if p.rate != first {
		t.Fatalf("rate %+v, want %+v", p.rate, first)
	}
	// A response without rate headers (a 202, a proxy's answer) keeps
	// what is known.
	p.done("u", ResourcePulls, &github.Response{}, nil)
	p.done("u", ResourcePulls, nil, errors.New("connection reset"))
	if p.rate != first {
		t.Errorf("rate %+v after answers without headers, want %+v", p.rate, first)
	}
	next := github.Rate{Limit: 5000, Remaining: 4199, Reset: first.Reset}
	p.done("u", ResourcePulls, &github.Response{Rate: next}, &github.AcceptedError{})
	if p.rate != next {
		t.Errorf("rate %+v, want the newest %+v", p.rate, next)
	}
}

func TestPass_StopsAfterTheAnswerThatTookGitHubsBudgetBelowTheFloor(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	reset := now.Add(30 * time.Minute)
	p := passAt(now, 10, github.Rate{})
	ctx := context.Background()
	for i, remaining := range []int{101, 100, 99} {
		if !p.take(ctx) {
			t.Fatalf("request %d refused with %d remaining before it", i, p.rate.Remaining)
		}
		if !p.done("u", ResourcePulls, &github.Response{Rate: github.Rate{Limit: 5000, Remaining: remaining, Reset: github.Timestamp{Time: reset}}}, nil) {
			t.Fatalf("request %d failed", i)
		}
	}
	if p.take(ctx) || p.result != ResultRateLimited || !p.notBefore.Equal(reset) || p.budget != 7 {
		t.Errorf("after 99 remaining: result %q until %v, budget %d; want %q until %v, 7",
			p.result, p.notBefore, p.budget, ResultRateLimited, reset)
	}
}
