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
		remember(&b.ObjectMeta, fmt.Sprintf("d%d", i), "", t0.Add(time.Duration(i)*29*time.Minute), 72*time.Hour, 1000)
	}
	for _, id := range []string{"d0", "d50", "d99"} {
		at, ok := appliedAt(&b.ObjectMeta, id)
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
	remember(&b.ObjectMeta, "late", "", t0.Add(96*time.Hour), 72*time.Hour, 1000)
	if seen(&b.ObjectMeta, "d0") || !seen(&b.ObjectMeta, "d99") || !seen(&b.ObjectMeta, "late") {
		t.Errorf("after the window moved: d0 %v, d99 %v, late %v", seen(&b.ObjectMeta, "d0"), seen(&b.ObjectMeta, "d99"), seen(&b.ObjectMeta, "late"))
	}
	if seen(&b.ObjectMeta, "d100") {
		t.Error("a delivery never applied is seen")
	}
}

func TestRemember_BoundsTheEntriesWhateverTheirAge(t *testing.T) {
	now := time.Now()
	b := &stablev1.Branch{}
	for _, id := range []string{"a", "b", "c", "d"} {
		remember(&b.ObjectMeta, id, "", now, time.Hour, 3)
	}
	if seen(&b.ObjectMeta, "a") || !seen(&b.ObjectMeta, "b") || !seen(&b.ObjectMeta, "d") {
		t.Error("seen does not follow the bounded list")
	}
	if n := len(strings.Split(b.Annotations[stablev1.AnnotationRecentDeliveries], ",")); n != 3 {
		t.Errorf("%d entries, want 3", n)
	}
}

func TestRemember_AnEntryIsAboutTwentyBytesSoThreeBusyDaysFit(t *testing.T) {
	now := time.Now()
	b := &stablev1.Branch{}
	for i := 0; i < DefaultRecentDeliveries+10; i++ {
		remember(&b.ObjectMeta, fmt.Sprintf("%08x-0000-11f0-8000-000000000000", i), "", now, DefaultDeliveryWindow, DefaultRecentDeliveries)
	}
	size := len(b.Annotations[stablev1.AnnotationRecentDeliveries])
	if size > 128<<10 {
		t.Errorf("%d entries take %d bytes; all annotations together may hold 256 KiB", DefaultRecentDeliveries, size)
	}
}

func TestRemember_ReadsEntriesOlderVersionsWrote(t *testing.T) {
	b := &stablev1.Branch{}
	b.Annotations = map[string]string{stablev1.AnnotationRecentDeliveries: "old-2,old-1"}
	if at, ok := appliedAt(&b.ObjectMeta, "old-1"); !ok || !at.IsZero() {
		t.Errorf("legacy entry: applied %v at %v, want true with no time", ok, at)
	}
	remember(&b.ObjectMeta, "new", "", time.Now(), time.Hour, 100)
	if !seen(&b.ObjectMeta, "old-1") || !seen(&b.ObjectMeta, "old-2") || !seen(&b.ObjectMeta, "new") {
		t.Errorf("after a new delivery: %q", b.Annotations[stablev1.AnnotationRecentDeliveries])
	}
	// Legacy entries stay only as long as the old bound of 20 would have
	// kept them.
	for i := 0; i < DefaultRecentPayloads; i++ {
		remember(&b.ObjectMeta, fmt.Sprint("n", i), "", time.Now(), time.Hour, 100)
	}
	if seen(&b.ObjectMeta, "old-1") {
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
		remember(&b.ObjectMeta, fmt.Sprint("d", i), digest(i), t0.Add(time.Duration(i)*time.Hour), 72*time.Hour, 1000)
	}
	remember(&b.ObjectMeta, "reconciled", "", t0.Add(30*time.Hour), 72*time.Hour, 1000)
	for i := 0; i < 30; i++ {
		if want := i >= 30-DefaultRecentPayloads; replayed(&b.ObjectMeta, digest(i)) != want {
			t.Errorf("payload %d remembered = %v, want %v", i, !want, want)
		}
	}
	if !seen(&b.ObjectMeta, "d0") || !seen(&b.ObjectMeta, "reconciled") {
		t.Error("a delivery within the window forgotten")
	}
	// A week later: the window forgot every delivery but those whose
	// payloads are among the newest.
	remember(&b.ObjectMeta, "late", "", t0.Add(200*time.Hour), 72*time.Hour, 1000)
	if seen(&b.ObjectMeta, "d0") || seen(&b.ObjectMeta, "reconciled") || !seen(&b.ObjectMeta, "d29") || !replayed(&b.ObjectMeta, digest(29)) {
		t.Errorf("after the window: %q", b.Annotations[stablev1.AnnotationRecentDeliveries])
	}
	if n := strings.Count(b.Annotations[stablev1.AnnotationRecentDeliveries], ","); n != DefaultRecentPayloads {
		t.Errorf("%d entries after the window, want the %d with payloads and the new one", n+1, DefaultRecentPayloads)
	}
	if len(b.Annotations) != 1 {
		t.Errorf("annotations %v, want recent-deliveries alone", b.Annotations)
	}
}
