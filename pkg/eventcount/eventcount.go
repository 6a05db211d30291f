// Package eventcount counts Kubernetes Events exactly once — across re-lists,
// watch reconnects and restarts of the counting process — by persisting a
// checkpoint in one ConfigMap that holds the counter values and a
// resourceVersion watermark, and no per-Event state.
//
// # The mechanism, and why
//
// Events expire (the API server's --event-ttl, one hour by default) and the
// metrics function may restart at any time, so counters cannot be recomputed
// from the Events that happen to be alive. The checkpoint holds, in a single
// object, the counter values and a watermark W: the counts are exactly those
// of the Events whose resourceVersion is at most W. Both are written in the
// same update, guarded by the ConfigMap's resourceVersion, so there is no
// moment at which a count is persisted without the knowledge that makes it
// idempotent, or the other way round.
//
// Resource versions of one resource are comparable integers (KEP-5504;
// k8s.io/apimachinery/pkg/util/resourceversion.CompareResourceVersion since
// Kubernetes 1.35): an object's resourceVersion is the revision of its last
// write, a watch delivers changes in increasing resourceVersion order, and a
// list is a snapshot at its own resourceVersion. The Counter keeps a frontier
// F: every Event whose resourceVersion is at most F has been observed by this
// process or counted by the writer of the checkpoint.
//
//   - An Event is counted when its resourceVersion is above F. Re-lists,
//     watch reconnects and informer replays deliver Events at or below F and
//     change nothing.
//   - A watch ADDED event moves F to its resourceVersion (the watch is in
//     order, so every Event created before it was delivered before it). A
//     list moves F to the list's resourceVersion only once the whole list has
//     been observed (it arrives in key order, not revision order), in one
//     step under the Counter's lock, so no flush sees half a list.
//   - A flush re-reads the checkpoint and adds the pending increments of the
//     Events above its W, then writes W = max(W, F) with a resourceVersion
//     precondition. Two overlapping instances (a rollout of a max-scale-1
//     Service can briefly run two) therefore merge rather than double count:
//     an Event at or below the other writer's W is already in its counts.
//   - A crash loses only the pending increments; their Events are still alive
//     (they live an hour, flushes happen every few seconds) and above the
//     persisted W, so the next process lists and counts them. Events created
//     while the process was down are counted the same way.
//
// So the checkpoint's size does not depend on the number of Events: it is the
// counter values alone, whatever the delivery rate.
//
// The watermark assumes that nobody modifies a recorder Event (the recorder
// never does; a modification seen through the watch is never counted, one
// seen only through a re-list would be) and that the Events' storage is not
// rolled back (an etcd restore from an old backup makes resourceVersions go
// back; delete the checkpoint ConfigMap then, as after any such restore).
//
// Rejected: a set of counted Event UIDs in the checkpoint (versions 1 and 2
// of this package): it grows with the Events alive and one ConfigMap holds
// about 60,000 of them, an hour at 17 deliveries/s. Counting from
// PullRequest/Branch status cannot tell how many deliveries an object
// absorbed once they are squashed into one update.
//
// # The format
//
// The ConfigMap's data key checkpoint.json holds JSON version 3: the counter
// values as a sorted list and the watermark as a resourceVersion string.
//
// Versions 1 and 2 kept every counted UID instead of a watermark (version 1
// as text in the JSON's "counted" map, version 2 as raw 16-byte UUIDs in the
// binaryData key counted-uids.bin, grouped by persist time: an 8-byte
// big-endian Unix time, a 4-byte big-endian count and that many UIDs). Both
// still load: their UIDs stay counted (an Event among them is not counted
// again, whatever its resourceVersion) and are carried over in the same
// places of the version 3 checkpoint until LegacyRetention after they were
// persisted, by which time their Events have expired; the first flush after
// the first complete list sets the watermark. A process of versions 1-2
// refuses a version 3 checkpoint (it does not know the watermark), so a
// downgrade needs the ConfigMap deleted.
package eventcount

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"
	"unique"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ConfigMapClient is what a Counter needs of the checkpoint's namespace's
// ConfigMaps: client-go's typed client (k8s.io/client-go/kubernetes/typed/core/v1)
// has these methods, as has the metrics function's own (pkg/metrics
// NewClients), which spares its process every built-in API group's types.
type ConfigMapClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.ConfigMap, error)
	Create(ctx context.Context, cm *corev1.ConfigMap, opts metav1.CreateOptions) (*corev1.ConfigMap, error)
	Update(ctx context.Context, cm *corev1.ConfigMap, opts metav1.UpdateOptions) (*corev1.ConfigMap, error)
}

