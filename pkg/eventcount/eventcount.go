// Package eventcount counts Kubernetes Events exactly once — across re-lists,
// watch reconnects and restarts of the counting process — by persisting a
// checkpoint in one ConfigMap.
//
// # The mechanism, and why
//
// Events expire (the API server's --event-ttl, one hour by default) and the
// metrics function may restart at any time, so counters cannot be recomputed
// from the Events that happen to be alive. The checkpoint holds, in a single
// object, both the counter values and the set of Event UIDs already counted.
// Because both are written in the same update, guarded by the ConfigMap's
// resourceVersion, there is no moment at which a count is persisted without
// the knowledge that makes it idempotent, or the other way round:
//
//   - An Event is counted when its UID is neither in the checkpoint nor among
//     the UIDs counted since the last flush ("pending"). Re-lists, watch
//     reconnects and informer replays deliver the same UID and change nothing.
//   - A crash loses only pending UIDs together with their increments; the Events
//     are still alive (they live an hour, flushes happen every few seconds), so
//     the next process lists them and counts them then. Events created while
//     the process was down are counted the same way.
//   - A flush re-reads the checkpoint and applies only the pending UIDs it does
//     not already hold, then writes with a resourceVersion precondition. Two
//     overlapping instances (a rollout of a max-scale-1 Service can briefly run
//     two) therefore merge rather than double count.
//   - The UID set stays bounded by the Events alive in the namespace: a UID is
//     pruned once its Event has been gone from a synced informer for a grace
//     period (longer than any other instance's view can lag), never earlier, so
//     a lagging instance cannot re-count an Event another one pruned.
//
// Alternatives rejected: a resourceVersion watermark needs resourceVersions to
// be compared as numbers (the API calls them opaque) and list results arrive
// in key order, not revision order, so a watermark advanced mid-list skips
// Events; counting from PullRequest/Branch status cannot tell how many
// deliveries an object absorbed once they are squashed into one update.
//
// # The format
//
// The ConfigMap's data key checkpoint.json holds the counter values as JSON
// (version 2). The counted UIDs that are canonical UUIDs (all that the API
// server assigns) live in binaryData key counted-uids.bin as raw 16-byte
// values, grouped by the Unix time they were first persisted (one group per
// flush): each group is an 8-byte big-endian time, a 4-byte big-endian count
// and that many UIDs. Any other UID falls back to text in the JSON's "counted"
// map, which is also where version 1 kept every UID; version 1 checkpoints
// still load, and the next flush rewrites them as version 2.
//
// The cost is one ConfigMap of about 16 bytes per Event alive plus 12 bytes
// per flush that counted something within the retention window: the API
// server's 1 MiB limit on a ConfigMap's data and binaryData values holds
// roughly 60,000-65,000 Events per event-ttl window. Flush reports ErrTooLarge
// beyond that instead of writing a checkpoint the API server would refuse.
package eventcount

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// DataKey is the ConfigMap data key holding the JSON checkpoint: the counter
// values, plus (as text) any counted UID that is not a canonical UUID.
const DataKey = "checkpoint.json"

// UIDsKey is the ConfigMap binaryData key holding the counted UIDs that are
// canonical UUIDs, as raw 16-byte values grouped by persist time.
const UIDsKey = "counted-uids.bin"

// maxCheckpointBytes is the API server's limit on a ConfigMap: the lengths of
// all data and binaryData values together (keys and metadata are not
// counted; binaryData counts raw bytes, not base64) may not exceed 1 MiB.
const maxCheckpointBytes = 1 << 20

// ErrTooLarge is returned by Flush when the checkpoint would exceed what one
// ConfigMap can hold.
var ErrTooLarge = errors.New("eventcount: checkpoint exceeds the ConfigMap size limit")

// Key is the label set one Event increments.
type Key struct {
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Repository string `json:"repository"`
	Action     string `json:"action"`
}

