package recorder

import (
	"fmt"
	"strings"
	"testing"
	"time"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

func at(hhmmss string) time.Time {
	t, err := time.Parse(time.TimeOnly, hhmmss)
	if err != nil {
		panic(err)
	}
	return time.Date(2026, 1, 1, t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

func TestRemember_KeepsDeliveriesForTheWindowNotForACount(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	b := &stablev1.Branch{}
	// 100 deliveries over two days, the window three days: all remembered,
	// each with the time it was applied.
	for i := 0; i < 100; i++ {
		remember(&b.Status.Bookkeeping, fmt.Sprintf("d%d", i), "", t0.Add(time.Duration(i)*29*time.Minute), 72*time.Hour, 1000)
	}
	for _, id := range []string{"d0", "d50", "d99"} {
		at, ok := appliedAt(&b.Status.Bookkeeping, id)
		if !ok {
			t.Fatalf("%s forgotten within the window", id)
		}
		var i int
		fmt.Sscanf(id, "d%d", &i)
		if want := t0.Add(time.Duration(i) * 29 * time.Minute); !at.Equal(want) {
			t.Errorf("%s applied at %v, want %v", id, at, want)
		}
	}
	// A delivery four days after the first: the first ones fall out of
	// the window, the rest stay.
	remember(&b.Status.Bookkeeping, "late", "", t0.Add(96*time.Hour), 72*time.Hour, 1000)
	if seen(&b.Status.Bookkeeping, "d0") || !seen(&b.Status.Bookkeeping, "d99") || !seen(&b.Status.Bookkeeping, "late") {
		t.Errorf("after the window moved: d0 %v, d99 %v, late %v", seen(&b.Status.Bookkeeping, "d0"), seen(&b.Status.Bookkeeping, "d99"), seen(&b.Status.Bookkeeping, "late"))
	}
	if seen(&b.Status.Bookkeeping, "d100") {
		t.Error("a delivery never applied is seen")
	}
}

func TestRemember_BoundsTheEntriesWhateverTheirAge(t *testing.T) {
	now := time.Now()
	b := &stablev1.Branch{}
	for _, id := range []string{"a", "b", "c", "d"} {
		remember(&b.Status.Bookkeeping, id, "", now, time.Hour, 3)
	}
	if seen(&b.Status.Bookkeeping, "a") || !seen(&b.Status.Bookkeeping, "b") || !seen(&b.Status.Bookkeeping, "d") {
		t.Error("seen does not follow the bounded list")
	}
	if n := len(strings.Split(b.Status.RecentDeliveries, ",")); n != 3 {
		t.Errorf("%d entries, want 3", n)
	}
}

func TestRemember_AnEntryIsAboutTwentyBytesSoThreeBusyDaysFit(t *testing.T) {
	now := time.Now()
	b := &stablev1.Branch{}
	for i := 0; i < DefaultRecentDeliveries+10; i++ {
		remember(&b.Status.Bookkeeping, fmt.Sprintf("%08x-0000-11f0-8000-000000000000", i), "", now, DefaultDeliveryWindow, DefaultRecentDeliveries)
	}
	size := len(b.Status.RecentDeliveries)
	if size > 128<<10 {
		t.Errorf("%d entries take %d bytes; want at most 128 KiB of an object's ~1.5 MiB", DefaultRecentDeliveries, size)
	}
}

func TestRemember_ReadsEntriesOlderVersionsWrote(t *testing.T) {
	b := &stablev1.Branch{}
	b.Status.RecentDeliveries = "old-2,old-1"
	if at, ok := appliedAt(&b.Status.Bookkeeping, "old-1"); !ok || !at.IsZero() {
		t.Errorf("legacy entry: applied %v at %v, want true with no time", ok, at)
	}
	remember(&b.Status.Bookkeeping, "new", "", time.Now(), time.Hour, 100)
	if !seen(&b.Status.Bookkeeping, "old-1") || !seen(&b.Status.Bookkeeping, "old-2") || !seen(&b.Status.Bookkeeping, "new") {
		t.Errorf("after a new delivery: %q", b.Status.RecentDeliveries)
	}
	// Legacy entries stay only as long as the old bound of 20 would have
	// kept them.
	for i := 0; i < DefaultRecentPayloads; i++ {
		remember(&b.Status.Bookkeeping, fmt.Sprint("n", i), "", time.Now(), time.Hour, 100)
	}
	if seen(&b.Status.Bookkeeping, "old-1") {
		t.Error("a legacy entry outlived the old count bound")
	}
}

func TestRemember_KeepsTheNewestPayloadDigestsBeyondTheWindow(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	b := &stablev1.Branch{}
	digest := func(i int) string { return PayloadDigest([]byte(fmt.Sprint("payload ", i))) }
	// 30 deliveries with payloads, one reconcile pass's without, an hour
	// apart.
	for i := 0; i < 30; i++ {
		remember(&b.Status.Bookkeeping, fmt.Sprint("d", i), digest(i), t0.Add(time.Duration(i)*time.Hour), 72*time.Hour, 1000)
	}
	remember(&b.Status.Bookkeeping, "reconciled", "", t0.Add(30*time.Hour), 72*time.Hour, 1000)
	for i := 0; i < 30; i++ {
		if want := i >= 30-DefaultRecentPayloads; replayed(&b.Status.Bookkeeping, digest(i)) != want {
			t.Errorf("payload %d remembered = %v, want %v", i, !want, want)
		}
	}
	if !seen(&b.Status.Bookkeeping, "d0") || !seen(&b.Status.Bookkeeping, "reconciled") {
		t.Error("a delivery within the window forgotten")
	}
	// A week later: the window forgot every delivery but those whose
	// payloads are among the newest.
	remember(&b.Status.Bookkeeping, "late", "", t0.Add(200*time.Hour), 72*time.Hour, 1000)
	if seen(&b.Status.Bookkeeping, "d0") || seen(&b.Status.Bookkeeping, "reconciled") || !seen(&b.Status.Bookkeeping, "d29") || !replayed(&b.Status.Bookkeeping, digest(29)) {
		t.Errorf("after the window: %q", b.Status.RecentDeliveries)
	}
	if n := strings.Count(b.Status.RecentDeliveries, ","); n != DefaultRecentPayloads {
		t.Errorf("%d entries after the window, want the %d with payloads and the new one", n+1, DefaultRecentPayloads)
	}
	if b.Status.LastDeliveryID != "" || b.Status.RepositoryNamedAt != nil || len(b.Annotations) != 0 {
		t.Errorf("status %+v, annotations %v: want recentDeliveries alone", b.Status, b.Annotations)
	}
}