// DefaultLegacyRetention is how long UIDs carried over from a version 1-2
// checkpoint are kept after they were persisted: twice the API server's
// default --event-ttl.
const DefaultLegacyRetention = 2 * time.Hour

// ErrTooLarge is returned by Flush when the checkpoint would exceed what one
// ConfigMap can hold (only counter values: tens of thousands of label sets).
var ErrTooLarge = errors.New("eventcount: checkpoint exceeds the ConfigMap size limit")

// Key is the label set one Event increments.
type Key struct {
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Repository string `json:"repository"`
	Action     string `json:"action"`
	// Environment is a deployment Event's environment, "" for every other
	// kind (left out of the checkpoint then, so older checkpoints read the
	// same).
	Environment string `json:"environment,omitempty"`
}

// Event is what the Counter needs of one Event.
type Event struct {
	// ResourceVersion is the Event's metadata.resourceVersion, parsed with
	// ParseResourceVersion.
	ResourceVersion uint64
	// UID matters only while UIDs from a version 1-2 checkpoint are retained.
	UID types.UID
	Key Key
}

// ParseResourceVersion reads a resourceVersion as the positive integer
// without leading zeros that the API server serves (the format
// resourceversion.CompareResourceVersion accepts), or reports false.
func ParseResourceVersion(rv string) (uint64, bool) {
	if rv == "" || rv[0] == '0' {
		return 0, false
	}
	for i := range len(rv) {
		if rv[i] < '0' || rv[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// Options configures a Counter.
type Options struct {
	// ConfigMaps is the client for the namespace the checkpoint lives in.
	ConfigMaps ConfigMapClient
	// Name is the checkpoint ConfigMap's name.
	Name string
	// Admit, when set, maps the key of an Event about to be counted (and
	// only then), for example to cap label values. It is called with the
	// Counter's lock held and must not call the Counter.
	Admit func(Key) Key
	// LegacyRetention is how long UIDs from a version 1-2 checkpoint are
	// kept after they were persisted (default DefaultLegacyRetention).
	LegacyRetention time.Duration
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// pendingEvent is a counted Event whose increment is not yet persisted.
// It is kept small (32 bytes): a fresh start counts every Event alive
// before its first flush.
type pendingEvent struct {
	rv  uint64
	key unique.Handle[Key]
	uid types.UID // only while legacy UIDs are retained
}

// Counter counts Events into Keys, exactly once per Event.
type Counter struct {
	opts Options

	flushMu sync.Mutex // one flush at a time

	mu            sync.Mutex
	loaded        bool
	base          checkpoint // as last read from or written to the API server
	rv            string     // the ConfigMap's resourceVersion
	exists        bool       // whether the ConfigMap exists
	frontier      uint64     // every Event at or below it is observed or in base
	pending       []pendingEvent
	pendingCounts map[unique.Handle[Key]]uint64
	// dropped are repositories whose counts are to be removed from the
	// checkpoint by the next Flush, each with the frontier when it was
	// dropped: its Events up to there are not counted (see DropRepository).
	dropped map[string]uint64
}

// New returns a Counter; call Load before observing.
func New(opts Options) *Counter {
	if opts.LegacyRetention <= 0 {
		opts.LegacyRetention = DefaultLegacyRetention
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Counter{
		opts:          opts,
		base:          emptyCheckpoint(),
		pendingCounts: map[unique.Handle[Key]]uint64{},
		dropped:       map[string]uint64{},
	}
}

// DropRepository forgets every count under repository (a label value), at
// once in Counts and in the checkpoint at the next Flush, so that a freed
// repository label neither keeps its series nor has them resurrected by a
// re-read checkpoint. Events already counted stay counted (they are at or
// below the watermark, or among the retained legacy UIDs): none is counted
// again under any label, and one observed but not yet flushed adds nothing.
// An Event observed after the drop counts afresh.
func (c *Counter) DropRepository(repository string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropped[repository] = c.frontier
	c.base = c.base.without(c.dropped)
	for k := range c.pendingCounts {
		if k.Value().Repository == repository {
			delete(c.pendingCounts, k)
		}
	}
}

// notDropped is pending without the Events of dropped repositories observed
// before their drop.
func notDropped(pending []pendingEvent, dropped map[string]uint64) []pendingEvent {
	if len(dropped) == 0 {
		return pending
	}
	out := make([]pendingEvent, 0, len(pending))
	for _, p := range pending {
		if at, ok := dropped[p.key.Value().Repository]; ok && p.rv <= at {
			continue
		}
		out = append(out, p)
	}
	return out
}

// Load reads the checkpoint. A missing ConfigMap is an empty checkpoint; a
// corrupt one is an error, because starting from zero would silently reset
// every counter.
func (c *Counter) Load(ctx context.Context) error {
	cp, rv, exists, err := c.read(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.rv, c.exists, c.loaded = cp, rv, exists, true
	c.frontier = max(c.frontier, cp.Watermark)
	c.dropCountedLocked(0)
	return nil
}

// Loaded reports whether Load succeeded.
func (c *Counter) Loaded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loaded
}

// Observe is a watch's ADDED event: it counts ev unless it was counted
// before, then records that every Event up to ev's resourceVersion has been
// observed. It reports whether this call counted it.
func (c *Counter) Observe(ev Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	counted := c.countLocked(ev)
	c.frontier = max(c.frontier, ev.ResourceVersion)
	return counted
}

// ObserveList is a complete list (or the initial events of a watch-list) at
// resourceVersion listRV: it counts every Event not counted before, then
// records that every Event up to listRV has been observed, in one step (no
// flush sees part of a list). It returns how many it counted.
func (c *Counter) ObserveList(evs iter.Seq[Event], listRV uint64) int {
	return c.ObserveListFunc(evs, listRV, nil)
}

// ObserveListFunc is ObserveList that also calls counted, when not nil, for
// each Event it counts, under the Counter's lock (so counted must be quick
// and must not call the Counter), before evs resumes: an iterator can pair
// the call with the item it just yielded (the metrics function observes
// each counted Event's lag so).
func (c *Counter) ObserveListFunc(evs iter.Seq[Event], listRV uint64, counted func(Event)) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for ev := range evs {
		if c.countLocked(ev) {
			n++
			if counted != nil {
				counted(ev)
			}
		}
		// Every item of a list is at or below the list's resourceVersion,
		// so this is safe when listRV is unknown (0).
		listRV = max(listRV, ev.ResourceVersion)
	}
	c.frontier = max(c.frontier, listRV)
	return n
}

// Advance records that every Event up to rv has been observed, for watch
// events that count nothing (MODIFIED, DELETED): the recorder never
// modifies an Event, so a modification is not a delivery.
func (c *Counter) Advance(rv uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frontier = max(c.frontier, rv)
}

// Fresh reports whether an Event at rv would be counted (it is above the
// frontier), for Events that cannot be counted but are reported once.
func (c *Counter) Fresh(rv uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return rv > c.frontier
}

func (c *Counter) countLocked(ev Event) bool {
	if ev.ResourceVersion <= c.frontier {
		return false
	}
	if _, done := c.base.Counted[ev.UID]; done && ev.UID != "" {
		return false
	}
	if c.opts.Admit != nil {
		ev.Key = c.opts.Admit(ev.Key)
	}
	p := pendingEvent{rv: ev.ResourceVersion, key: unique.Make(ev.Key)}
	if len(c.base.Counted) > 0 {
		p.uid = ev.UID
	}
	c.pending = append(c.pending, p)
	c.pendingCounts[p.key]++
	return true
}

// HasLegacyUIDs reports whether UIDs from a version 1-2 checkpoint are still
// retained (Events then need their UID to be counted).
func (c *Counter) HasLegacyUIDs() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.base.Counted) > 0
}

// Frontier is the resourceVersion up to which every Event is counted (0
// before the first list).
func (c *Counter) Frontier() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frontier
}

// Counts returns the counter values: the checkpoint plus what is pending.
func (c *Counter) Counts() map[Key]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[Key]uint64, len(c.base.Counts)+len(c.pendingCounts))
	for k, v := range c.base.Counts {
		out[k] = v
	}
	for k, v := range c.pendingCounts {
		out[k.Value()] += v
	}
	return out
}

