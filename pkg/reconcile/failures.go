package reconcile

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A pass is made of units of work — a repository's pull request list, one
// pull request with its reviews, a branch list, a deployment list, one
// deployment with its statuses, the hook's delivery list, one redelivery,
// an organisation's repository list — and an error GitHub answers for one
// costs that unit only: the pass goes on with the others. The unit is
// remembered in the cursor (KeyFailures) and retried by later passes with
// exponential backoff; a unit that succeeds is forgotten. The failures are
// bounded (Options.MaxFailures, oldest first failure dropped), so a
// repository whose token sees nothing cannot grow the ConfigMap.

// Resources: what a failed request read, the resource label of
// gitpulse_reconcile_errors_total (stablev1.ReconcileErrorResources).
const (
	ResourceRepositories       = "repositories"        // an organisation's repository list
	ResourceDeliveries         = "deliveries"          // the hook's deliveries and their redelivery
	ResourcePulls              = "pulls"               // a repository's pull requests (list or one)
	ResourceReviews            = "reviews"             // one pull request's reviews
	ResourceBranches           = "branches"            // a repository's branch list
	ResourceDeployments        = "deployments"         // a repository's deployments (list or one)
	ResourceDeploymentStatuses = "deployment_statuses" // one deployment's statuses
)

// unit names one unit of work: its key in the cursor's failures
// ("pulls/acme/api", "pull/acme/api#7", "deployment/acme/api#42",
// "redelivery/<guid>", "branches/acme/api", ...).
type unit string

func listUnit(resource, repository string) unit { return unit(resource + "/" + repository) }

func pullUnit(repository string, number int) unit {
	return unit("pull/" + repository + "#" + strconv.Itoa(number))
}

func deploymentUnit(repository string, id int64) unit {
	return unit("deployment/" + repository + "#" + strconv.FormatInt(id, 10))
}

func redeliveryUnit(guid string) unit { return unit("redelivery/" + guid) }

// list reports whether u is a list (read page by page: it succeeds only
// once its last page is read).
func (u unit) list() bool {
	kind, _, _ := strings.Cut(string(u), "/")
	return kind != "pull" && kind != "deployment" && kind != "redelivery"
}

// item splits an item unit ("pull/acme/api#7") into its kind, repository
// and number; ok is false for list units.
func (u unit) item() (kind, repository string, n int64, ok bool) {
	kind, rest, _ := strings.Cut(string(u), "/")
	repository, num, found := strings.Cut(rest, "#")
	if !found || (kind != "pull" && kind != "deployment") {
		return "", "", 0, false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return "", "", 0, false
	}
	return kind, repository, n, true
}

// failure is what the cursor remembers of a failed unit.
type failure struct {
	// Resource is what the failing request read, Reason why it failed
	// (classify), Status GitHub's HTTP status (0: no answer), URL the
	// request's.
	Resource string `json:"resource"`
	Reason   string `json:"reason"`
	Status   int    `json:"status,omitempty"`
	URL      string `json:"url,omitempty"`
	// Attempts counts the passes it failed in; First and Last are the
	// first and the latest; RetryAt is when a pass may try it again.
	Attempts int       `json:"attempts"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
	RetryAt  time.Time `json:"retryAt"`
	// Full: a full pass's read of a list failed; the retry reads the
	// whole window again (and, for branches, marks the absent deleted).
	Full bool `json:"full,omitempty"`
}

// maxURL bounds a remembered URL (GitHub's are far shorter).
const maxURL = 300

// Backoff of a failed unit: 1 minute after the first failure, doubling,
// capped at Options.MaxRetryBackoff (default 6 h) for what needs a change on
// GitHub's side (404, 403) and at retriableBackoffCap for what may pass
// unchanged (5xx, network), so a unit that failed through an outage is read
// again within one PingSource interval once GitHub is back.
const (
	firstBackoff        = time.Minute
	retriableBackoffCap = 10 * time.Minute
)

func backoff(attempts int, retriable bool, maxBackoff time.Duration) time.Duration {
	limit := maxBackoff
	if retriable {
		limit = min(limit, retriableBackoffCap)
	}
	d := firstBackoff
	for i := 1; i < attempts && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// failures decodes the cursor's failed units.
func (c cursor) failures() map[unit]failure {
	out := map[unit]failure{}
	_ = json.Unmarshal([]byte(c.get(KeyFailures)), &out)
	return out
}

// setFailures writes fs, keeping the max with the newest first failure
// (ties: the latest, then the key) and dropping those older than
// maxAge (nothing backfill reads goes back further) and redeliveries older
// than retention (GitHub no longer keeps the delivery).
func (c cursor) setFailures(fs map[unit]failure, maxFailures int, now time.Time, maxAge, retention time.Duration) {
	for u, f := range fs {
		age := now.Sub(f.First)
		// A redelivery is possible only while GitHub keeps the delivery.
		if maxAge > 0 && age > maxAge || strings.HasPrefix(string(u), "redelivery/") && retention > 0 && age > retention {
			delete(fs, u)
		}
	}
	if len(fs) > maxFailures {
		keys := make([]unit, 0, len(fs))
		for u := range fs {
			keys = append(keys, u)
		}
		slices.SortFunc(keys, func(a, b unit) int {
			if c := fs[a].First.Compare(fs[b].First); c != 0 {
				return c
			}
			if c := fs[a].Last.Compare(fs[b].Last); c != 0 {
				return c
			}
			return strings.Compare(string(a), string(b))
		})
		for _, u := range keys[:len(keys)-maxFailures] {
			delete(fs, u)
		}
	}
	if len(fs) == 0 {
		c.set(KeyFailures, "")
		return
	}
	b, _ := json.Marshal(fs)
	c.set(KeyFailures, string(b))
}

// outcome is what a pass learnt of one unit: failed (f) or succeeded.
type outcome struct {
	failed    bool
	f         failure
	retriable bool
}

// applyOutcomes folds a pass's outcomes into the cursor's failures (read
// fresh, so overlapping passes merge): a unit that succeeded is forgotten,
// one that failed counts one more attempt and backs off.
func (c cursor) applyOutcomes(outs map[unit]outcome, opts Options, now time.Time) {
	if len(outs) == 0 {
		return
	}
	fs := c.failures()
	for u, o := range outs {
		if !o.failed {
			delete(fs, u)
			continue
		}
		f := o.f
		if prev, ok := fs[u]; ok {
			f.First, f.Attempts = prev.First, prev.Attempts
			f.Full = f.Full || prev.Full
		}
		if f.First.IsZero() {
			f.First = now
		}
		f.Attempts++
		f.Last = now
		f.RetryAt = now.Add(backoff(f.Attempts, o.retriable, opts.MaxRetryBackoff))
		if len(f.URL) > maxURL {
			f.URL = f.URL[:maxURL]
		}
		fs[u] = f
	}
	c.setFailures(fs, opts.MaxFailures, now, opts.Window, opts.Retention)
}