// Options configures a Counter.
type Options struct {
	// ConfigMaps is the client for the namespace the checkpoint lives in.
	ConfigMaps corev1client.ConfigMapInterface
	// Name is the checkpoint ConfigMap's name.
	Name string
	// Grace is how long a counted UID is kept after its Event left a synced
	// view (default 10 minutes).
	Grace time.Duration
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Counter counts Events by UID into Keys, exactly once per UID.
type Counter struct {
	opts Options

	flushMu sync.Mutex // one flush at a time

	mu      sync.Mutex
	loaded  bool
	base    checkpoint // as last read from or written to the API server
	rv      string     // the ConfigMap's resourceVersion
	exists  bool       // whether the ConfigMap exists
	pending map[types.UID]Key
	alive   map[types.UID]struct{}
	synced  bool
	// dropped are repositories whose counts are to be removed from the
	// checkpoint by the next Flush (see DropRepository).
	dropped map[string]struct{}
}

// New returns a Counter; call Load before Observe.
func New(opts Options) *Counter {
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Counter{
		opts:    opts,
		base:    emptyCheckpoint(),
		pending: map[types.UID]Key{},
		alive:   map[types.UID]struct{}{},
		dropped: map[string]struct{}{},
	}
}

// DropRepository forgets every count under repository (a label value), at
// once in Counts and in the checkpoint at the next Flush, so that a freed
// repository label neither keeps its series nor has them resurrected by a
// re-read checkpoint. Counted UIDs stay counted: an Event already counted is
// never counted again, under any label.
func (c *Counter) DropRepository(repository string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropped[repository] = struct{}{}
	c.base = c.base.without(c.dropped)
	for uid, k := range c.pending {
		if k.Repository == repository {
			// Counted under the dropped label: persist the UID as
			// counted (so it is never counted again) without a count.
			delete(c.pending, uid)
			c.base.Counted[uid] = c.opts.Now().Unix()
		}
	}
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
	for uid := range c.pending {
		if _, done := cp.Counted[uid]; done {
			delete(c.pending, uid)
		}
	}
	return nil
}

// Loaded reports whether Load succeeded.
func (c *Counter) Loaded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loaded
}

// Observe records that the Event with uid is alive and counts it under key
// unless that uid was counted before. It reports whether this call counted it.
func (c *Counter) Observe(uid types.UID, key Key) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alive[uid] = struct{}{}
	if _, done := c.base.Counted[uid]; done {
		return false
	}
	if _, done := c.pending[uid]; done {
		return false
	}
	c.pending[uid] = key
	return true
}

// Counted reports whether uid was counted already (persisted or pending).
func (c *Counter) Counted(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, persisted := c.base.Counted[uid]
	_, pending := c.pending[uid]
	return persisted || pending
}

// Forget records that the Event with uid is gone (deleted or expired). Its
// UID stays in the checkpoint for the grace period.
func (c *Counter) Forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.alive, uid)
}

// MarkSynced says that every Event alive has been Observed once, so UIDs
// missing from the alive set may be pruned after the grace period.
func (c *Counter) MarkSynced() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.synced = true
}

// Counts returns the counter values: the checkpoint plus what is pending.
func (c *Counter) Counts() map[Key]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[Key]uint64, len(c.base.Counts)+len(c.pending))
	for k, v := range c.base.Counts {
		out[k] = v
	}
	for _, k := range c.pending {
		out[k]++
	}
	return out
}

// Pending is the number of counted UIDs not yet in the checkpoint.
func (c *Counter) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Flush merges the pending counts into the checkpoint and writes it. On a
// conflict (another writer) it re-reads and merges again, so a UID counted by
// two instances is counted once.
func (c *Counter) Flush(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()

	c.mu.Lock()
	if !c.loaded {
		c.mu.Unlock()
		return errors.New("eventcount: flush before load")
	}
	pending := make(map[types.UID]Key, len(c.pending))
	for uid, k := range c.pending {
		pending[uid] = k
	}
	alive := make(map[types.UID]struct{}, len(c.alive))
	for uid := range c.alive {
		alive[uid] = struct{}{}
	}
	synced := c.synced
	cp, rv, exists := c.base, c.rv, c.exists
	dropped := make(map[string]struct{}, len(c.dropped))
	for r := range c.dropped {
		dropped[r] = struct{}{}
	}
	c.mu.Unlock()

	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			var err error
			if cp, rv, exists, err = c.read(ctx); err != nil {
				return err
			}
		}
		next := cp.without(dropped).merge(pending, c.opts.Now().Unix())
		if synced {
			next.prune(alive, c.opts.Now().Add(-c.opts.Grace).Unix())
		}
		if exists && len(pending) == 0 && len(dropped) == 0 && len(next.Counted) == len(cp.Counted) {
			// Nothing changed: skip the write.
			c.commit(next, rv, pending)
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
		c.commit(next, newRV, pending)
		c.mu.Lock()
		for r := range dropped {
			delete(c.dropped, r)
		}
		// Dropped while this flush ran: keep them out of the new base.
		c.base = c.base.without(c.dropped)
		c.mu.Unlock()
		return nil
	}
}