// Pending is the number of counted Events not yet in the checkpoint.
func (c *Counter) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Flush merges the pending counts into the checkpoint and writes it. On a
// conflict (another writer) it re-reads and merges again, so an Event counted
// by two instances is counted once.
func (c *Counter) Flush(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()

	c.mu.Lock()
	if !c.loaded {
		c.mu.Unlock()
		return errors.New("eventcount: flush before load")
	}
	pending := slices.Clone(c.pending)
	frontier := c.frontier
	cp, rv, exists := c.base, c.rv, c.exists
	dropped := maps.Clone(c.dropped)
	c.mu.Unlock()

	cutoff := c.opts.Now().Add(-c.opts.LegacyRetention).Unix()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			var err error
			if cp, rv, exists, err = c.read(ctx); err != nil {
				return err
			}
		}
		next := cp.without(dropped).merge(notDropped(pending, dropped), frontier, c.opts.Now().Unix())
		next.pruneLegacy(cutoff)
		if exists && cp.Version == wireVersion && next.equal(cp) {
			// Nothing changed: skip the write.
			c.commit(next, rv, len(pending))
			return nil
		}
		newRV, err := c.write(ctx, next, rv, exists)
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			c.opts.Logger.InfoContext(ctx, "checkpoint changed underneath, merging again",
				"configmap", c.opts.Name, "attempt", attempt+1)
			if attempt < 10 {
				continue
			}
		}
		if err != nil {
			return err
		}
		next.Version = wireVersion
		c.commit(next, newRV, len(pending))
		c.mu.Lock()
		for r, at := range dropped {
			if c.dropped[r] == at {
				delete(c.dropped, r)
			}
		}
		// Dropped while this flush ran: keep them out of the new base.
		c.base = c.base.without(c.dropped)
		c.mu.Unlock()
		return nil
	}
}

