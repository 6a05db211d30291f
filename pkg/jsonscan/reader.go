package jsonscan

import (
	"errors"
	"fmt"
	"io"
)

// Reader reads a JSON document from a stream a token or a value at a
// time, each value validated by a scan of this package, holding in memory
// only the value being read and what was read past it: a list of 5,000
// objects passes through a buffer the size of the largest of them (and of
// the reads).
type Reader struct {
	r      io.Reader
	buf    []byte
	pos, n int   // buf[pos:n] is read and not yet consumed
	base   int64 // the stream offset of buf[0]
	err    error // what ended the stream (io.EOF at its end)
}

// NewReader returns a Reader of r whose buffer starts at size bytes.
func NewReader(r io.Reader, size int) *Reader {
	return &Reader{r: r, buf: make([]byte, max(size, 512))}
}

// fill reads more of the stream, keeping what is not consumed, until the
// buffer is full or the stream has ended; false when it had ended before.
// A value longer than the buffer doubles it: each fill at least
// doubles what a scan that ran out has to go on, so a value is scanned
// O(log) times over, however the stream is cut.
func (r *Reader) fill() bool {
	if r.err != nil {
		return false
	}
	if r.pos > 0 {
		r.n = copy(r.buf, r.buf[r.pos:r.n])
		r.base += int64(r.pos)
		r.pos = 0
	}
	if r.n == len(r.buf) {
		r.buf = append(r.buf, make([]byte, len(r.buf))...)
	}
	for r.n < len(r.buf) && r.err == nil {
		m, err := r.r.Read(r.buf[r.n:])
		r.n += m
		r.err = err
	}
	return true
}

// ended is the error of a stream that ended where more was needed.
func (r *Reader) ended() error {
	if errors.Is(r.err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return r.err
}

// Offset is the stream offset of the next byte to consume.
func (r *Reader) Offset() int64 { return r.base + int64(r.pos) }

// Peek skips white space and returns the next byte, without consuming it.
func (r *Reader) Peek() (byte, error) {
	for {
		r.pos = Space(r.buf[:r.n], r.pos)
		if r.pos < r.n {
			return r.buf[r.pos], nil
		}
		if !r.fill() {
			return 0, r.ended()
		}
	}
}

// Expect skips white space and consumes c, or fails when the next byte is
// another.
func (r *Reader) Expect(c byte) error {
	got, err := r.Peek()
	if err != nil {
		return err
	}
	if got != c {
		return fmt.Errorf("invalid character %q at offset %d, want %q", got, r.Offset(), c)
	}
	r.pos++
	return nil
}

// Next skips white space, scans what follows with scan (Value, String or
// a function of the caller's) and consumes it. The bytes it returns are
// valid until the Reader's next call.
func (r *Reader) Next(scan func(b []byte, i int) (int, bool)) ([]byte, error) {
	if _, err := r.Peek(); err != nil {
		return nil, err
	}
	for {
		end, ok := scan(r.buf[:r.n], r.pos)
		// A value that ends with what was read may go on (a number) or be
		// cut short: decide once more is read or the stream has ended.
		if ok && (end < r.n || r.err != nil) {
			v := r.buf[r.pos:end]
			r.pos = end
			return v, nil
		}
		if !ok && end < r.n {
			return nil, fmt.Errorf("invalid JSON at offset %d", r.base+int64(end))
		}
		if !r.fill() {
			return nil, r.ended()
		}
	}
}

// NextValue is Next(Value) for a value at nesting depth depth.
func (r *Reader) NextValue(depth int) ([]byte, error) {
	return r.Next(func(b []byte, i int) (int, bool) { return Value(b, i, depth) })
}
