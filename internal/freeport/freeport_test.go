package freeport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPick_ChoosesABindablePortBelowTheEphemeralRange(t *testing.T) {
	low, high := Range()
	if low == high {
		t.Skipf("this machine's ephemeral range starts at %d: no room below it", low)
	}
	for range 20 {
		p, err := Pick()
		if err != nil {
			t.Fatal(err)
		}
		if p < low || p >= high {
			t.Fatalf("Pick() = %d, want in [%d, %d)", p, low, high)
		}
		if !bindable(p) {
			t.Fatalf("Pick() = %d, which cannot be bound", p)
		}
	}
}

func TestEphemeralStart_ReadsTheKernelsRangeOrAssumesLinuxsDefault(t *testing.T) {
	for _, tt := range []struct {
		name, content string
		want          int
	}{
		{"the kernel's format", "32768\t60999\n", 32768},
		{"a narrowed range", "40000 50000\n", 40000},
		{"unreadable", "", 32768},
		{"not numbers", "low high\n", 32768},
		{"out of range", "70000 80000\n", 32768},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ip_local_port_range")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := ephemeralStart(path); got != tt.want {
				t.Errorf("ephemeralStart(%q) = %d, want %d", tt.content, got, tt.want)
			}
		})
	}
}

func TestLedger_AnEmptyRangeFallsBackToTheKernelsChoice(t *testing.T) {
	l := Ledger{Path: filepath.Join(t.TempDir(), "ledger"), Low: 1500, High: 1500, Hold: time.Minute}
	p, err := l.Pick()
	if err != nil {
		t.Fatal(err)
	}
	if p == 1500 || !bindable(p) {
		t.Errorf("Pick() = %d, want a bindable port the kernel chose", p)
	}
}

func TestLedger_NeverHandsOutAPortTwiceWithinHold(t *testing.T) {
	low := freeRun(t, 60)
	l := Ledger{Path: filepath.Join(t.TempDir(), "ledger"), Low: low, High: low + 60, Hold: time.Minute}
	var (
		mu   sync.Mutex
		seen = map[int]int{}
		wg   sync.WaitGroup
	)
	for range 20 {
		wg.Go(func() {
			for range 2 {
				p, err := l.Pick()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[p]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for p, n := range seen {
		if n > 1 {
			t.Errorf("port %d handed out %d times", p, n)
		}
	}
	if len(seen) != 40 {
		t.Errorf("%d distinct ports, want 40", len(seen))
	}
}

// TestLedger_ProcessesPickingTogetherGetDistinctPorts runs this test binary
// as two more processes picking from the same ledger as this one.
func TestLedger_ProcessesPickingTogetherGetDistinctPorts(t *testing.T) {
	low := freeRun(t, 100)
	ledger := filepath.Join(t.TempDir(), "ledger")
	l := Ledger{Path: ledger, Low: low, High: low + 100, Hold: time.Minute}

	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperPicker$")
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Env = append(os.Environ(), "FREEPORT_HELPER_LEDGER="+ledger,
			fmt.Sprintf("FREEPORT_HELPER_RANGE=%d-%d", low, low+100))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	seen := map[int]string{}
	for range 25 {
		p, err := l.Pick()
		if err != nil {
			t.Fatal(err)
		}
		seen[p] = "this process"
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, outs[i])
		}
		for _, line := range strings.Split(outs[i].String(), "\n") {
			port, ok := strings.CutPrefix(line, "port ")
			if !ok {
				continue
			}
			p, _ := strconv.Atoi(port)
			if by, dup := seen[p]; dup {
				t.Errorf("port %d handed to helper %d and to %s", p, i, by)
			}
			seen[p] = fmt.Sprintf("helper %d", i)
		}
	}
	if len(seen) != 75 {
		t.Errorf("%d distinct ports, want 75", len(seen))
	}
}

// TestHelperPicker is the other processes' side of
// TestLedger_ProcessesPickingTogetherGetDistinctPorts.
func TestHelperPicker(t *testing.T) {
	ledger := os.Getenv("FREEPORT_HELPER_LEDGER")
	if ledger == "" {
		t.Skip("helper process only")
	}
	var low, high int
	if _, err := fmt.Sscanf(os.Getenv("FREEPORT_HELPER_RANGE"), "%d-%d", &low, &high); err != nil {
		t.Fatal(err)
	}
	l := Ledger{Path: ledger, Low: low, High: high, Hold: time.Minute}
	for range 25 {
		p, err := l.Pick()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("port %d\n", p)
	}
}

func TestLedger_SkipsPortsSomethingListensOn(t *testing.T) {
	low := freeRun(t, 3)
	busy, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(low+1))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	l := Ledger{Path: filepath.Join(t.TempDir(), "ledger"), Low: low, High: low + 3, Hold: time.Minute}
	got := map[int]bool{}
	for range 2 {
		p, err := l.Pick()
		if err != nil {
			t.Fatal(err)
		}
		got[p] = true
	}
	if !got[low] || !got[low+2] {
		t.Errorf("picked %v, want %d and %d (not %d, which is listened on)", got, low, low+2, low+1)
	}
	if _, err := l.Pick(); !errors.Is(err, ErrNoPort) {
		t.Errorf("a third Pick: %v, want ErrNoPort", err)
	}
}

func TestLedger_AReservationLapsesAfterHold(t *testing.T) {
	low := freeRun(t, 1)
	now := time.Unix(1_800_000_000, 0)
	l := Ledger{Path: filepath.Join(t.TempDir(), "ledger"), Low: low, High: low + 1, Hold: time.Minute,
		Now: func() time.Time { return now }}
	if p, err := l.Pick(); err != nil || p != low {
		t.Fatalf("first Pick() = %d, %v; want %d", p, err, low)
	}
	now = now.Add(59 * time.Second)
	if _, err := l.Pick(); !errors.Is(err, ErrNoPort) {
		t.Fatalf("Pick() within Hold: %v, want ErrNoPort", err)
	}
	now = now.Add(2 * time.Second)
	if p, err := l.Pick(); err != nil || p != low {
		t.Errorf("Pick() after Hold = %d, %v; want %d again", p, err, low)
	}
}

func TestLedger_UnreadableLinesAreDropped(t *testing.T) {
	low := freeRun(t, 2)
	path := filepath.Join(t.TempDir(), "ledger")
	now := time.Unix(1_800_000_000, 0)
	content := fmt.Sprintf("garbage\n%d\n%d %d\n", low, low+1, now.UnixNano())
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	l := Ledger{Path: path, Low: low, High: low + 2, Hold: time.Minute, Now: func() time.Time { return now }}
	if p, err := l.Pick(); err != nil || p != low {
		t.Errorf("Pick() = %d, %v; want %d (the one reservation that reads is %d)", p, err, low, low+1)
	}
}

// freeRun finds n consecutive bindable ports in Pick's range (or, on a
// machine without one, anywhere above 10000) for a test's own Ledger.
func freeRun(t *testing.T, n int) int {
	t.Helper()
	low, high := Range()
	if low == high {
		low, high = 10000, 30000
	}
	for start := low + int(time.Now().UnixNano()%int64(high-low-n)); ; start += n {
		if start+n > high {
			start = low
		}
		ok := true
		for p := start; p < start+n && ok; p++ {
			ok = bindable(p)
		}
		if ok {
			return start
		}
	}
}
