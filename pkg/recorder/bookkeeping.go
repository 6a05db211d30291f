package recorder

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
)

// The recorder's bookkeeping on every object it writes, whatever its kind
// (the status's stablev1.Bookkeeping): which deliveries it applied (and
// when), the digests of their payloads, and the small time rules the
// kinds share. It is written in the same update as the spec.

// PayloadDigest is what an object's status.recentDeliveries entry keeps of
// its delivery's payload, for the replay check: 72 bits of its SHA-256 in
// URL-safe base64 (12 characters). A payload byte-for-byte identical to
// one of the object's recent ones under another delivery id, that would
// change nothing but counts, is a replay (the signature does not cover
// X-GitHub-Delivery; see docs/deploy.md, "Replay and forgery").
func PayloadDigest(data []byte) string { return digest72(data) }

// replayed reports whether digest is among the object's recent payloads.
func replayed(bk *stablev1.Bookkeeping, digest string) bool {
	if digest == "" {
		return false
	}
	for _, e := range recentDeliveries(bk) {
		if e.digest == digest {
			return true
		}
	}
	return false
}

// The recorder remembers, on each object, which deliveries it applied and
// when (status.recentDeliveries), for as long as GitHub may redeliver
// them. That memory, not the delivery's Event, is what makes a redelivery
// of any age a no-op: Events expire after the API server's --event-ttl
// (an hour by default), GitHub redelivers for days.
//
// Each entry is "<key>@<unix seconds, base 36>", newest first, where key is
// deliveryKey(id): 12 characters instead of a 36-character GUID, so that a
// busy branch's three days fit in one field. The newest
// DefaultRecentPayloads entries of deliveries (not reconcile passes) also
// carry their payload's digest, "<key>@<time>@<digest>", for the replay
// check: one field, where there were two. An entry with a digest outlives
// the window while it is among those, so that a payload is remembered as
// long as it used to be (its own count, not the window). Bare delivery ids without a time are
// matched as such and kept among the newest DefaultRecentPayloads entries
// only.
const (
	// DefaultDeliveryWindow is how long an applied delivery is remembered:
	// GitHub.com lets deliveries be redelivered for 3 days
	// (https://docs.github.com/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks;
	// GitHub Enterprise Server for 7), plus an hour for clock skew between
	// GitHub, the Broker's retries and the recorder.
	DefaultDeliveryWindow = 73 * time.Hour
	// DefaultRecentDeliveries bounds the entries kept whatever their age:
	// about 20 bytes each, 6,000 are ~120 KB, well inside the ~1.5 MiB an
	// object may have on the API server — 83 deliveries an hour to one
	// object, sustained for three days. Beyond that the oldest are
	// forgotten early (see README, "Exactly once").
	DefaultRecentDeliveries = 6000
	// DefaultRecentPayloads bounds the entries that carry a payload digest
	// (the replay check looks at recent payloads only) and the bare-id
	// entries.
	DefaultRecentPayloads = 20
	// DefaultEventTTL is the API server's default --event-ttl.
	DefaultEventTTL = time.Hour
)

// deliveryKey is what the object keeps of a delivery id: 72 bits of its
// SHA-256 in URL-safe base64. Two ids of one object collide with
// probability about n/2^72 for n entries, nothing in practice.
func deliveryKey(id string) string { return digest72([]byte(id)) }

