// Package memlimit sets a function process's Go soft memory limit: from
// GOMEMLIMIT when set (left alone), else a fraction of the container's cgroup
// memory limit, else the function's own default; and keeps it at least twice
// the live heap, so that the collector never runs back to back. Both
// functions use it.
package memlimit

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The Go runtime's soft memory limit, when GOMEMLIMIT is not set.
const (
	// ContainerFraction of the container's memory limit is the soft
	// limit when there is one; the rest is for what the runtime does not
	// count against it and for the collector to catch up.
	ContainerFraction = 0.8
	// liveHeapHeadroom keeps the limit at least this much above the live
	// heap: a soft limit at or below the live heap makes the collector run
	// without pause (seen: a 48 MiB limit under a 60 MiB live heap). Twice the
	// live heap is where GOGC=100 would collect anyway, so the limit never
	// makes collections more frequent than the default; at 1.25x a
	// 360,000-Event list spent 63% of its 40 s of CPU marking (the limit
	// counts all of the runtime's memory, which runs well above the live
	// heap while a large list is decoded).
	liveHeapHeadroom = 2.0
	// memoryLimitCheck is how often the live heap is compared to the limit
	// (reading it costs about a microsecond).
	memoryLimitCheck = time.Second
)

// cgroupRoot is where the cgroup filesystem is mounted (a variable for tests).
var cgroupRoot = "/sys/fs/cgroup"

// ContainerLimit reads the memory limit of the cgroup this process is
// in: cgroup v2 memory.max, else cgroup v1 memory.limit_in_bytes. It looks at
// the process's own cgroup (from /proc/self/cgroup) and then at the root of
// the mount, which is the container's own cgroup under a cgroup namespace,
// as in Kubernetes. ok is false when there is no limit ("max", or v1's
// page-rounded "unlimited") or nothing can be read.
func ContainerLimit() (limit int64, ok bool) {
	self, _ := os.ReadFile("/proc/self/cgroup")
	return containerLimit(cgroupRoot, string(self))
}

func containerLimit(root, procSelfCgroup string) (int64, bool) {
	var v2, v1 string // the process's cgroup paths
	for _, line := range strings.Split(procSelfCgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1 = parts[2]
			}
		}
	}
	var candidates []string
	if v2 != "" {
		candidates = append(candidates, filepath.Join(root, v2, "memory.max"))
	}
	candidates = append(candidates, filepath.Join(root, "memory.max"))
	if v1 != "" {
		candidates = append(candidates, filepath.Join(root, "memory", v1, "memory.limit_in_bytes"))
	}
	candidates = append(candidates, filepath.Join(root, "memory", "memory.limit_in_bytes"))
	for _, path := range candidates {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			continue
		}
		// cgroup v1 reports "no limit" as the largest page-aligned int64.
		if n >= math.MaxInt64/2 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// Limit sets the Go runtime's soft memory limit for the function's
// process, unless GOMEMLIMIT is set (the runtime has then applied that one
// and it is left alone).
type Limit struct {
	// Base is the limit derived from the container: ContainerFraction
	// of its memory limit, or the function's default without one.
	Base int64
	// FromContainer says Base comes from a cgroup limit.
	FromContainer bool
	// Manual says GOMEMLIMIT is set; nothing is changed.
	Manual bool
}

// New derives the limit from GOMEMLIMIT, else the container, else
// defaultLimit (the function's working set without a container limit).
func New(defaultLimit int64) Limit {
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok && v != "" {
		return Limit{Base: debug.SetMemoryLimit(-1), Manual: true}
	}
	if n, ok := ContainerLimit(); ok {
		return Limit{Base: int64(float64(n) * ContainerFraction), FromContainer: true}
	}
	return Limit{Base: defaultLimit}
}

// outsideHeap is the memory the process keeps outside the Go runtime's
// accounting (pkg/offheap), which the soft limit leaves room for.
var outsideHeap atomic.Int64

// AddOutsideHeap records n more bytes (fewer, when negative) the process
// keeps outside the Go runtime's accounting: the limit Run keeps is lowered
// by as much, within a second.
func AddOutsideHeap(n int64) { outsideHeap.Add(n) }

// OutsideHeap is what AddOutsideHeap recorded, in bytes.
func OutsideHeap() int64 { return outsideHeap.Load() }

// target is the limit for a live heap of live bytes and outside bytes kept
// outside the heap: Base less outside, raised so that it is never below the
// live heap plus headroom. The raised limit is rounded up to whole MiB.
func (m Limit) target(live uint64, outside int64) int64 {
	const mib = 1 << 20
	floor := (int64(float64(live)*liveHeapHeadroom) + mib - 1) / mib * mib
	return max(m.Base-outside, floor)
}

// Run applies the limit and, until ctx is done, raises (or lowers back
// towards Base) the limit as the live heap changes: after every garbage
// collection (the live heap is known then) and every memoryLimitCheck. It
// returns at once when GOMEMLIMIT is set.
//
// Checking only on a timer is not enough: while a large list is read the live
// heap grows faster than the headroom between two checks, and a limit below
// it makes the collector run back to back (360,000 Events cost 36 s of CPU
// that way instead of a few).
func (m Limit) Run(ctx context.Context, log *slog.Logger) {
	if m.Manual {
		log.InfoContext(ctx, "memory limit from GOMEMLIMIT", "bytes", m.Base)
		return
	}
	log.InfoContext(ctx, "memory limit", "bytes", m.Base, "fromContainer", m.FromContainer)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := int64(-1)
	apply := func() {
		metrics.Read(sample)
		live := uint64(0)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = sample[0].Value.Uint64()
		}
		if t := m.target(live, outsideHeap.Load()); t != current {
			if current >= 0 {
				log.DebugContext(ctx, "memory limit follows the live heap", "bytes", t, "liveHeap", live)
			}
			debug.SetMemoryLimit(t)
			current = t
		}
	}
	apply()
	gcDone := make(chan struct{}, 1)
	notifyAfterEachGC(ctx, gcDone)
	tick := time.NewTicker(memoryLimitCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			apply()
		case <-gcDone:
			apply()
		}
	}
}

// gcSentinel is an object nothing refers to: its finalizer runs after each
// garbage collection and re-arms itself until ctx is done.
type gcSentinel struct {
	ctx context.Context
	ch  chan<- struct{}
}

func notifyAfterEachGC(ctx context.Context, ch chan<- struct{}) {
	runtime.SetFinalizer(&gcSentinel{ctx: ctx, ch: ch}, gcSentinelFinalizer)
}

func gcSentinelFinalizer(s *gcSentinel) {
	if s.ctx.Err() != nil {
		return
	}
	select {
	case s.ch <- struct{}{}:
	default: // one pending notification is enough
	}
	runtime.SetFinalizer(s, gcSentinelFinalizer)
}

// SetGCPercent sets the collector's GOGC to def unless GOGC is set in the
// environment (the runtime has then applied that one) or def is not
// positive, and returns the percentage in effect. A function whose heap is
// mostly a long-lived cache (the metrics function's records and kept
// text) allocates little once it is built, so a lower GOGC costs it little
// CPU and saves the part of its RSS that is garbage waiting: Prometheus
// sets 75 for the same reason (prometheus/prometheus#14176, #14285).
func SetGCPercent(def int) (percent int, fromEnv bool) {
	if v, ok := os.LookupEnv("GOGC"); ok && v != "" || def <= 0 {
		// SetGCPercent is the runtime's only way to read it.
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p, ok && v != ""
	}
	debug.SetGCPercent(def)
	return def, false
}
