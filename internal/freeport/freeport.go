// Package freeport picks TCP ports for servers that another process (etcd,
// kube-apiserver, Knative's processes, the functions) binds a moment later.
//
// The usual trick — bind port 0, read the port, close — finds a port that
// is free at that instant, in the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range). Until the child binds it, the
// kernel may hand the same port to any socket on the machine that binds
// port 0 (every httptest server) or connects out. With test packages
// running side by side that happens: the Knative webhook's port taken by
// another process's listener left the API server's webhook calls reset
// and `make test` red.
//
// Pick chooses below the ephemeral range instead, where the kernel never
// assigns ports by itself, and notes each port it hands out in a
// machine-wide ledger (a file in /tmp, serialised with flock) so that two
// processes picking at the same moment never get the same port while the
// first one may still be on its way to bind it.
package freeport

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LedgerPath is the machine-wide ledger. /tmp rather than $TMPDIR: ports
// are the machine's, whatever each process's TMPDIR says.
var LedgerPath = filepath.Join("/tmp", "gitpulse-ports.ledger")

// span is how many ports below the ephemeral range Pick uses. With the
// kernel's default range (32768-60999) that is 22768-32767, clear of the
// fixed ports `make run` uses (12379, 16443, 18080-18083) and Knative's
// channel dispatcher (8080, 8443).
const span = 10000

// hold is how long a handed-out port stays reserved in the ledger: far
// longer than any process takes to start and bind it. A port that is bound
// by then is skipped anyway (Pick tries to bind each candidate).
const hold = 2 * time.Minute

// Pick returns a TCP port that nothing on the machine listens on, outside
// the kernel's ephemeral range, and that no other Pick on this machine has
// returned in the last two minutes.
func Pick() (int, error) {
	low, high := Range()
	return Ledger{Path: LedgerPath, Low: low, High: high, Hold: hold}.Pick()
}

// Range is the span of ports Pick chooses from: [low, high), just below
// the ephemeral range. When the machine's ephemeral range starts too low
// to leave room, it is empty (low == high) and Pick falls back to the
// kernel's choice.
func Range() (low, high int) {
	start := ephemeralStart("/proc/sys/net/ipv4/ip_local_port_range")
	if start-span < 1024 {
		return start, start
	}
	return start - span, start
}

// ephemeralStart reads the first port of the kernel's ephemeral range,
// 32768 (Linux's default) when it cannot.
func ephemeralStart(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 || n > 65535 {
		return 32768
	}
	return n
}

// Ledger hands out ports from [Low, High), each at most once per Hold,
// across every process that uses the same Path.
type Ledger struct {
	Path      string
	Low, High int
	Hold      time.Duration
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
}

// ErrNoPort means every port in the range is bound or reserved.
var ErrNoPort = errors.New("freeport: no free port in range")

// Pick reserves and returns one port.
func (l Ledger) Pick() (int, error) {
	if l.High <= l.Low {
		return kernelPort()
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	f, err := os.OpenFile(l.Path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		// Another user's ledger, say: still clear of the ephemeral
		// range, only without the guard against a concurrent Pick.
		return l.choose(nil)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return 0, fmt.Errorf("freeport: lock %s: %w", l.Path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)

	t := now()
	reserved := readLedger(f, t.Add(-l.Hold))
	port, err := l.choose(reserved)
	if err != nil {
		return 0, err
	}
	reserved[port] = t
	if err := writeLedger(f, reserved); err != nil {
		return 0, fmt.Errorf("freeport: %w", err)
	}
	return port, nil
}

// choose tries random ports of the range, then every one in order, and
// returns the first that is neither reserved nor bound.
func (l Ledger) choose(reserved map[int]time.Time) (int, error) {
	n := l.High - l.Low
	try := func(p int) bool {
		if _, ok := reserved[p]; ok {
			return false
		}
		return bindable(p)
	}
	for range 64 {
		if p := l.Low + rand.IntN(n); try(p) {
			return p, nil
		}
	}
	start := rand.IntN(n)
	for i := range n {
		if p := l.Low + (start+i)%n; try(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w [%d, %d)", ErrNoPort, l.Low, l.High)
}

// bindable reports whether port can be bound on every interface — the
// strictest form: the broker ingress binds ":port", the others 127.0.0.1,
// and a socket on either conflicts with this.
func bindable(port int) bool {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// kernelPort is the usual trick, for machines whose ephemeral range leaves
// no room below it.
func kernelPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// readLedger reads "port unix-nanoseconds" lines, keeping those reserved
// after since. A line it cannot read is dropped: the ledger only narrows
// the choice, it is never the only guard (bindable is).
func readLedger(f *os.File, since time.Time) map[int]time.Time {
	out := map[int]time.Time{}
	if _, err := f.Seek(0, 0); err != nil {
		return out
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			continue
		}
		port, err1 := strconv.Atoi(fields[0])
		ns, err2 := strconv.ParseInt(fields[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if at := time.Unix(0, ns); at.After(since) {
			out[port] = at
		}
	}
	return out
}

func writeLedger(f *os.File, reserved map[int]time.Time) error {
	var b strings.Builder
	for p, at := range reserved {
		fmt.Fprintf(&b, "%d %d\n", p, at.UnixNano())
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(b.String()), 0)
	return err
}