// digest72 is 72 bits of data's SHA-256 in URL-safe base64 (12
// characters): what the status.recentDeliveries entries keep of delivery ids and
// payloads alike.
func digest72(data []byte) string {
	sum := sha256.Sum256(data)
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// remembered is one entry: at is zero for a bare-id entry; digest is its
// payload's, or "".
type remembered struct {
	key    string // deliveryKey(id), or the bare id
	at     time.Time
	digest string
}

func (e remembered) String() string {
	if e.at.IsZero() {
		return e.key
	}
	s := e.key + "@" + strconv.FormatInt(e.at.Unix(), 36)
	if e.digest != "" {
		s += "@" + e.digest
	}
	return s
}

func recentDeliveries(bk *stablev1.Bookkeeping) []remembered {
	v := bk.RecentDeliveries
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	out := make([]remembered, 0, len(parts))
	for _, p := range parts {
		key, rest, ok := strings.Cut(p, "@")
		e := remembered{key: key}
		if ok {
			at, digest, _ := strings.Cut(rest, "@")
			if sec, err := strconv.ParseInt(at, 36, 64); err == nil {
				e.at, e.digest = time.Unix(sec, 0), digest
			}
		}
		out = append(out, e)
	}
	return out
}

// appliedAt reports whether deliveryID is among the object's remembered
// deliveries, and when it was applied (zero for a legacy entry, whose time
// is unknown).
func appliedAt(bk *stablev1.Bookkeeping, deliveryID string) (time.Time, bool) {
	key := deliveryKey(deliveryID)
	for _, e := range recentDeliveries(bk) {
		if (!e.at.IsZero() && e.key == key) || (e.at.IsZero() && e.key == deliveryID) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// Remembers reports whether an object's status.recentDeliveries holds
// deliveryID, that is whether the recorder applied it within the delivery
// window (the field keeps digests, not the ids themselves).
func Remembers(bk *stablev1.Bookkeeping, deliveryID string) bool { return seen(bk, deliveryID) }

// seen reports whether deliveryID is among the object's remembered deliveries.
func seen(bk *stablev1.Bookkeeping, deliveryID string) bool {
	_, ok := appliedAt(bk, deliveryID)
	return ok
}

// remember records deliveryID as applied at now, with its payload's digest
// (PayloadDigest; "" for none), newest first: it forgets entries older
// than window, unless they are among the newest DefaultRecentPayloads
// with a digest, keeps the digests of those only, and keeps at most max
// entries.
func remember(bk *stablev1.Bookkeeping, deliveryID, digest string, now time.Time, window time.Duration, max int) {
	entry := remembered{key: deliveryKey(deliveryID), at: now, digest: digest}
	kept := []string{entry.String()}
	digests := 0
	if digest != "" {
		digests++
	}
	for i, e := range recentDeliveries(bk) {
		if len(kept) >= max {
			break
		}
		if e.digest != "" {
			if digests < DefaultRecentPayloads {
				digests++
			} else {
				e.digest = ""
			}
		}
		switch {
		case e.at.IsZero() && i+1 >= DefaultRecentPayloads:
			continue // a bare id: kept as long as the count bound keeps it
		case !e.at.IsZero() && e.digest == "" && now.Sub(e.at) > window:
			continue
		}
		kept = append(kept, e.String())
	}
	bk.RecentDeliveries = strings.Join(kept, ",")
}

// repositorySelector selects repository's objects by their selectable
// field spec.repository (the CRDs' selectableFields).
func repositorySelector(repository string) fields.Selector {
	return fields.OneTermEqualSelector("spec.repository", repository)
}

// repositoryIDSelector selects the objects of the repository with GitHub
// id id by their selectable field spec.repositoryID: also those still
// under a former name of the repository.
func repositoryIDSelector(id int64) fields.Selector {
	return fields.OneTermEqualSelector("spec.repositoryID", strconv.FormatInt(id, 10))
}

// markApplied says in the status which delivery moved the object last.
func markApplied(s recordedStatus, ch githubevent.Change) {
	s.bookkeeping.LastDeliveryID = ch.DeliveryID
}

// markReconciled says in the status that a reconcile pass at now changed
// the object.
func markReconciled(bk *stablev1.Bookkeeping, now metav1.Time) {
	bk.ReconciledAt = &now
}

// newer reports whether a delivery at t may move an object last moved at
// updated. Equal times apply (arrival order breaks ties): GitHub's
// timestamps have whole-second resolution, and an edit and a close within
// one second are both real.
func newer(t time.Time, updated *metav1.Time) bool {
	return updated == nil || !t.Before(updated.Time)
}

func timeOrNil(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

// earliest sets *at to t when t is before it (or it is unset); reports
// whether it moved.
func earliest(at **metav1.Time, t time.Time) bool {
	t = t.UTC().Truncate(time.Second)
	if *at != nil && !t.Before((*at).Time) {
		return false
	}
	*at = timeOrNil(t)
	return true
}
