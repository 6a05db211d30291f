// Package recorder applies githubevent Changes to the API server: it upserts
// the PullRequest or Branch object a delivery is about and records one
// core/v1 Event per accepted delivery, exactly once under the Broker's
// at-least-once delivery and GitHub's redeliveries (for GitHub's redelivery
// window; the rule and its limits are Record's and the README's "Order,
// redelivery and exactly-once"). It also decides the HTTP answer for every
// delivery (see Handle).
package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
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
	// RecentDeliveries bounds the entries of the recent-deliveries
	// annotation whatever their age; 0 means DefaultRecentDeliveries.
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

// Recorder records deliveries. It is safe for concurrent use.
type Recorder struct {
	opts Options
	log  *slog.Logger
	// owners is the lower-cased allow-list; nil allows every owner.
	owners map[string]bool
	// objects and legacy are what it knows without asking (objects.go).
	objects recentObjects
	legacy  legacyNames
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

// Handle is the CloudEvents handler. It answers nil (2xx) for recorded,
// duplicate and ignored deliveries; a cehttp Result with 400 for events that
// can never be recorded (not GitHub's, malformed, payload not matching its
// type, no repository), 413 for data over the limit, 422 when the API
// server refuses the object as invalid; and 500/503 when the API server
// fails, so that the Broker retries. Every non-2xx is logged with the
// delivery id and the reason.
func (r *Recorder) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	log := r.log.With("delivery", e.ID(), "type", e.Type())
	if n := int64(len(e.Data())); n > r.opts.MaxBodyBytes {
		return nil, r.refuse(log, http.StatusRequestEntityTooLarge,
			fmt.Errorf("event data is %d bytes, over the %d byte limit", n, r.opts.MaxBodyBytes))
	}
	now := r.opts.Now()
	ch, err := githubevent.Parse(e, now)
	if err == nil {
		err = githubevent.Validate(ch, now, r.opts.MaxClockSkew)
	}
	if err != nil {
		return nil, r.refuse(log, http.StatusBadRequest, err)
	}
	if ch.Ignored == "" && !r.ownerAllowed(ch.Repository) {
		ch.Ignored = "owner is not in " + EnvAllowedOwners
		log.Info("delivery ignored", "why", ch.Ignored, "repository", ch.Repository)
		return nil, nil
	}
	if ch.Ignored != "" {
		log.Debug("delivery ignored", "why", ch.Ignored, "repository", ch.Repository)
		return nil, nil
	}
	outcome, err := r.record(ctx, ch, PayloadDigest(e.Data()))
	if err != nil {
		return nil, r.refuseInternal(log, StatusCode(err), err)
	}
	if outcome == Replayed {
		log.Warn("delivery replayed: its payload was recorded recently under another delivery id; nothing written",
			"repository", ch.Repository, "kind", ch.Kind(), "action", ch.Action())
		return nil, nil
	}
	log.Info("delivery "+string(outcome), "outcome", outcome, "repository", ch.Repository,
		"kind", ch.Kind(), "action", ch.Action(), "reason", ch.Reason(),
		"occurredAt", ch.OccurredAt, "timeSource", ch.TimeSource)
	return nil, nil
}

// refuse answers code for a delivery at fault itself; the answer names
// what is wrong with it (nothing in it is internal).
func (r *Recorder) refuse(log *slog.Logger, code int, err error) error {
	r.logRefusal(log, code, err)
	return cehttp.NewResult(code, "%w", err)
}

// refuseInternal answers code for a failure on our side (the API server,
// etcd, a bug). The reason is logged, never sent back: it names the API
// server, object names and etcd's messages, none of which the sender of a
// webhook may learn.
func (r *Recorder) refuseInternal(log *slog.Logger, code int, err error) error {
	r.logRefusal(log, code, err)
	return cehttp.NewResult(code, "%s", PublicReason(code))
}

func (r *Recorder) logRefusal(log *slog.Logger, code int, err error) {
	level := slog.LevelWarn
	if code >= 500 {
		level = slog.LevelError
	}
	log.Log(context.Background(), level, "delivery refused", "code", code, "reason", err.Error())
}

// PublicReason is the whole answer text for a delivery refused because of
// something on the recorder's side.
func PublicReason(code int) string {
	switch code {
	case http.StatusRequestEntityTooLarge:
		return "the recorded object would be too large to store; not retryable (details in the recorder's log under this delivery id)"
	case http.StatusUnprocessableEntity:
		return "the recorded object was refused as invalid; not retryable (details in the recorder's log under this delivery id)"
	}
	return http.StatusText(code) + " (details in the recorder's log under this delivery id)"
}
