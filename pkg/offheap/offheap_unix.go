//go:build unix

package offheap

import "syscall"

// mapBytes maps n bytes of private anonymous memory (zeroed by the
// system).
func mapBytes(n int) ([]byte, error) {
	return syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
}

func unmapBytes(b []byte) error { return syscall.Munmap(b) }
