// Package recorder applies githubevent Changes to the API server: it upserts
// the PullRequest, Branch or GitHubDeployment object a delivery is about (a
// review lands on its PullRequest) and records one core/v1 Event per
// accepted delivery, exactly once under the Broker's at-least-once delivery
// and GitHub's redeliveries (for GitHub's redelivery window; the rule and
// its limits are Record's and the README's "Order, redelivery and
// exactly-once"). It takes clients and a logger; answering
// over HTTP and reading the environment are the function's (pkg/function).
package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
	"github.com/liatrio/gitpulse/pkg/githubevent"
)

// Options configure a Recorder.
type Options struct {
	Kube     kubernetes.Interface
	Gitpulse versioned.Interface
	// Namespace receives every object and Event.
	Namespace string
	// Instance is the Events' reportingInstance and source.host; default
	// the host name.
	Instance string
	// MaxBodyBytes refuses larger event data with 413; 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// RecentDeliveries bounds the entries of an object's
	// status.recentDeliveries whatever their age; 0 means
	// DefaultRecentDeliveries.
	RecentDeliveries int
	// DeliveryWindow is how long an object remembers a delivery it
	// applied, so that a redelivery within it is a no-op: at least the
	// sender's redelivery window. 0 means DefaultDeliveryWindow (GitHub.com's
	// 3 days and an hour); GitHub Enterprise Server keeps 7 days.
	DeliveryWindow time.Duration
	// EventTTL is the API server's --event-ttl: how long a written Event
	// can still answer AlreadyExists. 0 means DefaultEventTTL (1h, the API
	// server's default); never set it longer than the API server's.
	EventTTL time.Duration
	// RecentObjects bounds how many objects the recorder remembers from
	// its own writes, so that the next delivery about one needs no read;
	// 0 means DefaultRecentObjects.
	RecentObjects int
	// Backoff paces retries of conflicting writes; the zero value means
	// DefaultBackoff().
	Backoff wait.Backoff
	Logger  *slog.Logger
	// MaxClockSkew is how far a delivery's ordering time may be ahead of
	// Now; beyond it the delivery is refused with 400. 0 means
	// githubevent.DefaultMaxClockSkew.
	MaxClockSkew time.Duration
	// AllowedOwners, when not empty, are the only repository owners
	// recorded (compared case-insensitively, as GitHub does); deliveries
	// for other owners are acknowledged and ignored, so a forged or
	// misrouted source can neither write objects nor take label slots.
	AllowedOwners []string
	// Now is the clock (arrival time, Event timestamps); default time.Now.
	Now func() time.Time
}

// DefaultMaxBodyBytes is GitHub's cap on webhook payloads (25 MB).
const DefaultMaxBodyBytes = 25 << 20

// DefaultBackoff retries conflicting writes for a few seconds: many
// concurrent deliveries about one busy branch all converge on one object.
// Exhausting it answers 503, and the Broker retries later.
func DefaultBackoff() wait.Backoff {
	return wait.Backoff{Steps: 12, Duration: 10 * time.Millisecond, Factor: 1.6, Jitter: 0.5, Cap: time.Second}
}

// DefaultMemoryLimit is the Go runtime's soft memory limit the recorder
// function sets when neither GOMEMLIMIT nor a container limit says otherwise
// (pkg/memlimit). A replica's live heap is a few MiB plus the deliveries in
// flight: each costs about three times its body while it is decoded (the
// body, the decoded payload, the event data), so ten concurrent 25 MiB
// bodies — Knative's containerConcurrency that func.yaml advises — need
// about 750 MiB at worst, and typical deliveries (tens of KiB) almost
// nothing. Near the limit the collector runs more often and returns freed
// memory to the system instead of letting the heap double. It is soft: a
// larger live heap is not an error, only more GC work.
const DefaultMemoryLimit = 256 << 20

// Recorder records deliveries. It is safe for concurrent use.
type Recorder struct {
	opts Options
	log  *slog.Logger
	// owners is the lower-cased allow-list; nil allows every owner.
	owners map[string]bool
	// objects and renamed are what it knows without asking (objects.go).
	objects recentObjects
	renamed renamedRepositories
}