// commit installs a written checkpoint, drops the n pending Events it
// merged and any later one it holds (counted by another instance meanwhile),
// and moves the frontier up to its watermark.
func (c *Counter) commit(cp checkpoint, rv string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.rv, c.exists = cp, rv, true
	c.frontier = max(c.frontier, cp.Watermark)
	c.dropCountedLocked(n)
}

// dropCountedLocked drops the first n pending Events and every other one the
// checkpoint already includes, and recomputes the pending counts.
func (c *Counter) dropCountedLocked(n int) {
	kept := c.pending[:0]
	for _, p := range c.pending[n:] {
		if p.rv <= c.base.Watermark {
			continue
		}
		if _, done := c.base.Counted[p.uid]; done && p.uid != "" {
			continue
		}
		kept = append(kept, p)
	}
	clear(c.pending[len(kept):])
	c.pending = kept
	if len(c.pending) == 0 && cap(c.pending) > 4096 {
		c.pending = nil // return what a large initial list needed
	}
	clear(c.pendingCounts)
	for _, p := range notDropped(c.pending, c.dropped) {
		c.pendingCounts[p.key]++
	}
}

func (c *Counter) read(ctx context.Context) (cp checkpoint, rv string, exists bool, err error) {
	cm, err := c.opts.ConfigMaps.Get(ctx, c.opts.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return emptyCheckpoint(), "", false, nil
	}
	if err != nil {
		return checkpoint{}, "", false, fmt.Errorf("reading checkpoint %s: %w", c.opts.Name, err)
	}
	if cp, err = decode([]byte(cm.Data[DataKey]), cm.BinaryData[UIDsKey]); err != nil {
		return checkpoint{}, "", false, fmt.Errorf("checkpoint %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return cp, cm.ResourceVersion, true, nil
}

func (c *Counter) write(ctx context.Context, cp checkpoint, rv string, exists bool) (string, error) {
	data, uids, err := cp.encode()
	if err != nil {
		return "", err
	}
	if size := len(data) + len(uids); size > maxCheckpointBytes {
		return "", fmt.Errorf("%w: %d bytes (limit %d) for %d counters and %d retained UIDs", ErrTooLarge, size, maxCheckpointBytes, len(cp.Counts), len(cp.Counted))
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:            c.opts.Name,
			ResourceVersion: rv,
			Labels:          map[string]string{"app.kubernetes.io/name": "gitpulse", "app.kubernetes.io/component": "metrics"},
		},
		Data: map[string]string{DataKey: string(data)},
	}
	if len(uids) > 0 {
		cm.BinaryData = map[string][]byte{UIDsKey: uids}
	}
	var out *corev1.ConfigMap
	if !exists {
		out, err = c.opts.ConfigMaps.Create(ctx, cm, metav1.CreateOptions{})
	} else {
		// Update with the resourceVersion read is the optimistic lock: a
		// concurrent writer makes this a Conflict, never a lost update.
		out, err = c.opts.ConfigMaps.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("writing checkpoint %s: %w", c.opts.Name, err)
	}
	return out.ResourceVersion, nil
}
