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
// The cost is one ConfigMap of about 60 bytes per Event alive (a 1 MiB object
// holds roughly 15,000 Events per event-ttl window); Flush reports ErrTooLarge
// beyond that instead of writing a checkpoint the API server would refuse.
package eventcount

import (
	"context"
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

// DataKey is the ConfigMap data key holding the JSON checkpoint.
const DataKey = "checkpoint.json"

// maxCheckpointBytes stays below the API server's 1 MiB object limit with
// room for metadata.
const maxCheckpointBytes = 900 * 1024

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
	c.mu.Unlock()

	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			var err error
			if cp, rv, exists, err = c.read(ctx); err != nil {
				return err
			}
		}
		next := cp.merge(pending, c.opts.Now().Unix())
		if synced {
			next.prune(alive, c.opts.Now().Add(-c.opts.Grace).Unix())
		}
		if exists && len(pending) == 0 && len(next.Counted) == len(cp.Counted) {
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
	if cp, err = decode([]byte(cm.Data[DataKey])); err != nil {
		return checkpoint{}, "", false, fmt.Errorf("checkpoint %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return cp, cm.ResourceVersion, true, nil
}

func (c *Counter) write(ctx context.Context, cp checkpoint, rv string, exists bool) (string, error) {
	data, err := cp.encode()
	if err != nil {
		return "", err
	}
	if len(data) > maxCheckpointBytes {
		return "", fmt.Errorf("%w: %d bytes for %d counted Events", ErrTooLarge, len(data), len(cp.Counted))
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:            c.opts.Name,
			ResourceVersion: rv,
			Labels:          map[string]string{"app.kubernetes.io/name": "gitpulse", "app.kubernetes.io/component": "metrics"},
		},
		Data: map[string]string{DataKey: string(data)},
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

// checkpoint is the persisted state: counter values and the UIDs they
// include, with the Unix time each UID was first persisted.
type checkpoint struct {
	Counts  map[Key]uint64
	Counted map[types.UID]int64
}

func emptyCheckpoint() checkpoint {
	return checkpoint{Counts: map[Key]uint64{}, Counted: map[types.UID]int64{}}
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
// the object diffs readably and encodes deterministically.
type wireFormat struct {
	Version int                 `json:"version"`
	Counts  []wireCount         `json:"counts"`
	Counted map[types.UID]int64 `json:"counted"`
}

type wireCount struct {
	Key
	Value uint64 `json:"value"`
}

const wireVersion = 1

func (cp checkpoint) encode() ([]byte, error) {
	w := wireFormat{Version: wireVersion, Counted: cp.Counted, Counts: make([]wireCount, 0, len(cp.Counts))}
	for k, v := range cp.Counts {
		w.Counts = append(w.Counts, wireCount{Key: k, Value: v})
	}
	slices.SortFunc(w.Counts, func(a, b wireCount) int { return compareKeys(a.Key, b.Key) })
	return json.Marshal(w)
}

func decode(data []byte) (checkpoint, error) {
	cp := emptyCheckpoint()
	if len(data) == 0 {
		return cp, nil
	}
	var w wireFormat
	if err := json.Unmarshal(data, &w); err != nil {
		return checkpoint{}, fmt.Errorf("decoding: %w", err)
	}
	if w.Version != wireVersion {
		return checkpoint{}, fmt.Errorf("unknown checkpoint version %d", w.Version)
	}
	for _, c := range w.Counts {
		cp.Counts[c.Key] += c.Value
	}
	for uid, t := range w.Counted {
		cp.Counted[uid] = t
	}
	return cp, nil
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