// New checks opts and fills in defaults.
func New(opts Options) (*Recorder, error) {
	if opts.Kube == nil || opts.Gitpulse == nil {
		return nil, errors.New("recorder: Kube and Gitpulse clients are required")
	}
	if opts.Namespace == "" {
		return nil, errors.New("recorder: Namespace is required")
	}
	if opts.Instance == "" {
		opts.Instance, _ = os.Hostname()
		if opts.Instance == "" {
			opts.Instance = "gitpulse-recorder"
		}
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.RecentDeliveries <= 0 {
		opts.RecentDeliveries = DefaultRecentDeliveries
	}
	if opts.DeliveryWindow <= 0 {
		opts.DeliveryWindow = DefaultDeliveryWindow
	}
	if opts.EventTTL <= 0 {
		opts.EventTTL = DefaultEventTTL
	}
	if opts.Backoff.Steps == 0 {
		opts.Backoff = DefaultBackoff()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxClockSkew <= 0 {
		opts.MaxClockSkew = githubevent.DefaultMaxClockSkew
	}
	r := &Recorder{opts: opts, log: opts.Logger}
	if opts.RecentObjects <= 0 {
		opts.RecentObjects = DefaultRecentObjects
	}
	r.opts.RecentObjects = opts.RecentObjects
	r.objects = newRecentObjects(opts.RecentObjects)
	for _, o := range opts.AllowedOwners {
		if o = strings.TrimSpace(o); o != "" {
			if r.owners == nil {
				r.owners = map[string]bool{}
			}
			r.owners[strings.ToLower(o)] = true
		}
	}
	return r, nil
}

// Namespace is where the recorder writes (and a reconcile pass reads).
func (r *Recorder) Namespace() string { return r.opts.Namespace }

// ownerAllowed reports whether repository's owner may be recorded.
func (r *Recorder) ownerAllowed(repository string) bool {
	if r.owners == nil {
		return true
	}
	owner, _, _ := strings.Cut(repository, "/")
	return r.owners[strings.ToLower(owner)]
}

// Outcome is what recording one delivery did.
type Outcome string

const (
	// Recorded: the object moved and the Event was written.
	Recorded Outcome = "recorded"
	// Stale: the delivery is older than the object's state; the Event was
	// written (and a push counted) but the state did not move backwards.
	Stale Outcome = "stale"
	// Completed: a retry of a delivery whose object write had succeeded;
	// only the missing status or Event was written.
	Completed Outcome = "completed"
	// Duplicate: the delivery had already been recorded; nothing changed.
	Duplicate Outcome = "duplicate"
	// Ignored: a delivery we acknowledge without effect (tag, ping, ...).
	Ignored Outcome = "ignored"
	// Replayed: the payload is byte-for-byte one the object recently
	// received under another delivery id; acknowledged, nothing written.
	Replayed Outcome = "replayed"
)

// tooLargeError: the event's data is over MaxBodyBytes. It says TooLarge,
// so the function answers 413 and the Broker does not retry.
type tooLargeError struct{ size, limit int64 }

func (e tooLargeError) Error() string {
	return fmt.Sprintf("event data is %d bytes, over the %d byte limit", e.size, e.limit)
}

// TooLarge says the delivery is at fault and can never succeed.
func (tooLargeError) TooLarge() bool { return true }

// Receive records one GitHub CloudEvent and says what it did. Deliveries
// that are recorded, duplicates, replays and deliveries it ignores return a
// nil error. Otherwise the error says whose fault it is, for the function to
// answer (pkg/function.StatusCode): a delivery that can never be recorded
// (not GitHub's, malformed, payload not matching its type, no repository)
// says Invalid, data over MaxBodyBytes says TooLarge; the API server's own
// errors are returned as they are.
func (r *Recorder) Receive(ctx context.Context, e event.Event) (Outcome, error) {
	// The delivery's attributes are added where a line is logged: a logger
	// With them formats them at once, logged or not.
	log := r.log
	if n := int64(len(e.Data())); n > r.opts.MaxBodyBytes {
		return "", tooLargeError{size: n, limit: r.opts.MaxBodyBytes}
	}
	now := r.opts.Now()
	ch, err := githubevent.Parse(e, now)
	if err == nil {
		err = githubevent.Validate(ch, now, r.opts.MaxClockSkew)
	}
	if err != nil {
		return "", err
	}
	if ch.Ignored == "" && !r.ownerAllowed(ch.Repository) {
		ch.Ignored = "owner is not among the allowed owners"
		log.Info("delivery ignored", "delivery", e.ID(), "type", e.Type(), "why", ch.Ignored, "repository", ch.Repository)
		return Ignored, nil
	}
	if ch.Ignored != "" {
		log.Debug("delivery ignored", "delivery", e.ID(), "type", e.Type(), "why", ch.Ignored, "repository", ch.Repository)
		return Ignored, nil
	}
	outcome, err := r.record(ctx, ch, PayloadDigest(e.Data()))
	if err != nil {
		return "", err
	}
	if outcome == Replayed {
		log.Warn("delivery replayed: its payload was recorded recently under another delivery id; nothing written",
			"delivery", e.ID(), "type", e.Type(), "repository", ch.Repository, "kind", ch.Kind(), "action", ch.Action())
		return outcome, nil
	}
	if log.Enabled(ctx, slog.LevelInfo) {
		log.Info("delivery "+string(outcome), "delivery", e.ID(), "type", e.Type(), "outcome", outcome, "repository", ch.Repository,
			"kind", ch.Kind(), "action", ch.Action(), "reason", ch.Reason(),
			"occurredAt", ch.OccurredAt, "timeSource", ch.TimeSource)
	}
	return outcome, nil
}
