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
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
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
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// DataKey is the ConfigMap data key holding the JSON checkpoint: the counter
// values and the watermark (and, from versions 1-2, counted UIDs that are not
// canonical UUIDs).
const DataKey = "checkpoint.json"

// UIDsKey is the ConfigMap binaryData key holding the counted UIDs carried
// over from a version 2 checkpoint, as raw 16-byte values grouped by persist
// time. A version 3 checkpoint has it only while such UIDs are retained.
const UIDsKey = "counted-uids.bin"

// maxCheckpointBytes is the API server's limit on a ConfigMap: the lengths of
// all data and binaryData values together (keys and metadata are not
// counted; binaryData counts raw bytes, not base64) may not exceed 1 MiB.
const maxCheckpointBytes = 1 << 20

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
	ConfigMaps corev1client.ConfigMapInterface
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
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for ev := range evs {
		if c.countLocked(ev) {
			n++
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

// Summary describes a checkpoint ConfigMap, for tools and tests.
type Summary struct {
	// Version is the format version it was written in (1, 2 or 3).
	Version int
	// Watermark is the resourceVersion up to which its counts include every
	// Event (0 for versions 1-2).
	Watermark uint64
	// Counts are the counter values.
	Counts map[Key]uint64
	// CountedUIDs are the counted UIDs it holds (versions 1-2, or retained
	// from them), with the Unix time each was first persisted.
	CountedUIDs map[types.UID]int64
	// Bytes is the size the API server's ConfigMap limit applies to.
	Bytes int
}

// Inspect decodes a checkpoint ConfigMap, whatever its format version.
func Inspect(cm *corev1.ConfigMap) (Summary, error) {
	cp, err := decode([]byte(cm.Data[DataKey]), cm.BinaryData[UIDsKey])
	if err != nil {
		return Summary{}, fmt.Errorf("checkpoint %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return Summary{Version: cp.Version, Watermark: cp.Watermark, Counts: cp.Counts, CountedUIDs: cp.Counted,
		Bytes: len(cm.Data[DataKey]) + len(cm.BinaryData[UIDsKey])}, nil
}

// checkpoint is the persisted state: counter values, the watermark they are
// complete up to, and UIDs counted by versions 1-2 still retained.
type checkpoint struct {
	Version   int // as read (0: none)
	Counts    map[Key]uint64
	Watermark uint64
	Counted   map[types.UID]int64
}

func emptyCheckpoint() checkpoint {
	return checkpoint{Counts: map[Key]uint64{}, Counted: map[types.UID]int64{}}
}

// without returns cp without the counts of the given repositories (cp
// itself when there are none); the watermark and retained UIDs are kept.
func (cp checkpoint) without(repos map[string]uint64) checkpoint {
	if len(repos) == 0 {
		return cp
	}
	out := cp
	out.Counts = make(map[Key]uint64, len(cp.Counts))
	for k, v := range cp.Counts {
		if _, drop := repos[k.Repository]; !drop {
			out.Counts[k] = v
		}
	}
	return out
}

// merge returns a copy of cp that also counts the pending Events it does not
// include, with its watermark raised to frontier (every pending Event is at
// or below it).
func (cp checkpoint) merge(pending []pendingEvent, frontier uint64, now int64) checkpoint {
	out := checkpoint{
		Version:   cp.Version,
		Counts:    make(map[Key]uint64, len(cp.Counts)),
		Watermark: max(cp.Watermark, frontier),
		Counted:   make(map[types.UID]int64, len(cp.Counted)),
	}
	for k, v := range cp.Counts {
		out.Counts[k] = v
	}
	for uid, t := range cp.Counted {
		out.Counted[uid] = t
	}
	for _, p := range pending {
		if p.rv <= cp.Watermark {
			continue // the writer of the watermark counted it
		}
		if _, done := cp.Counted[p.uid]; done && p.uid != "" {
			continue // a version 1-2 process counted it
		}
		out.Counts[p.key.Value()]++
	}
	return out
}

// pruneLegacy drops retained UIDs persisted before cutoff: their Events have
// expired, so nothing can observe them again.
func (cp checkpoint) pruneLegacy(cutoff int64) {
	for uid, t := range cp.Counted {
		if t < cutoff {
			delete(cp.Counted, uid)
		}
	}
}

func (cp checkpoint) equal(o checkpoint) bool {
	if cp.Watermark != o.Watermark || len(cp.Counts) != len(o.Counts) || len(cp.Counted) != len(o.Counted) {
		return false
	}
	for k, v := range cp.Counts {
		if w, ok := o.Counts[k]; !ok || w != v {
			return false
		}
	}
	return true // Counted only ever shrinks: equal lengths, equal sets
}

// wireFormat is the JSON in the ConfigMap; counts are a sorted list so that
// the object diffs readably and encodes deterministically. Version 1 kept
// every counted UID in Counted; version 2 kept there only the UIDs that are
// not canonical UUIDs, the rest being in the binaryData (see encodeUIDs);
// version 3 adds the watermark and keeps UIDs only while they are retained.
type wireFormat struct {
	Version   int                 `json:"version"`
	Watermark string              `json:"watermark,omitempty"`
	Counts    []wireCount         `json:"counts"`
	Counted   map[types.UID]int64 `json:"counted,omitempty"`
}

type wireCount struct {
	Key
	Value uint64 `json:"value"`
}

const (
	wireVersionText   = 1 // every UID in the JSON (read only)
	wireVersionBinary = 2 // canonical UUIDs in binaryData (read only)
	wireVersion       = 3 // the watermark (written)
)

// uidGroupHeader is the size of a group's persist time and UID count.
const uidGroupHeader = 8 + 4

// encode returns the JSON for DataKey and the bytes for UIDsKey (empty
// unless UIDs are retained).
func (cp checkpoint) encode() (data, uids []byte, err error) {
	w := wireFormat{Version: wireVersion, Counts: make([]wireCount, 0, len(cp.Counts))}
	if cp.Watermark > 0 {
		w.Watermark = strconv.FormatUint(cp.Watermark, 10)
	}
	for k, v := range cp.Counts {
		w.Counts = append(w.Counts, wireCount{Key: k, Value: v})
	}
	slices.SortFunc(w.Counts, func(a, b wireCount) int { return compareKeys(a.Key, b.Key) })

	groups := map[int64][][16]byte{}
	for uid, t := range cp.Counted {
		if raw, ok := parseUUID(uid); ok {
			groups[t] = append(groups[t], raw)
			continue
		}
		if w.Counted == nil {
			w.Counted = map[types.UID]int64{}
		}
		w.Counted[uid] = t
	}
	if data, err = json.Marshal(w); err != nil {
		return nil, nil, err
	}
	return data, encodeUIDs(groups), nil
}

// decode reads a checkpoint from the ConfigMap's DataKey and UIDsKey values.
func decode(data, uids []byte) (checkpoint, error) {
	cp := emptyCheckpoint()
	if len(data) == 0 {
		if len(uids) != 0 {
			return checkpoint{}, fmt.Errorf("binaryData %s without data %s", UIDsKey, DataKey)
		}
		return cp, nil
	}
	var w wireFormat
	if err := json.Unmarshal(data, &w); err != nil {
		return checkpoint{}, fmt.Errorf("decoding: %w", err)
	}
	switch w.Version {
	case wireVersionText:
		if len(uids) != 0 {
			// Version 1 never wrote binaryData: ignoring it could drop
			// counted UIDs and so count their Events twice.
			return checkpoint{}, fmt.Errorf("checkpoint version %d with binaryData %s", w.Version, UIDsKey)
		}
	case wireVersionBinary, wireVersion:
		if err := decodeUIDs(uids, cp.Counted); err != nil {
			return checkpoint{}, fmt.Errorf("decoding %s: %w", UIDsKey, err)
		}
	default:
		return checkpoint{}, fmt.Errorf("unknown checkpoint version %d", w.Version)
	}
	if w.Watermark != "" {
		if w.Version < wireVersion {
			return checkpoint{}, fmt.Errorf("checkpoint version %d with a watermark", w.Version)
		}
		rv, ok := ParseResourceVersion(w.Watermark)
		if !ok {
			return checkpoint{}, fmt.Errorf("watermark %q is not a resourceVersion", w.Watermark)
		}
		cp.Watermark = rv
	}
	cp.Version = w.Version
	for _, c := range w.Counts {
		cp.Counts[c.Key] += c.Value
	}
	for uid, t := range w.Counted {
		addCounted(cp.Counted, uid, t)
	}
	return cp, nil
}

// encodeUIDs writes the groups in time order, each group's UIDs sorted, so
// that equal sets encode to equal bytes.
func encodeUIDs(groups map[int64][][16]byte) []byte {
	times := make([]int64, 0, len(groups))
	size := 0
	for t, g := range groups {
		times = append(times, t)
		size += uidGroupHeader + 16*len(g)
	}
	slices.Sort(times)
	out := make([]byte, 0, size)
	for _, t := range times {
		g := groups[t]
		slices.SortFunc(g, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
		out = binary.BigEndian.AppendUint64(out, uint64(t))
		out = binary.BigEndian.AppendUint32(out, uint32(len(g)))
		for _, raw := range g {
			out = append(out, raw[:]...)
		}
	}
	return out
}

func decodeUIDs(b []byte, into map[types.UID]int64) error {
	for len(b) > 0 {
		if len(b) < uidGroupHeader {
			return fmt.Errorf("truncated group header (%d bytes)", len(b))
		}
		t := int64(binary.BigEndian.Uint64(b))
		n := binary.BigEndian.Uint32(b[8:])
		b = b[uidGroupHeader:]
		if uint64(n)*16 > uint64(len(b)) {
			return fmt.Errorf("group of %d UIDs in %d bytes", n, len(b))
		}
		for i := uint32(0); i < n; i++ {
			addCounted(into, formatUUID(b[:16]), t)
			b = b[16:]
		}
	}
	return nil
}

// addCounted adds uid; the encoder never writes one twice, but if a
// checkpoint does, keeping the later time never prunes it early.
func addCounted(m map[types.UID]int64, uid types.UID, t int64) {
	if old, ok := m[uid]; !ok || t > old {
		m[uid] = t
	}
}

// parseUUID returns the 16 bytes of a UID in canonical UUID text: 8-4-4-4-12
// lowercase hex digits, as the API server assigns them. Anything else
// (uppercase, braces, other lengths) is not canonical, so that formatUUID
// gives back exactly the UID parsed.
func parseUUID(uid types.UID) (raw [16]byte, ok bool) {
	s := string(uid)
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return raw, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i--
			continue
		}
		hi, ok1 := lowerHex(s[i])
		lo, ok2 := lowerHex(s[i+1])
		if !ok1 || !ok2 {
			return raw, false
		}
		raw[j] = hi<<4 | lo
		j++
	}
	return raw, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// formatUUID is the canonical text of 16 raw bytes.
func formatUUID(raw []byte) types.UID {
	var s [36]byte
	hex.Encode(s[0:8], raw[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], raw[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], raw[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], raw[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], raw[10:16])
	return types.UID(s[:])
}

func compareKeys(a, b Key) int {
	for _, p := range [][2]string{{a.Kind, b.Kind}, {a.Namespace, b.Namespace}, {a.Repository, b.Repository}, {a.Action, b.Action}} {
		if p[0] != p[1] {
			if p[0] < p[1] {
				return -1
			}
			return 1
		}
	}
	return 0
}
