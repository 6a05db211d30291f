//go:build !unix

package offheap

// Without mmap the bytes are on the Go heap, freed by the collector.
func mapBytes(n int) ([]byte, error) { return make([]byte, n), nil }

func unmapBytes([]byte) error { return nil }
