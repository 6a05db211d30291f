// Package offheap allocates byte slices outside the Go heap, for large,
// long-lived, pointer-free data the garbage collector need not see.
//
// The collector sets its next goal from the live heap (GOGC): at GOGC 50 a
// 14 MB text kept on the heap lets another 7 MB of garbage wait beside it
// before a collection, and the pages a freed text leaves go back to the
// system only as the background scavenger gets to them. Mapped from the
// system instead, the text costs its own size and its pages go back the
// moment it is freed (VictoriaMetrics' fastcache keeps its buckets
// outside the heap for the same reason). The memory is counted in the
// process's RSS as any other, and reported to pkg/memlimit, whose soft
// limit leaves room for it.
//
// Every slice Alloc returns must be given to Free exactly once, whole (not
// resliced), and never used after.
package offheap

import "github.com/liatrio/gitpulse/pkg/memlimit"

// Alloc returns n zeroed bytes outside the Go heap (nil for n == 0).
func Alloc(n int) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	b, err := mapBytes(n)
	if err != nil {
		return nil, err
	}
	memlimit.AddOutsideHeap(int64(pages(n)))
	return b, nil
}

// Free returns b, which Alloc gave, to the system.
func Free(b []byte) error {
	if cap(b) == 0 {
		return nil
	}
	n := cap(b)
	if err := unmapBytes(b[:n]); err != nil {
		return err
	}
	memlimit.AddOutsideHeap(-int64(pages(n)))
	return nil
}

// pages is n rounded up to whole pages, as the system maps it.
func pages(n int) int {
	const page = 4096
	return (n + page - 1) / page * page
}
