package offheap

import (
	"bytes"
	"testing"

	"github.com/liatrio/gitpulse/pkg/memlimit"
)

// TestAlloc_GivesZeroedBytesThatHoldWhatIsWrittenUntilFreed, for sizes
// below, at and above a page.
func TestAlloc_GivesZeroedBytesThatHoldWhatIsWrittenUntilFreed(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 4097, 3 << 20} {
		b, err := Alloc(n)
		if err != nil {
			t.Fatalf("Alloc(%d): %v", n, err)
		}
		if len(b) != n {
			t.Fatalf("Alloc(%d): %d bytes", n, len(b))
		}
		if !bytes.Equal(b, make([]byte, n)) {
			t.Fatalf("Alloc(%d): not zeroed", n)
		}
		for i := range b {
			b[i] = byte(i)
		}
		for i := range b {
			if b[i] != byte(i) {
				t.Fatalf("Alloc(%d): byte %d is %d after writing %d", n, i, b[i], byte(i))
			}
		}
		if err := Free(b); err != nil {
			t.Fatalf("Free(%d bytes): %v", n, err)
		}
	}
}

func TestAlloc_ReportsWhatItHoldsToTheMemoryLimit(t *testing.T) {
	before := memlimit.OutsideHeap()
	a, _ := Alloc(1)
	b, _ := Alloc(5000)
	if got := memlimit.OutsideHeap() - before; got != 3*4096 {
		t.Errorf("after 1 and 5,000 bytes: %d bytes outside the heap, want 3 pages", got)
	}
	_ = Free(a)
	_ = Free(b)
	if got := memlimit.OutsideHeap() - before; got != 0 {
		t.Errorf("after Free: %d bytes outside the heap, want 0", got)
	}
}
