package memlimit

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestContainerLimit_ReadsCgroupV2ThenV1(t *testing.T) {
	const v2Self = "0::/kubepods/pod1/ctr\n"
	const v1Self = "12:cpu,cpuacct:/kubepods/pod1/ctr\n9:memory:/kubepods/pod1/ctr\n"
	cases := []struct {
		name      string
		self      string
		files     map[string]string
		wantLimit int64
		wantOK    bool
	}{
		{"v2, the process's own cgroup", v2Self,
			map[string]string{"kubepods/pod1/ctr/memory.max": "268435456\n"}, 268435456, true},
		{"v2 under a cgroup namespace: the mount's root is the container", "0::/\n",
			map[string]string{"memory.max": "134217728\n"}, 134217728, true},
		{"v2 without a limit", v2Self,
			map[string]string{"kubepods/pod1/ctr/memory.max": "max\n"}, 0, false},
		{"v1, the memory controller's cgroup", v1Self,
			map[string]string{"memory/kubepods/pod1/ctr/memory.limit_in_bytes": "67108864\n"}, 67108864, true},
		{"v1 under a cgroup namespace", "9:memory:/\n",
			map[string]string{"memory/memory.limit_in_bytes": "100663296"}, 100663296, true},
		{"v1 without a limit (page-rounded MaxInt64)", v1Self,
			map[string]string{"memory/kubepods/pod1/ctr/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false},
		{"no cgroup filesystem", v2Self, nil, 0, false},
		{"unreadable value", v2Self,
			map[string]string{"kubepods/pod1/ctr/memory.max": "lots\n"}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for path, content := range tc.files {
				full := filepath.Join(root, path)
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			limit, ok := containerLimit(root, tc.self)
			if limit != tc.wantLimit || ok != tc.wantOK {
				t.Fatalf("containerLimit = %d, %v; want %d, %v", limit, ok, tc.wantLimit, tc.wantOK)
			}
		})
	}
}

func TestMemoryLimit_NeverBelowTheLiveHeap(t *testing.T) {
	const mib = 1 << 20
	m := Limit{Base: 48 * mib}
	for _, tc := range []struct {
		live    uint64
		outside int64
		want    int64
	}{
		{0, 0, 48 * mib},
		{20 * mib, 0, 48 * mib},
		{24 * mib, 0, 48 * mib},    // 2 × 24 = 48
		{60 * mib, 0, 120 * mib},   // the live heap is above half of Base: raised
		{60*mib + 1, 0, 121 * mib}, // rounded up to whole MiB
		{400 * mib, 0, 800 * mib},  // follows it up
		{10 * mib, 0, 48 * mib},    // and back down to Base
		// Memory kept outside the heap (pkg/offheap) is left room for,
		// down to twice the live heap.
		{10 * mib, 8 * mib, 40 * mib},
		{20 * mib, 30 * mib, 40 * mib},
	} {
		if got := m.target(tc.live, tc.outside); got != tc.want {
			t.Errorf("live heap %d MiB, %d MiB outside it: limit %d MiB, want %d", tc.live/mib, tc.outside/mib, got/mib, tc.want/mib)
		}
		if got := m.target(tc.live, tc.outside); uint64(got) <= tc.live {
			t.Errorf("live heap %d: limit %d is not above it", tc.live, got)
		}
	}
}

// TestMemoryLimit_FollowsTheLiveHeapAfterEachCollection: the limit is
// updated after a garbage collection, not only on the one-second timer, so a
// heap growing fast (a large list) never sits above it for long.
func TestMemoryLimit_FollowsTheLiveHeapAfterEachCollection(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // stops re-arming
	ch := make(chan struct{}, 1)
	notifyAfterEachGC(ctx, ch)
	for i := range 3 {
		runtime.GC()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("no notification after collection %d", i+1)
		}
	}
}

func TestSetGCPercent_TheFunctionsDefaultUnlessGOGCIsSet(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	for _, tc := range []struct {
		name        string
		gogc        string // "" unset
		running     int    // what the runtime has when SetGCPercent is called
		def         int
		want        int
		wantFromEnv bool
	}{
		{name: "default applied", def: 50, running: 100, want: 50},
		{name: "no default keeps Go's", def: 0, running: 100, want: 100},
		{name: "GOGC set is left alone", gogc: "200", def: 50, running: 200, want: 200, wantFromEnv: true},
		{name: "GOGC=off is left alone", gogc: "off", def: 50, running: -1, want: -1, wantFromEnv: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.gogc != "" {
				t.Setenv("GOGC", tc.gogc)
			} else {
				t.Setenv("GOGC", "")
			}
			debug.SetGCPercent(tc.running)
			got, fromEnv := SetGCPercent(tc.def)
			if got != tc.want || fromEnv != tc.wantFromEnv {
				t.Errorf("SetGCPercent(%d) = %d, %v; want %d, %v", tc.def, got, fromEnv, tc.want, tc.wantFromEnv)
			}
			if now := debug.SetGCPercent(before); now != tc.want {
				t.Errorf("the runtime's GOGC is %d, want %d", now, tc.want)
			}
		})
	}
}