// commit installs a written checkpoint and drops the pending UIDs it holds
// (including ones another instance counted meanwhile).
func (c *Counter) commit(cp checkpoint, rv string, flushed map[types.UID]Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.rv, c.exists = cp, rv, true
	for uid := range flushed {
		delete(c.pending, uid)
	}
	for uid := range c.pending {
		if _, done := cp.Counted[uid]; done {
			delete(c.pending, uid)
		}
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
		return "", fmt.Errorf("%w: %d bytes (limit %d) for %d counted Events", ErrTooLarge, size, maxCheckpointBytes, len(cp.Counted))
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:            c.opts.Name,
			ResourceVersion: rv,
			Labels:          map[string]string{"app.kubernetes.io/name": "gitpulse", "app.kubernetes.io/component": "metrics"},
		},
		Data:       map[string]string{DataKey: string(data)},
		BinaryData: map[string][]byte{UIDsKey: uids},
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

// CountedUIDs returns the UIDs a checkpoint ConfigMap holds as counted, with
// the Unix time each was first persisted, whatever the format version. It is
// for inspecting a checkpoint (tools, tests); the Counter reads its own.
func CountedUIDs(cm *corev1.ConfigMap) (map[types.UID]int64, error) {
	cp, err := decode([]byte(cm.Data[DataKey]), cm.BinaryData[UIDsKey])
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return cp.Counted, nil
}

// checkpoint is the persisted state: counter values and the UIDs they
// include, with the Unix time each UID was first persisted.
type checkpoint struct {
	Counts  map[Key]uint64
	Counted map[types.UID]int64
}

func emptyCheckpoint() checkpoint {
	return checkpoint{Counts: map[Key]uint64{}, Counted: map[types.UID]int64{}}
}

// without returns cp without the counts of the given repositories (cp
// itself when there are none); counted UIDs are kept.
func (cp checkpoint) without(repos map[string]struct{}) checkpoint {
	if len(repos) == 0 {
		return cp
	}
	out := checkpoint{Counts: make(map[Key]uint64, len(cp.Counts)), Counted: make(map[types.UID]int64, len(cp.Counted))}
	for k, v := range cp.Counts {
		if _, drop := repos[k.Repository]; !drop {
			out.Counts[k] = v
		}
	}
	for uid, t := range cp.Counted {
		out.Counted[uid] = t
	}
	return out
}

// merge returns a copy of cp with every pending UID it does not hold counted.
func (cp checkpoint) merge(pending map[types.UID]Key, now int64) checkpoint {
	out := checkpoint{
		Counts:  make(map[Key]uint64, len(cp.Counts)),
		Counted: make(map[types.UID]int64, len(cp.Counted)+len(pending)),
	}
	for k, v := range cp.Counts {
		out.Counts[k] = v
	}
	for uid, t := range cp.Counted {
		out.Counted[uid] = t
	}
	for uid, k := range pending {
		if _, done := out.Counted[uid]; done {
			continue
		}
		out.Counted[uid] = now
		out.Counts[k]++
	}
	return out
}

// prune drops UIDs not alive that were persisted before cutoff.
func (cp checkpoint) prune(alive map[types.UID]struct{}, cutoff int64) {
	for uid, t := range cp.Counted {
		if _, ok := alive[uid]; !ok && t < cutoff {
			delete(cp.Counted, uid)
		}
	}
}

// wireFormat is the JSON in the ConfigMap; counts are a sorted list so that
// the object diffs readably and encodes deterministically. Version 1 kept
// every counted UID in Counted; version 2 keeps there only the UIDs that are
// not canonical UUIDs, the rest being in the binaryData (see encodeUIDs).
type wireFormat struct {
	Version int                 `json:"version"`
	Counts  []wireCount         `json:"counts"`
	Counted map[types.UID]int64 `json:"counted,omitempty"`
}

type wireCount struct {
	Key
	Value uint64 `json:"value"`
}

const (
	wireVersionText   = 1 // every UID in the JSON (read only)
	wireVersionBinary = 2 // canonical UUIDs in binaryData (written)
)

// uidGroupHeader is the size of a group's persist time and UID count.
const uidGroupHeader = 8 + 4

// encode returns the JSON for DataKey and the bytes for UIDsKey.
func (cp checkpoint) encode() (data, uids []byte, err error) {
	w := wireFormat{Version: wireVersionBinary, Counts: make([]wireCount, 0, len(cp.Counts))}
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
	case wireVersionBinary:
		if err := decodeUIDs(uids, cp.Counted); err != nil {
			return checkpoint{}, fmt.Errorf("decoding %s: %w", UIDsKey, err)
		}
	default:
		return checkpoint{}, fmt.Errorf("unknown checkpoint version %d", w.Version)
	}
	for _, c := range w.Counts {
		cp.Counts[c.Key] += c.Value
	}
	for uid, t := range w.Counted {
		addCounted(cp.Counted, uid, t)
	}
	return cp, nil
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
